//! IAM users: owned by their path like groups, with tags, groups, managed and inline
//! policies, and the two secrets tether issues and stores (a console password, an access
//! key), each recorded on the user so that the account alone says whether anyone holds it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{AwsError, Cloud};
use crate::model::{
    attribute, path_ownership, Attribute, AttributeFormat, Kind, Ownership, SECRET_PENDING,
    TAG_ACCESS_KEY,
};
use crate::secrets::{self, UserSecret};
use crate::spec::SecretsMode;

use crate::model::{iam_path, ownership_tags, Address};
use crate::policy;
use crate::spec::{Spec, UserSpec};

use super::secret::{self as secret_store, SecretDestination};
use super::{
    policy_changes, removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure, UnheldSecret,
};

/// The comparable state of an IAM user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// IAM path; `/tether/<project>/` marks ownership, as for groups.
    pub path: String,
    /// All tags, tether's included.
    pub tags: BTreeMap<String, String>,
    pub groups: BTreeSet<String>,
    /// Attached managed policy ARNs.
    pub policies: BTreeSet<String>,
    /// Inline policies by name, normalised.
    pub inline_policies: BTreeMap<String, Value>,
    /// Has a login profile (a console password).
    #[serde(default)]
    pub console_access: bool,
    /// Has an active access key.
    #[serde(default)]
    pub programmatic_access: bool,
    /// The access key tether issued and stored, as recorded on the user (tag
    /// `tether:access-key-id`; live only): its id, or `pending` while one is being made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_access_key: Option<String>,
}

/// A user's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum UserOp {
    Create {
        user: String,
        path: String,
        tags: BTreeMap<String, String>,
    },
    SetPath {
        user: String,
        path: String,
    },
    /// Make the user's tags exactly `tags`.
    SetTags {
        user: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AddToGroup {
        user: String,
        group: String,
    },
    RemoveFromGroup {
        user: String,
        group: String,
    },
    AttachPolicy {
        user: String,
        arn: String,
    },
    DetachPolicy {
        user: String,
        arn: String,
    },
    PutInlinePolicy {
        user: String,
        name: String,
        document: Value,
    },
    DeleteInlinePolicy {
        user: String,
        name: String,
    },
    /// Delete the user's stored secrets (`parameters`), then the user in the order IAM
    /// requires: login profile, access keys, attached and inline policies, group
    /// memberships, then the user.
    Delete {
        user: String,
        parameters: Vec<String>,
    },
    /// Generate a password, store it at `destination`, then create the login profile
    /// (reset required at first sign-in).
    CreateLoginProfile {
        user: String,
        destination: SecretDestination,
        minimum_length: u16,
    },
    /// Delete the stored password (`parameter`), then the login profile.
    DeleteLoginProfile {
        user: String,
        parameter: Option<String>,
    },
    /// Record the key as `pending` on the user, create it, store it at `destination` (as
    /// profile `profile` in a file), then record its id on the user. With
    /// `replace_existing`, the user's keys (which nobody holds) are deleted first.
    CreateAccessKey {
        user: String,
        destination: SecretDestination,
        profile: String,
        replace_existing: bool,
    },
    /// Delete the stored key (`parameter`), then the user's access keys.
    DeleteAccessKeys {
        user: String,
        parameter: Option<String>,
    },
}

/// The IAM user kind.
pub struct IamUser;

impl Context {
    /// Where a user's secret of one kind goes: its parameter, or its file.
    fn user_secret(&self, secret: UserSecret, user: &str) -> SecretDestination {
        SecretDestination::of_user(self.secrets, &self.project, &self.secrets_dir, secret, user)
    }

    /// The parameter that holds a user's secret of one kind, when secrets are stored there.
    fn user_parameter(&self, secret: UserSecret, user: &str) -> Option<String> {
        (self.secrets == SecretsMode::ParameterStore).then(|| secret.parameter(&self.project, user))
    }
}

