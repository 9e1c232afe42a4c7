//! The project's ownership records in Parameter Store: how it came to own what tags cannot
//! prove (an account setting, which takes no tags; a bucket it created, whose tags anyone
//! allowed to tag it can write). Not a kind: an operation the kinds that need it share.

use crate::aws::ParameterKind;
use crate::model::OwnershipRecord;

use super::{Step, StepFailure};

/// Writing or deleting one record.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOp {
    /// Record that the project created or adopted `owner` (overwrites), holding the
    /// hashes of the values it wrote (`model::setting_value_hash`; none for a bucket).
    Put {
        parameter: String,
        owner: String,
        record: OwnershipRecord,
        values: Vec<String>,
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
                values,
            } => Ok(step
                .cloud
                .put_parameter(
                    parameter,
                    &record.text(values),
                    ParameterKind::Record,
                    &crate::model::ownership_tags(step.project, owner),
                )
                .await?),
            RecordOp::Delete { parameter } => Ok(step.cloud.delete_parameter(parameter).await?),
        }
    }
}
