//! The executor: carries out a plan against the account.
//!
//! Each actionable change becomes one job for the [`coordinator`], which runs jobs in
//! dependency order with bounded parallelism; a job runs its change's operations
//! ([`steps`]) one after another. A failed job stops only the jobs that depend on it, and the
//! run ends with a per-resource report. Every operation is idempotent, so after a crash or a
//! failure, planning and applying again converges without duplicates.
//!
//! Before a saved plan is applied, [`check_fresh`] re-reads every resource it touches and
//! refuses if any differs from what the plan saw.

mod instances;
mod sshconfig;
pub mod steps;

use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use crate::aws::{AwsError, Cloud, ParameterKind};
use crate::coordinator::{self, Outcome};
use crate::live::{self, Scope};
use crate::model::{
    Address, PrivateKeyRecord, RunState, SECRET_PENDING, TAG_ACCESS_KEY, TAG_NAME, TAG_PRIVATE_KEY,
    TAG_PROJECT,
};
use crate::plan::{Action, Plan};
use crate::secrets;
use steps::{KeyDestination, Operation, SecretDestination};

/// Why a plan cannot be applied at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The account changed since the saved plan was made; nothing was changed.
    #[error("stale plan: the account changed since the plan was made, so nothing was applied\n{}", .0.join("\n"))]
    Stale(Vec<String>),
    /// The plan was made against another account than the credentials in use belong to.
    #[error("the plan was made for account {planned}, but the credentials in use belong to account {configured}; nothing was applied")]
    WrongAccount { planned: String, configured: String },
    /// The account the credentials belong to could not be found out.
    #[error("could not tell which account the credentials belong to")]
    Identity(#[source] AwsError),
    /// The plan was made for another region than the one tether is talking to.
    #[error("the plan is for region {planned}, but tether is configured for {configured}")]
    WrongRegion { planned: String, configured: String },
    /// Reading the account to check the plan failed.
    #[error("could not check the plan against the account")]
    Read(#[source] AwsError),
    /// Reading a local file the plan changes failed.
    #[error("could not read `{path}` to check the plan")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Something the executor reports while it works, for progress output.
#[derive(Debug)]
pub enum Progress<'a> {
    Started {
        address: &'a Address,
        operation: &'a Operation,
    },
    Finished {
        address: &'a Address,
        action: Action,
        elapsed: Duration,
    },
    Failed {
        address: &'a Address,
        error: &'a StepError,
    },
    /// A long wait for an instance's state goes on: the state seen so far, the time spent.
    Waiting {
        address: &'a Address,
        state: &'a str,
        elapsed: Duration,
    },
}

/// A failed step: what went wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StepError {
    #[source]
    pub error: StepFailure,
    pub hint: Option<String>,
}

/// What went wrong in a step.
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A secret could not be written to its file; the secret was revoked again (or never
    /// made), so no secret exists that nobody holds.
    #[error("cannot write the secret file `{path}`: {source}; {undone}")]
    SecretFile {
        path: String,
        #[source]
        source: std::io::Error,
        undone: &'static str,
    },
    /// A secret could not be stored in Parameter Store; the secret was revoked again (or
    /// never made), so no secret exists that nobody holds.
    #[error("cannot store the secret in Parameter Store: {source}; {undone}")]
    SecretStore {
        #[source]
        source: AwsError,
        undone: &'static str,
    },
    /// A key pair's private key file exists already, and tether did not write it.
    #[error("refusing to overwrite `{path}`, which tether did not write; no key pair was created")]
    KeyFileExists { path: String },
    /// The SSH config's tether markers are unbalanced or repeated: writing could take the
    /// user's own lines for the block, so nothing was written.
    #[error("refusing to write `{path}`: {problem}; nothing was written")]
    ConfigMarkers { path: String, problem: String },
    /// A local file the operation needs cannot be read.
    #[error("cannot read `{path}`: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How one resource's change ended.
#[derive(Debug)]
pub enum StepResult {
    Done,
    Failed(StepError),
    /// Not attempted because `because` failed.
    Skipped {
        because: Option<Address>,
    },
}

/// The outcome of an apply, one entry per actionable change, in address order.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<(Address, Action, StepResult)>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.results
            .iter()
            .all(|(_, _, r)| matches!(r, StepResult::Done))
    }
}