/// Reads a listed user: its tags (the stored access key's id among them), groups,
/// policies, console access and keys, at the same time.
pub(crate) async fn read(
    cloud: &Cloud,
    user: crate::aws::IamEntity,
) -> Result<super::LiveResource, AwsError> {
    let (mut tags, groups, policies, inline, console_access, keys) = tokio::try_join!(
        cloud.user_tags(&user.name),
        cloud.user_groups(&user.name),
        cloud.user_policies(&user.name),
        cloud.user_inline_policies(&user.name),
        cloud.has_login_profile(&user.name),
        cloud.access_keys(&user.name),
    )?;
    let stored_access_key = tags.remove(TAG_ACCESS_KEY);
    Ok(super::LiveResource {
        address: Address::new(Kind::IamUser, &user.name),
        // A user refers to its groups: a group is deleted after its members leave.
        depends_on: groups
            .iter()
            .map(|g| Address::new(Kind::IamGroup, g))
            .collect(),
        state: ResourceState::IamUser(UserState {
            path: user.path,
            tags,
            groups,
            policies,
            inline_policies: inline
                .iter()
                .map(|(name, document)| (name.clone(), policy::normalise(document)))
                .collect(),
            console_access,
            programmatic_access: keys.iter().any(|key| key.active),
            stored_access_key,
        }),
    })
}

impl ResourceKind for IamUser {
    const KIND: Kind = Kind::IamUser;
    type State = UserState;
    type Op = UserOp;

