//! Where a secret an operation makes is kept, and storing it there. Not a kind: the helper
//! the kinds that make secrets (IAM users' passwords and access keys) share.

use std::path::PathBuf;

use crate::aws::{Cloud, ParameterKind};
use crate::secrets;
use crate::spec::SecretsMode;

use super::StepFailure;

/// Where a secret that an operation makes is kept. The secret itself is in no operation.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretDestination {
    /// A `SecureString` parameter of this name in the account's Parameter Store.
    Parameter(String),
    /// A local file of mode 0600 (`secrets: local`).
    File(PathBuf),
}

impl SecretDestination {
    /// Where `user`'s secret of one kind goes in `mode`: its parameter, or its file under
    /// `secrets_dir` (absolute).
    pub fn of_user(
        mode: SecretsMode,
        project: &str,
        secrets_dir: &std::path::Path,
        secret: secrets::UserSecret,
        user: &str,
    ) -> SecretDestination {
        match mode {
            SecretsMode::ParameterStore => {
                SecretDestination::Parameter(secret.parameter(project, user))
            }
            SecretsMode::Local => SecretDestination::File(secret.file(secrets_dir, project, user)),
        }
    }
}

/// Puts a secret where `destination` says: a `SecureString` parameter, or a 0600 file.
pub(super) async fn store(
    cloud: &Cloud,
    project: &str,
    owner: &str,
    destination: &SecretDestination,
    secret: &str,
    undone: &'static str,
) -> Result<(), StepFailure> {
    match destination {
        SecretDestination::Parameter(name) => cloud
            .put_parameter(
                name,
                secret,
                ParameterKind::Secret,
                &crate::model::ownership_tags(project, owner),
            )
            .await
            .map_err(|source| StepFailure::SecretStore { source, undone }),
        SecretDestination::File(path) => {
            secrets::write(path, secret).map_err(|source| StepFailure::SecretFile {
                path: path.display().to_string(),
                source,
                undone,
            })
        }
    }
}

/// Removes a stored secret whose credential was never made (best effort: a leftover is a
/// secret for nothing, which the next apply overwrites).
pub(super) async fn forget(cloud: &Cloud, destination: &SecretDestination) {
    match destination {
        SecretDestination::Parameter(name) => {
            let _ = cloud.delete_parameter(name).await;
        }
        SecretDestination::File(path) => {
            let _ = std::fs::remove_file(path);
        }
    }
}