/// Checks that the credentials belong to the plan's account and the client talks to its
/// region. Reads only; changes nothing (callers check before taking the project lock, so a
/// plan for another account leaves nothing in this one).
pub async fn check_target(cloud: &Cloud, plan: &Plan) -> Result<(), ApplyError> {
    if cloud.region() != plan.region {
        return Err(ApplyError::WrongRegion {
            planned: plan.region.clone(),
            configured: cloud.region().to_string(),
        });
    }
    let account_id = cloud.account_id().await.map_err(ApplyError::Identity)?;
    if account_id != plan.account_id {
        return Err(ApplyError::WrongAccount {
            planned: plan.account_id.clone(),
            configured: account_id,
        });
    }
    Ok(())
}

/// Re-reads every resource the plan changes and refuses if any differs from what the plan
/// saw (`before`). Reads only; changes nothing. Check the target first (`check_target`).
pub async fn check_fresh(cloud: &Cloud, plan: &Plan) -> Result<(), ApplyError> {
    let touched: Vec<Address> = plan.actionable().map(|c| c.address.clone()).collect();
    if touched.is_empty() {
        return Ok(());
    }
    let mut live = live::read(cloud, &plan.project, Scope::Only(&touched))
        .await
        .map_err(ApplyError::Read)?;
    // The alias block lives in a local file, which the account reader does not see.
    for change in plan.actionable() {
        let state = change.before.as_ref().or(change.after.as_ref());
        if let Some(crate::model::ResourceState::SshConfig(config)) = state {
            let block = live::ssh_config_block(Path::new(&config.file), &plan.project).map_err(
                |source| ApplyError::ReadFile {
                    path: config.file.clone(),
                    source,
                },
            )?;
            if let Some(block) = block {
                live.resources.insert(block.address.clone(), block);
            }
        }
    }
    let stale: Vec<String> = plan
        .actionable()
        .filter_map(|change| {
            let now = live.resources.get(&change.address).map(|r| &r.state);
            match (change.before.as_ref(), now) {
                (None, Some(_)) => Some(format!(
                    "  {}: now exists; the plan expected to create it",
                    change.address
                )),
                (Some(_), None) => Some(format!("  {}: no longer exists", change.address)),
                (Some(before), Some(now)) if before != now => Some(format!(
                    "  {}: changed since the plan was made",
                    change.address
                )),
                _ => None,
            }
        })
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Stale(stale))
    }
}