    /// Users carry both the owner's path and the ownership tags; the path decides.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.users
            .values()
            .map(|user| desired_user(env.project, user))
            .collect()
    }

    fn attributes(user: &UserState) -> Vec<Attribute> {
        use AttributeFormat::{Document, Map, Value as Scalar};
        vec![
            attribute("path", &user.path, Scalar),
            attribute("tags", &user.tags, Map),
            attribute("groups", &user.groups, Scalar),
            attribute("policies", &user.policies, Scalar),
            attribute("inline_policies", &user.inline_policies, Document),
            attribute("console_access", user.console_access, Scalar),
            attribute("programmatic_access", user.programmatic_access, Scalar),
        ]
    }

    fn ownership(user: &UserState, project: &str) -> Ownership {
        path_ownership(&user.path, project)
    }

    /// Back to IAM's root path, `/`, without tether's tags; its password, keys, groups and
    /// policies stay, and so do the copies of its secrets tether stored.
    fn disowned(user: &UserState) -> Result<UserState, &'static str> {
        Ok(UserState {
            path: "/".to_string(),
            tags: crate::model::without_tether_tags(&user.tags),
            stored_access_key: None,
            ..user.clone()
        })
    }

    fn create(
        name: &str,
        user: &UserState,
        _replacing: Option<&UserState>,
        context: &Context,
    ) -> Vec<UserOp> {
        let mut ops = vec![UserOp::Create {
            user: name.to_string(),
            path: user.path.clone(),
            tags: user.tags.clone(),
        }];
        let empty = UserState {
            path: user.path.clone(),
            tags: user.tags.clone(),
            groups: BTreeSet::new(),
            policies: BTreeSet::new(),
            inline_policies: BTreeMap::new(),
            console_access: false,
            programmatic_access: false,
            stored_access_key: None,
        };
        ops.extend(update_user(name, &empty, user, context, false));
        ops
    }

    fn update(
        name: &str,
        before: &UserState,
        after: &UserState,
        intent: &Intent,
        context: &Context,
    ) -> Vec<UserOp> {
        update_user(name, before, after, context, intent.reissue_secret)
    }

    fn delete(name: &str, _before: &UserState, _intent: &Intent, context: &Context) -> Vec<UserOp> {
        vec![UserOp::Delete {
            user: name.to_string(),
            parameters: [
                context.user_parameter(UserSecret::AccessKey, name),
                context.user_parameter(UserSecret::ConsolePassword, name),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }]
    }

    fn describe(op: &UserOp) -> &'static str {
        match op {
            UserOp::Create { .. } => "creating user",
            UserOp::SetPath { .. } => "setting path",
            UserOp::SetTags { .. } => "tagging",
            UserOp::AddToGroup { .. } => "adding to group",
            UserOp::RemoveFromGroup { .. } => "removing from group",
            UserOp::AttachPolicy { .. } => "attaching policy",
            UserOp::DetachPolicy { .. } => "detaching policy",
            UserOp::PutInlinePolicy { .. } => "putting inline policy",
            UserOp::DeleteInlinePolicy { .. } => "deleting inline policy",
            UserOp::Delete { .. } => "deleting user",
            UserOp::CreateLoginProfile { .. } => "creating console password",
            UserOp::DeleteLoginProfile { .. } => "deleting console password",
            UserOp::CreateAccessKey { .. } => "creating access key",
            UserOp::DeleteAccessKeys { .. } => "deleting access keys",
        }
    }

    async fn run(op: &UserOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let (cloud, project) = (step.cloud, step.project);
        let result = match op {
            UserOp::Create { user, path, tags } => cloud.create_user(user, path, tags).await,
            UserOp::SetPath { user, path } => cloud.set_user_path(user, path).await,
            UserOp::SetTags { user, tags, remove } => cloud.set_user_tags(user, tags, remove).await,
            UserOp::AddToGroup { user, group } => cloud.add_user_to_group(user, group).await,
            UserOp::RemoveFromGroup { user, group } => {
                cloud.remove_user_from_group(user, group).await
            }
            UserOp::AttachPolicy { user, arn } => cloud.attach_user_policy(user, arn).await,
            UserOp::DetachPolicy { user, arn } => cloud.detach_user_policy(user, arn).await,
            UserOp::PutInlinePolicy {
                user,
                name,
                document,
            } => cloud.put_user_policy(user, name, document).await,
            UserOp::DeleteInlinePolicy { user, name } => cloud.delete_user_policy(user, name).await,
            UserOp::Delete { user, parameters } => {
                for parameter in parameters {
                    cloud.delete_parameter(parameter).await?;
                }
                cloud.delete_user(user).await
            }
            UserOp::CreateLoginProfile {
                user,
                destination,
                minimum_length,
            } => {
                return create_login_profile(cloud, project, user, destination, *minimum_length)
                    .await
            }
            UserOp::DeleteLoginProfile { user, parameter } => {
                if let Some(parameter) = parameter {
                    cloud.delete_parameter(parameter).await?;
                }
                cloud.delete_login_profile(user).await
            }
            UserOp::CreateAccessKey {
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
            UserOp::DeleteAccessKeys { user, parameter } => {
                if let Some(parameter) = parameter {
                    cloud.delete_parameter(parameter).await?;
                }
                delete_access_keys(cloud, user).await
            }
        };
        Ok(result?)
    }

    fn policy_arns(user: &UserState) -> Vec<&str> {
        user.policies.iter().map(String::as_str).collect()
    }

    fn unheld_secret(user: &UserState) -> Option<UnheldSecret> {
        (user.programmatic_access && user.stored_access_key.as_deref() == Some(SECRET_PENDING))
            .then_some(UnheldSecret {
                reason:
                    "a run that issued its access key died before storing it, so nobody holds it",
                replace: None,
            })
    }

    /// A user without programmatic access, so that a diff issues its key anew.
    fn without_secret(user: &UserState) -> UserState {
        UserState {
            programmatic_access: false,
            ..user.clone()
        }
    }
}

