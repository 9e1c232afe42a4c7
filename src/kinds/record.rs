//! The project's ownership records in Parameter Store: how it came to own what tags cannot
//! prove (an account setting, which takes no tags; a bucket it created, whose tags anyone
//! allowed to tag it can write). Not a kind: an operation the kinds that need it share.

use crate::aws::ParameterKind;
use crate::model::OwnershipRecord;

use super::{Step, StepFailure};

/// Writing or deleting one record.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOp {
    /// Record that the project created or adopted `owner` (overwrites).
    Put {
        parameter: String,
        owner: String,
        record: OwnershipRecord,
    },
    /// Delete the record (gone already counts as done).
    Delete { parameter: String },
}

impl RecordOp {
    pub fn describe(&self) -> &'static str {
        match self {
            RecordOp::Put { .. } => "recording the project's ownership",
            RecordOp::Delete { .. } => "deleting the project's ownership record",
        }
    }

    pub async fn run(&self, step: &Step<'_>) -> Result<(), StepFailure> {
        match self {
            RecordOp::Put {
                parameter,
                owner,
                record,
            } => Ok(step
                .cloud
                .put_parameter(
                    parameter,
                    record.as_str(),
                    ParameterKind::Record,
                    &crate::model::ownership_tags(step.project, owner),
                )
                .await?),
            RecordOp::Delete { parameter } => Ok(step.cloud.delete_parameter(parameter).await?),
        }
    }
}