/// Applies the plan's changes, at most `parallelism` resources at a time. `home` is the
/// applying operator's, for `~` in local secret files.
pub async fn apply(
    cloud: &Cloud,
    plan: &Plan,
    home: Option<&Path>,
    parallelism: usize,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Report {
    let jobs: Vec<(Address, Vec<Address>)> = plan
        .actionable()
        .map(|c| (c.address.clone(), c.depends_on.clone()))
        .collect();
    let context = steps::Context::of(plan, home);
    let context = &context;
    let mut outcomes = coordinator::run(jobs, parallelism, |address: Address| async move {
        let change = plan
            .change(&address)
            .expect("every job is a change of the plan");
        let started = Instant::now();
        for operation in steps::operations(change, context) {
            progress(Progress::Started {
                address: &change.address,
                operation: &operation,
            });
            let on_wait = |state: &str, elapsed: Duration| {
                progress(Progress::Waiting {
                    address: &change.address,
                    state,
                    elapsed,
                });
            };
            if let Err(error) = run_operation(cloud, &context.project, &on_wait, &operation).await {
                let hint = hint_for(&operation, &error);
                let error = StepError { error, hint };
                progress(Progress::Failed {
                    address: &change.address,
                    error: &error,
                });
                return Err(error);
            }
        }
        progress(Progress::Finished {
            address: &change.address,
            action: change.action,
            elapsed: started.elapsed(),
        });
        Ok(())
    })
    .await;
    let results = plan
        .actionable()
        .map(|change| {
            let result = match outcomes.remove(&change.address) {
                Some(Outcome::Succeeded) => StepResult::Done,
                Some(Outcome::Failed(error)) => StepResult::Failed(error),
                Some(Outcome::Skipped { because }) => StepResult::Skipped { because },
                None => StepResult::Skipped { because: None },
            };
            (change.address.clone(), change.action, result)
        })
        .collect();
    Report { results }
}

async fn run_operation(
    cloud: &Cloud,
    project: &str,
    on_wait: crate::aws::OnWait<'_>,
    operation: &Operation,
) -> Result<(), StepFailure> {
    let result = match operation {
        Operation::CreateBucket { bucket, tags } => cloud.create_bucket(bucket, tags).await,
        Operation::PutBucketTags { bucket, tags } => cloud.put_bucket_tags(bucket, tags).await,
        Operation::PutPublicAccessBlock { bucket, block } => {
            cloud.put_public_access_block(bucket, *block).await
        }
        Operation::PutBucketPolicy { bucket, policy } => {
            cloud.put_bucket_policy(bucket, policy).await
        }
        Operation::DeleteBucketPolicy { bucket } => cloud.delete_bucket_policy(bucket).await,
        Operation::EmptyBucket { bucket } => cloud.empty_bucket(bucket).await.map(|_| ()),
        Operation::DeleteBucket { bucket } => cloud.delete_bucket(bucket).await,
        Operation::CreateGroup { group, path } => cloud.create_group(group, path).await,
        Operation::SetGroupPath { group, path } => cloud.set_group_path(group, path).await,
        Operation::AttachGroupPolicy { group, arn } => cloud.attach_group_policy(group, arn).await,
        Operation::DetachGroupPolicy { group, arn } => cloud.detach_group_policy(group, arn).await,
        Operation::DeleteGroup { group } => cloud.delete_group(group).await,
        Operation::CreateUser { user, path, tags } => cloud.create_user(user, path, tags).await,
        Operation::SetUserPath { user, path } => cloud.set_user_path(user, path).await,
        Operation::SetUserTags { user, tags, remove } => {
            cloud.set_user_tags(user, tags, remove).await
        }
        Operation::AddUserToGroup { user, group } => cloud.add_user_to_group(user, group).await,
        Operation::RemoveUserFromGroup { user, group } => {
            cloud.remove_user_from_group(user, group).await
        }
        Operation::AttachUserPolicy { user, arn } => cloud.attach_user_policy(user, arn).await,
        Operation::DetachUserPolicy { user, arn } => cloud.detach_user_policy(user, arn).await,
        Operation::PutUserPolicy {
            user,
            name,
            document,
        } => cloud.put_user_policy(user, name, document).await,
        Operation::DeleteUserPolicy { user, name } => cloud.delete_user_policy(user, name).await,
        Operation::DeleteUser { user, parameters } => {
            for parameter in parameters {
                cloud.delete_parameter(parameter).await?;
            }
            cloud.delete_user(user).await
        }
        Operation::SetAccountAlias { alias, previous } => {
            cloud.set_account_alias(alias, previous.as_deref()).await
        }
        Operation::DeleteAccountAlias { alias } => cloud.delete_account_alias(alias).await,
        Operation::PutPasswordPolicy { policy } => cloud.put_password_policy(policy).await,
        Operation::DeletePasswordPolicy => cloud.delete_password_policy().await,
        Operation::PutRecord {
            parameter,
            owner,
            record,
        } => {
            cloud
                .put_parameter(
                    parameter,
                    record.as_str(),
                    ParameterKind::Record,
                    &parameter_tags(project, owner),
                )
                .await
        }
        Operation::DeleteRecord { parameter } => cloud.delete_parameter(parameter).await,
        Operation::CreateLoginProfile {
            user,
            destination,
            minimum_length,
        } => return create_login_profile(cloud, project, user, destination, *minimum_length).await,
        Operation::DeleteLoginProfile { user, parameter } => {
            if let Some(parameter) = parameter {
                cloud.delete_parameter(parameter).await?;
            }
            cloud.delete_login_profile(user).await
        }
        Operation::CreateAccessKey {
            user,
            destination,
            profile,
            replace_existing,
        } => {
            // Keys nobody holds go first, which also keeps within AWS's two keys per user.
            if *replace_existing {
                delete_access_keys(cloud, user).await?;
            }
            return issue_access_key(cloud, project, user, destination, profile)
                .await
                .map(|_| ());
        }
        Operation::DeleteAccessKeys { user, parameter } => {
            if let Some(parameter) = parameter {
                cloud.delete_parameter(parameter).await?;
            }
            delete_access_keys(cloud, user).await
        }
        Operation::CreateKeyPair {
            name,
            tags,
            destination,
        } => return create_key_pair(cloud, project, name, tags, destination).await,
        Operation::ImportKeyPair {
            name,
            tags,
            public_key_file,
        } => {
            let public_key =
                std::fs::read(public_key_file).map_err(|source| StepFailure::ReadFile {
                    path: public_key_file.display().to_string(),
                    source,
                })?;
            cloud.import_key_pair(name, &public_key, tags).await
        }
        Operation::SetKeyPairTags { name, tags, remove } => {
            cloud.set_key_pair_tags(name, tags, remove).await
        }
        Operation::DeleteKeyPair { name, parameter } => {
            if let Some(parameter) = parameter {
                cloud.delete_parameter(parameter).await?;
            }
            cloud.delete_key_pair(name).await
        }
        Operation::CreateSecurityGroup {
            name,
            description,
            tags,
        } => cloud.create_security_group(name, description, tags).await,
        Operation::SetSecurityGroupTags { name, tags, remove } => {
            cloud.set_security_group_tags(name, tags, remove).await
        }
        Operation::AuthorizeIngress { group, rules } => cloud.authorize_ingress(group, rules).await,
        Operation::RevokeIngress { group, rules } => cloud.revoke_ingress(group, rules).await,
        Operation::DeleteSecurityGroup { name } => cloud.delete_security_group(name).await,
        Operation::LaunchInstance { name, launch } => {
            return instances::launch(cloud, on_wait, project, name, launch).await
        }
        Operation::StopInstance { name } => {
            return instances::reach(cloud, on_wait, project, name, RunState::Stopped).await
        }
        Operation::StartInstance { name } => {
            return instances::reach(cloud, on_wait, project, name, RunState::Running).await
        }
        Operation::SetInstanceType {
            name,
            instance_type,
        } => return instances::set_type(cloud, project, name, instance_type).await,
        Operation::SetInstanceProfile { name, profile } => {
            return instances::set_instance_profile(cloud, project, name, profile.as_deref()).await
        }
        Operation::SetInstanceSecurityGroups { name, groups } => {
            return instances::set_security_groups(cloud, project, name, groups).await
        }
        Operation::ModifyVolume {
            name,
            device,
            size_gb,
            volume_type,
        } => {
            return instances::modify_volume(
                cloud,
                project,
                name,
                device.as_deref(),
                *size_gb,
                volume_type.as_deref(),
            )
            .await
        }
        Operation::SetInstanceTags { name, tags, remove } => {
            return instances::set_tags(cloud, project, name, tags, remove).await
        }
        Operation::TerminateInstance { name } => {
            return instances::terminate(cloud, on_wait, project, name).await
        }
        Operation::AllocateAddress { name, tags } => {
            return instances::allocate_address(cloud, project, name, tags).await
        }
        Operation::AssociateAddress {
            name,
            instance,
            replacing,
        } => {
            return instances::associate_address(
                cloud,
                on_wait,
                project,
                name,
                instance,
                replacing.as_deref(),
            )
            .await
        }
        Operation::DisassociateAddress { name } => {
            return instances::disassociate_address(cloud, project, name).await
        }
        Operation::ReleaseAddress { name } => {
            return instances::release_address(cloud, project, name).await
        }
        Operation::SetAddressTags { name, tags, remove } => {
            return instances::set_address_tags(cloud, project, name, tags, remove).await
        }
        Operation::WriteSshConfig { file, hosts } => {
            return sshconfig::write(cloud, project, file, hosts).await
        }
        Operation::RemoveSshConfig { file } => return sshconfig::remove(project, file),
    };
    Ok(result?)
}

/// Tags for the parameters tether writes: the project and the resource they belong to.
fn parameter_tags(project: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PROJECT.to_string(), project.to_string()),
        (TAG_NAME.to_string(), name.to_string()),
    ])
}

