//! Local copies of the team's secrets: `tether secrets pull`, and the private key that
//! `tether ssh` and remote jobs fetch for themselves when this operator has none.
//!
//! The store is the account's Parameter Store (`secrets: parameter-store`); the copies go
//! where the spec says (a key pair's `private_key_file`, users' files under `secrets_dir`),
//! atomically, with mode 0400 for private keys and 0600 for the rest, through a symlink
//! without replacing it. A private key file that tether did not write is never overwritten;
//! one it wrote for a key pair that has since been replaced is. Talks to AWS only through
//! `aws::Cloud`; prints nothing.

use std::path::{Path, PathBuf};

use crate::aws::{AwsError, Cloud};
use crate::kinds::PrivateKeyRecord;
use crate::model::{TAG_LEGACY_PRIVATE_KEY_FILE, TAG_PRIVATE_KEY};
use crate::secrets::{self, OwnedWriteError, Written};
use crate::spec::{KeyPairSpec, SecretsMode, Spec};

/// One local copy made (or found already up to date).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// What the secret belongs to (`key_pair.lab-key`, `iam_user.erich`).
    pub owner: String,
    /// What it is ("private key", "access key", "console password").
    pub what: &'static str,
    pub file: PathBuf,
    pub written: Written,
}

/// Why a secret could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The spec keeps secrets on the applying machine only.
    #[error("the spec keeps secrets on the machine that applied it (`secrets: local`), so there is nothing to pull")]
    LocalMode,
    /// A name given on the command line is neither a key pair nor a user with a secret.
    #[error("`{0}` is neither a generated key pair nor a user with a secret in the spec")]
    UnknownName(String),
    /// The key pair or user exists in no form that has its secret in the store.
    #[error("{owner}: {why}")]
    NotStored { owner: String, why: String },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The local copy could not be written.
    #[error(transparent)]
    Write(#[from] OwnedWriteError),
}

/// Writes local copies of the spec's secrets from Parameter Store: every generated key
/// pair's private key and every user's access key and console password, or only those of
/// the key pairs and users named. `home` expands `~`.
pub async fn pull(
    cloud: &Cloud,
    spec: &Spec,
    names: &[String],
    home: Option<&Path>,
) -> Result<Vec<Pulled>, PullError> {
    if spec.secrets == SecretsMode::Local {
        return Err(PullError::LocalMode);
    }
    let key_pairs: Vec<&KeyPairSpec> = spec
        .key_pairs
        .values()
        .filter(|k| k.private_key_file().is_some())
        .collect();
    let users: Vec<&crate::spec::UserSpec> = spec
        .users
        .values()
        .filter(|u| u.programmatic_access || u.console_access)
        .collect();
    for name in names {
        if !key_pairs.iter().any(|k| &k.name == name) && !users.iter().any(|u| &u.name == name) {
            return Err(PullError::UnknownName(name.clone()));
        }
    }
    let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let mut pulled = Vec::new();
    for key in key_pairs.into_iter().filter(|k| wanted(&k.name)) {
        pulled.push(pull_private_key(cloud, spec, key, home).await?);
    }
    let secrets_dir = secrets::expand_home(&spec.secrets_dir, home);
    for user in users.into_iter().filter(|u| wanted(&u.name)) {
        let owner = format!("iam_user.{}", user.name);
        if user.programmatic_access {
            let parameter = secrets::access_key_parameter(&spec.project, &user.name);
            let stored = stored(cloud, &parameter, &owner, "its access key").await?;
            let (id, secret) = secrets::parse_access_key_document(&stored).ok_or_else(|| {
                PullError::NotStored {
                    owner: owner.clone(),
                    why: format!("{parameter} does not hold an access key document"),
                }
            })?;
            let profile = secrets::profile_name(&spec.project, &user.name);
            let file = secrets::credentials_file(&secrets_dir, &spec.project, &user.name);
            let text = secrets::credentials_text(&profile, &id, &secret);
            pulled.push(write_copy(&owner, "access key", &file, &text)?);
        }
        if user.console_access {
            let parameter = secrets::password_parameter(&spec.project, &user.name);
            let password = stored(cloud, &parameter, &owner, "its console password").await?;
            let file = secrets::password_file(&secrets_dir, &spec.project, &user.name);
            pulled.push(write_copy(&owner, "console password", &file, &password)?);
        }
    }
    Ok(pulled)
}