/// Ownership (path, tags) first, so an adoption marks the user before changing it; grants
/// are added before old ones are removed, so the user never briefly has neither.
fn update_user(
    name: &str,
    before: &UserState,
    after: &UserState,
    context: &Context,
    reissue: bool,
) -> Vec<UserOp> {
    let user = || name.to_string();
    let mut ops = Vec::new();
    if before.path != after.path {
        ops.push(UserOp::SetPath {
            user: user(),
            path: after.path.clone(),
        });
    }
    if before.tags != after.tags {
        ops.push(UserOp::SetTags {
            user: user(),
            tags: after.tags.clone(),
            remove: removed_keys(&before.tags, &after.tags),
        });
    }
    ops.extend(
        after
            .groups
            .difference(&before.groups)
            .map(|group| UserOp::AddToGroup {
                user: user(),
                group: group.clone(),
            }),
    );
    let changes = policy_changes(
        (&before.policies, &before.inline_policies),
        (&after.policies, &after.inline_policies),
    );
    ops.extend(changes.attach.into_iter().map(|arn| UserOp::AttachPolicy {
        user: user(),
        arn: arn.clone(),
    }));
    ops.extend(
        changes
            .put
            .into_iter()
            .map(|(policy, document)| UserOp::PutInlinePolicy {
                user: user(),
                name: policy.clone(),
                document: document.clone(),
            }),
    );
    ops.extend(
        before
            .groups
            .difference(&after.groups)
            .map(|group| UserOp::RemoveFromGroup {
                user: user(),
                group: group.clone(),
            }),
    );
    ops.extend(changes.detach.into_iter().map(|arn| UserOp::DetachPolicy {
        user: user(),
        arn: arn.clone(),
    }));
    ops.extend(
        changes
            .delete
            .into_iter()
            .map(|policy| UserOp::DeleteInlinePolicy {
                user: user(),
                name: policy.clone(),
            }),
    );
    match (before.console_access, after.console_access) {
        (false, true) => ops.push(UserOp::CreateLoginProfile {
            user: user(),
            destination: context.user_secret(UserSecret::ConsolePassword, name),
            minimum_length: context.minimum_password_length,
        }),
        (true, false) => ops.push(UserOp::DeleteLoginProfile {
            user: user(),
            parameter: context.user_parameter(UserSecret::ConsolePassword, name),
        }),
        _ => {}
    }
    match (before.programmatic_access, after.programmatic_access) {
        (false, true) => ops.push(UserOp::CreateAccessKey {
            user: user(),
            destination: context.user_secret(UserSecret::AccessKey, name),
            profile: secrets::profile_name(&context.project, name),
            replace_existing: reissue,
        }),
        (true, false) => ops.push(UserOp::DeleteAccessKeys {
            user: user(),
            parameter: context.user_parameter(UserSecret::AccessKey, name),
        }),
        _ => {}
    }
    ops
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
    secret_store::store(
        cloud,
        project,
        user,
        destination,
        &format!("{password}\n"),
        undone,
    )
    .await?;
    if let Err(error) = cloud.create_login_profile(user, &password).await {
        secret_store::forget(cloud, destination).await;
        return Err(error.into());
    }
    Ok(())
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
    if let Err(failure) =
        secret_store::store(cloud, project, user, destination, &secret, undone).await
    {
        cloud.delete_access_key(user, &key.id).await?;
        return Err(failure);
    }
    cloud.set_user_tags(user, &record(&key.id), &[]).await?;
    Ok(key.id)
}

fn desired_user(project: &str, user: &UserSpec) -> DesiredResource {
    let mut tags = user.tags.clone();
    tags.extend(ownership_tags(project, &user.name));
    DesiredResource {
        address: Address::new(Kind::IamUser, &user.name),
        state: ResourceState::IamUser(UserState {
            path: iam_path(project),
            tags,
            groups: user.groups.clone(),
            policies: user.policies.clone(),
            inline_policies: user
                .inline_policies
                .iter()
                .map(|(name, document)| (name.clone(), policy::normalise(document)))
                .collect(),
            console_access: user.console_access,
            programmatic_access: user.programmatic_access,
            stored_access_key: None,
        }),
        adopt: user.adopt,
        // Membership needs the groups to exist.
        depends_on: user
            .groups
            .iter()
            .map(|group| Address::new(Kind::IamGroup, group))
            .collect(),
        location: user.location.clone(),
    }
}