/// Creates a key pair (tagged `pending`) and stores its private key; if that fails the key
/// pair is deleted again, so no key pair exists whose private key nobody has. Then the key
/// pair records where its key is. A run that dies before that leaves it `pending`, which
/// the next plan replaces: the account alone says so, whoever plans.
async fn create_key_pair(
    cloud: &Cloud,
    project: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
    destination: &KeyDestination,
) -> Result<(), StepFailure> {
    if let KeyDestination::File { path, secrets_dir } = destination {
        secrets::check_writable(path, secrets_dir).map_err(|_| StepFailure::KeyFileExists {
            path: path.display().to_string(),
        })?;
    }
    let created = cloud.create_key_pair(name, tags).await?;
    let undone = "the key pair just created was deleted again";
    let stored = match destination {
        KeyDestination::ParameterStore => {
            let stored = cloud
                .put_parameter(
                    &secrets::key_pair_parameter(&created.id),
                    &created.private_key.0,
                    ParameterKind::Secret,
                    &parameter_tags(project, name),
                )
                .await
                .map_err(|source| StepFailure::SecretStore { source, undone });
            stored.map(|()| PrivateKeyRecord::ParameterStore)
        }
        KeyDestination::File { path, secrets_dir } => {
            secrets::write_owned(path, &created.private_key.0, 0o400, secrets_dir)
                .map(|_| PrivateKeyRecord::Local)
                .map_err(|error| match error {
                    secrets::OwnedWriteError::NotOurs { path } => {
                        StepFailure::KeyFileExists { path }
                    }
                    secrets::OwnedWriteError::Io { path, source } => StepFailure::SecretFile {
                        path,
                        source,
                        undone,
                    },
                })
        }
    };
    let record = match stored {
        Ok(record) => record,
        Err(failure) => {
            cloud.delete_key_pair(name).await?;
            return Err(failure);
        }
    };
    let recorded = BTreeMap::from([(TAG_PRIVATE_KEY.to_string(), record.as_tag().to_string())]);
    Ok(cloud.set_key_pair_tags(name, &recorded, &[]).await?)
}

