//! Parameter Store calls (the team's shared secret store, the project lock, and the records
//! of account settings the project owns) and STS's "who am I", in tether's types.
//!
//! Secrets go in as `SecureString` (encrypted with the account's `aws/ssm` key); records and
//! the lock are plain `String`s. Reading a parameter that does not exist is `None`, deleting
//! one is success, so every step can be repeated.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ParameterType, Tag};

use super::{classify, done_if, none_if, AwsError, AwsErrorKind, Cloud};

/// A parameter's value and version, as read. `Debug` never shows the value, which may be a
/// secret.
pub struct Parameter {
    pub value: String,
    pub version: i64,
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameter")
            .field("value", &"<redacted>")
            .field("version", &self.version)
            .finish()
    }
}

/// Whether a parameter holds a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterKind {
    /// Encrypted at rest; readable only with decryption rights.
    Secret,
    /// A plain record (a lock, an ownership marker).
    Record,
}

fn build_error(operation: &'static str, name: &str, error: impl std::fmt::Display) -> AwsError {
    AwsError {
        operation,
        resource: format!("parameter {name}"),
        code: None,
        message: error.to_string(),
        kind: AwsErrorKind::Service,
    }
}

impl Cloud {
    /// The account id of the credentials in use (STS GetCallerIdentity), asked once per
    /// client: the plan, its apply and every Budgets call (which names the account) share
    /// the answer. A failed call is not kept; the next caller asks again.
    pub async fn account_id(&self) -> Result<String, AwsError> {
        self.account
            .get_or_try_init(|| async {
                let output = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| classify("GetCallerIdentity", "", e))?;
                output
                    .account()
                    .map(str::to_string)
                    .ok_or_else(|| AwsError {
                        operation: "GetCallerIdentity",
                        resource: String::new(),
                        code: None,
                        message: "the answer named no account".into(),
                        kind: AwsErrorKind::Service,
                    })
            })
            .await
            .cloned()
    }

    /// Creates the parameter `name` only if it does not exist: `Ok(false)` when it does.
    /// This is the atomic "take it if nobody has" that the project lock is made of.
    pub async fn create_parameter(
        &self,
        name: &str,
        value: &str,
        kind: ParameterKind,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, AwsError> {
        let tags = tags
            .iter()
            .map(|(key, value)| {
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|e| build_error("PutParameter", name, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(parameter_type(kind))
            .overwrite(false)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("PutParameter", &format!("parameter {name}"), e));
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.is_code("ParameterAlreadyExists") => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Writes `value` to the parameter `name`, creating it (with `tags`) or overwriting it
    /// (AWS takes tags only on create).
    pub async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        kind: ParameterKind,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if self.create_parameter(name, value, kind, tags).await? {
            return Ok(());
        }
        self.overwrite_parameter(name, value, kind).await
    }

    /// Overwrites the parameter `name` with `value` (PutParameter with overwrite, which keeps
    /// its tags).
    pub async fn overwrite_parameter(
        &self,
        name: &str,
        value: &str,
        kind: ParameterKind,
    ) -> Result<(), AwsError> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(parameter_type(kind))
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutParameter", &format!("parameter {name}"), e))
    }

    /// The parameter's value (decrypted), or `None` when there is no such parameter.
    pub async fn parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        let result = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify("GetParameter", &format!("parameter {name}"), e));
        let Some(output) = none_if(result, "ParameterNotFound")? else {
            return Ok(None);
        };
        let parameter = output
            .parameter()
            .ok_or_else(|| build_error("GetParameter", name, "the answer held no parameter"))?;
        Ok(Some(Parameter {
            value: parameter.value().unwrap_or_default().to_string(),
            version: parameter.version(),
        }))
    }

    /// Deletes the parameter; one already gone counts as deleted.
    pub async fn delete_parameter(&self, name: &str) -> Result<(), AwsError> {
        let result = self
            .ssm
            .delete_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| classify("DeleteParameter", &format!("parameter {name}"), e));
        done_if(result, "ParameterNotFound")
    }
}

fn parameter_type(kind: ParameterKind) -> ParameterType {
    match kind {
        ParameterKind::Secret => ParameterType::SecureString,
        ParameterKind::Record => ParameterType::String,
    }
}
