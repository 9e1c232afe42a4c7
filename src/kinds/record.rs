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

/// The project's record (at `parameter`, in its Parameter Store path) of how it came to own
/// an account setting or a bucket; `None` when it has none.
pub(crate) async fn read(
    cloud: &crate::aws::Cloud,
    parameter: &str,
) -> Result<Option<OwnershipRecord>, crate::aws::AwsError> {
    let found = cloud.parameter(parameter).await?;
    Ok(found.and_then(|p| OwnershipRecord::parse(p.value.trim())))
}

/// The project's record of an account setting `name`, if it is evidence for the value the
/// setting holds now (`value`): one someone changed since tether wrote it is not the
/// project's, whatever the record says (`OwnershipRecord::parse_bound`).
pub(crate) async fn read_setting<Value: serde::Serialize>(
    cloud: &crate::aws::Cloud,
    project: &str,
    name: &str,
    value: &Value,
) -> Result<Option<OwnershipRecord>, crate::aws::AwsError> {
    let parameter = crate::parameters::setting_record_parameter(project, name);
    let found = cloud.parameter(&parameter).await?;
    let hash = crate::model::setting_value_hash(value);
    Ok(found.and_then(|p| OwnershipRecord::parse_bound(p.value.trim(), &hash)))
}