async fn delete_access_keys(cloud: &Cloud, user: &str) -> Result<(), AwsError> {
    for key in cloud.access_keys(user).await? {
        cloud.delete_access_key(user, &key.id).await?;
    }
    Ok(())
}

/// Stores a new password first, then creates the login profile with it; if AWS refuses,
/// the stored copy is removed. A crash between the two leaves a stored password no profile
/// uses, which the next apply overwrites: never a profile whose password nobody has.
async fn create_login_profile(
    cloud: &Cloud,
    project: &str,
    user: &str,
    destination: &SecretDestination,
    minimum_length: u16,
) -> Result<(), StepFailure> {
    let undone = "no console password was set";
    // The account's policy may be stricter than the spec's (or be one the spec does not
    // declare); the password must satisfy whichever is in force when it is set.
    let in_force = cloud
        .password_policy()
        .await?
        .map_or(0, |policy| policy.minimum_length);
    let password = secrets::generate_password(minimum_length.max(in_force)).map_err(|source| {
        StepFailure::SecretFile {
            path: "(the operating system's random source)".into(),
            source,
            undone,
        }
    })?;
    store_secret(
        cloud,
        project,
        user,
        destination,
        &format!("{password}\n"),
        undone,
    )
    .await?;
    if let Err(error) = cloud.create_login_profile(user, &password).await {
        forget_secret(cloud, destination).await;
        return Err(error.into());
    }
    Ok(())
}