/// Makes sure this operator holds the private key that ssh will use as `identity`, when it
/// is a generated key pair's `private_key_file` kept in Parameter Store: fetched when
/// missing, replaced when it is tether's own copy of an older key pair. A file there that
/// tether did not write is left for ssh to use. `Ok(None)` when there is nothing to fetch.
pub async fn ensure_private_key(
    cloud: &Cloud,
    spec: &Spec,
    identity: &Path,
    home: Option<&Path>,
) -> Result<Option<Pulled>, PullError> {
    let Some(key) = stored_key_for(spec, identity, home) else {
        return Ok(None);
    };
    match pull_private_key(cloud, spec, key, home).await {
        Ok(pulled) => Ok(Some(pulled)),
        Err(PullError::Write(OwnedWriteError::NotOurs { .. })) => Ok(None),
        // Not in the store (kept locally by whoever made it): a file here is the one to use.
        Err(PullError::NotStored { .. }) if identity.exists() => Ok(None),
        Err(error) => Err(error),
    }
}

/// The spec's generated key pair whose local copy is `identity`, when the spec keeps
/// private keys in Parameter Store (so there is one to fetch).
pub fn stored_key_for<'a>(
    spec: &'a Spec,
    identity: &Path,
    home: Option<&Path>,
) -> Option<&'a KeyPairSpec> {
    if spec.secrets != SecretsMode::ParameterStore {
        return None;
    }
    spec.key_pairs.values().find(|k| {
        k.private_key_file()
            .is_some_and(|file| secrets::expand_home(file, home) == identity)
    })
}

async fn pull_private_key(
    cloud: &Cloud,
    spec: &Spec,
    key: &KeyPairSpec,
    home: Option<&Path>,
) -> Result<Pulled, PullError> {
    let owner = format!("key_pair.{}", key.name);
    let found = cloud
        .list_key_pairs()
        .await?
        .into_iter()
        .find(|k| k.name == key.name)
        .ok_or_else(|| PullError::NotStored {
            owner: owner.clone(),
            why: "the key pair does not exist; `tether apply` creates it".into(),
        })?;
    let record = found
        .tags
        .get(TAG_PRIVATE_KEY)
        .and_then(|value| PrivateKeyRecord::from_tag(value))
        .or(found
            .tags
            .contains_key(TAG_LEGACY_PRIVATE_KEY_FILE)
            .then_some(PrivateKeyRecord::Local));
    let id = match (record, &found.id) {
        (Some(PrivateKeyRecord::ParameterStore), Some(id)) => id,
        (Some(PrivateKeyRecord::Local), _) => {
            return Err(PullError::NotStored {
                owner,
                why: "its private key was kept only on the machine that created it (`secrets: local` or an older tether); ask whoever holds it, or remove the key pair from the spec and apply to make a new one".into(),
            })
        }
        _ => {
            return Err(PullError::NotStored {
                owner,
                why: "its private key was never stored (a run died while creating it); `tether apply` replaces it".into(),
            })
        }
    };
    let pem = stored(
        cloud,
        &secrets::key_pair_parameter(id),
        &owner,
        "its private key",
    )
    .await?;
    let file = secrets::expand_home(key.private_key_file().unwrap_or_default(), home);
    let secrets_dir = secrets::expand_home(&spec.secrets_dir, home);
    let written = secrets::write_owned(&file, &pem, 0o400, &secrets_dir)?;
    Ok(Pulled {
        owner,
        what: "private key",
        file,
        written,
    })
}

/// The value of a secret parameter, or why there is none.
async fn stored(
    cloud: &Cloud,
    parameter: &str,
    owner: &str,
    what: &str,
) -> Result<String, PullError> {
    match cloud.parameter(parameter).await? {
        Some(found) => Ok(found.value),
        None => Err(PullError::NotStored {
            owner: owner.to_string(),
            why: format!(
                "{what} is not in Parameter Store ({parameter}); `tether apply` issues it"
            ),
        }),
    }
}

/// Writes a user's secret file (tether's own directory, so it is always tether's to write).
fn write_copy(
    owner: &str,
    what: &'static str,
    file: &Path,
    text: &str,
) -> Result<Pulled, PullError> {
    let unchanged = std::fs::read_to_string(file).is_ok_and(|existing| existing == text);
    if !unchanged {
        secrets::write(file, text).map_err(|source| OwnedWriteError::Io {
            path: file.display().to_string(),
            source,
        })?;
    }
    Ok(Pulled {
        owner: owner.to_string(),
        what,
        file: file.to_path_buf(),
        written: if unchanged {
            Written::Unchanged
        } else {
            Written::Written
        },
    })
}