/// Puts a secret where `destination` says: a `SecureString` parameter, or a 0600 file.
async fn store_secret(
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
                &parameter_tags(project, owner),
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
async fn forget_secret(cloud: &Cloud, destination: &SecretDestination) {
    match destination {
        SecretDestination::Parameter(name) => {
            let _ = cloud.delete_parameter(name).await;
        }
        SecretDestination::File(path) => {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates an access key and stores it at `destination` (as `profile` in a credentials
/// file). The user is tagged `pending` first and with the key's id once it is stored, so a
/// run that dies in between leaves a key the next plan knows nobody holds. If the key
/// cannot be stored, it is deleted again. Returns the new key's id.
pub async fn issue_access_key(
    cloud: &Cloud,
    project: &str,
    user: &str,
    destination: &SecretDestination,
    profile: &str,
) -> Result<String, StepFailure> {
    let record = |value: &str| BTreeMap::from([(TAG_ACCESS_KEY.to_string(), value.to_string())]);
    cloud
        .set_user_tags(user, &record(SECRET_PENDING), &[])
        .await?;
    let key = cloud.create_access_key(user).await?;
    let secret = match destination {
        SecretDestination::Parameter(_) => secrets::access_key_document(&key.id, &key.secret),
        SecretDestination::File(_) => secrets::credentials_text(profile, &key.id, &key.secret),
    };
    let undone = "the access key just created was deleted again";
    if let Err(failure) = store_secret(cloud, project, user, destination, &secret, undone).await {
        cloud.delete_access_key(user, &key.id).await?;
        return Err(failure);
    }
    cloud.set_user_tags(user, &record(&key.id), &[]).await?;
    Ok(key.id)
}

/// What to do about a failed operation, where tether knows better than the AWS message.
fn hint_for(operation: &Operation, error: &StepFailure) -> Option<String> {
    let error = match error {
        StepFailure::Aws(error) => error,
        StepFailure::SecretFile { path, .. } => {
            return Some(format!(
                "make `{}` writable, then apply again",
                Path::new(path)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))
        }
        StepFailure::KeyFileExists { .. } => {
            return Some("move the file away, or set `private_key_file` to a new path".into())
        }
        StepFailure::SecretStore { source, .. } => {
            return Some(source.hint().unwrap_or_else(|| {
                "check that the credentials may call ssm:PutParameter with the account's aws/ssm key, or set `secrets: local`".into()
            }))
        }
        StepFailure::ReadFile { .. } => return Some("check `public_key_file` in the spec".into()),
        StepFailure::ConfigMarkers { .. } => {
            return Some("fix the markers by hand (one `# BEGIN tether <project>` line, then one `# END tether <project>` line), then apply again".into())
        }
    };
    match operation {
        Operation::DeleteBucket { bucket } if error.is_code("BucketNotEmpty") => Some(format!(
            "tether empties a bucket only when it is tagged `force_destroy` and the project's record shows it created it: empty `{bucket}` yourself, or run again with --empty-tagged-buckets if its contents may go"
        )),
        Operation::CreateBucket { bucket, .. } if error.is_code("BucketAlreadyExists") => Some(format!(
            "bucket names are global across all AWS accounts, and `{bucket}` is taken: choose another name"
        )),
        _ => error.hint(),
    }
}
