//! From a change to the ordered AWS operations that carry it out. Pure.
//!
//! Every operation is idempotent (a put replaces, a create of a bucket the account already
//! owns succeeds, a delete of something gone succeeds), so a step interrupted halfway is
//! finished by running all its operations again: re-running `apply` converges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::model::{
    BucketState, IngressRule, InstanceState, KeyPairState, Kind, Market, OwnershipRecord,
    PasswordPolicyState, PrivateKeyRecord, PublicAccessBlock, ResourceState, RunState, UserState,
    VolumeState, TAG_GENERATION, TAG_MAX_PRICE, TAG_PRIVATE_KEY, TAG_PUBLIC_KEY_FILE,
    TAG_USER_DATA,
};
use crate::plan::{Action, Change, Plan};
use crate::secrets;
use crate::spec::SecretsMode;

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

/// Where a generated key pair's private key is kept.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyDestination {
    /// Parameter Store, at `/ec2/keypair/<key-pair-id>` (known once the pair exists).
    ParameterStore,
    /// A local file of mode 0400 (`secrets: local`), never over a file tether did not
    /// write; `secrets_dir` holds tether's record of the files it wrote.
    File { path: PathBuf, secrets_dir: PathBuf },
}

/// One AWS call, in tether's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    CreateBucket {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    PutBucketTags {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    PutPublicAccessBlock {
        bucket: String,
        block: PublicAccessBlock,
    },
    PutBucketPolicy {
        bucket: String,
        policy: Value,
    },
    DeleteBucketPolicy {
        bucket: String,
    },
    /// Delete every object version and delete marker.
    EmptyBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    CreateGroup {
        group: String,
        path: String,
    },
    SetGroupPath {
        group: String,
        path: String,
    },
    AttachGroupPolicy {
        group: String,
        arn: String,
    },
    DetachGroupPolicy {
        group: String,
        arn: String,
    },
    /// Detach every policy, delete every inline policy, remove every member, then delete.
    DeleteGroup {
        group: String,
    },
    CreateUser {
        user: String,
        path: String,
        tags: BTreeMap<String, String>,
    },
    SetUserPath {
        user: String,
        path: String,
    },
    /// Make the user's tags exactly `tags`.
    SetUserTags {
        user: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AddUserToGroup {
        user: String,
        group: String,
    },
    RemoveUserFromGroup {
        user: String,
        group: String,
    },
    AttachUserPolicy {
        user: String,
        arn: String,
    },
    DetachUserPolicy {
        user: String,
        arn: String,
    },
    PutUserPolicy {
        user: String,
        name: String,
        document: Value,
    },
    DeleteUserPolicy {
        user: String,
        name: String,
    },
    /// Delete the user's stored secrets (`parameters`), then the user in the order IAM
    /// requires: login profile, access keys, attached and inline policies, group
    /// memberships, then the user.
    DeleteUser {
        user: String,
        parameters: Vec<String>,
    },
    /// An account has one alias: the old one, if any, is removed first.
    SetAccountAlias {
        alias: String,
        previous: Option<String>,
    },
    DeleteAccountAlias {
        alias: String,
    },
    PutPasswordPolicy {
        policy: PasswordPolicyState,
    },
    DeletePasswordPolicy,
    /// Record in the project's Parameter Store path (`parameter`) how it came to own
    /// something its tags cannot prove: an account setting, or a bucket it created.
    PutRecord {
        parameter: String,
        /// The resource's name, for the parameter's tags.
        owner: String,
        record: OwnershipRecord,
    },
    DeleteRecord {
        parameter: String,
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
    /// Create the key pair (tagged `pending`), store its private key at `destination`
    /// (deleting the key pair again if that fails), then record where on the key pair.
    CreateKeyPair {
        name: String,
        tags: BTreeMap<String, String>,
        destination: KeyDestination,
    },
    /// Import the public key in `public_key_file`.
    ImportKeyPair {
        name: String,
        tags: BTreeMap<String, String>,
        public_key_file: PathBuf,
    },
    SetKeyPairTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Delete its stored private key (`parameter`), then the key pair; local copies stay.
    DeleteKeyPair {
        name: String,
        parameter: Option<String>,
    },
    CreateSecurityGroup {
        name: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    SetSecurityGroupTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    AuthorizeIngress {
        group: String,
        rules: Vec<IngressRule>,
    },
    RevokeIngress {
        group: String,
        rules: Vec<IngressRule>,
    },
    DeleteSecurityGroup {
        name: String,
    },
    /// Find the project's instance of this name, or launch it (with a client token, so a
    /// retried call launches nothing more); then wait until it runs.
    LaunchInstance {
        name: String,
        launch: Box<Launch>,
    },
    /// Stop the instance (if it runs) and wait until it is stopped.
    StopInstance {
        name: String,
    },
    /// Start the instance (if stopped) and wait until it runs.
    StartInstance {
        name: String,
    },
    /// Change the type of a stopped instance.
    SetInstanceType {
        name: String,
        instance_type: String,
    },
    SetInstanceSecurityGroups {
        name: String,
        groups: BTreeSet<String>,
    },
    /// Give the instance this instance profile, or none, in place.
    SetInstanceProfile {
        name: String,
        profile: Option<String>,
    },
    /// Grow a volume (`device: None` is the root volume), or change its type.
    ModifyVolume {
        name: String,
        device: Option<String>,
        size_gb: i32,
        volume_type: Option<String>,
    },
    SetInstanceTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Cancel its spot request (if any), terminate every instance of the name, and wait
    /// until they are terminated.
    TerminateInstance {
        name: String,
    },
    /// Find the project's address of this name, or allocate it, tagged.
    AllocateAddress {
        name: String,
        tags: BTreeMap<String, String>,
    },
    /// Wait until the instance is running (or stopped), then associate the address with it.
    /// An address associated with another instance is taken from it only if the plan said
    /// so (`replacing` names the instance the plan saw it on); otherwise this fails.
    AssociateAddress {
        name: String,
        instance: String,
        replacing: Option<String>,
    },
    DisassociateAddress {
        name: String,
    },
    /// Disassociate the address if needed (AWS refuses to release an associated one), then
    /// release it.
    ReleaseAddress {
        name: String,
    },
    SetAddressTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Render the project's alias block with the addresses the instances have now, and put
    /// it into `file` (atomically; nothing outside the block changes).
    WriteSshConfig {
        file: PathBuf,
        hosts: Vec<crate::sshconfig::HostEntry>,
    },
    /// Take the project's block out of `file`.
    RemoveSshConfig {
        file: PathBuf,
    },
}

/// What a launch needs, beyond the instance's name.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub ami: String,
    pub instance_type: String,
    pub market: Market,
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    pub security_groups: BTreeSet<String>,
    pub root_volume_gb: Option<i32>,
    pub volumes: BTreeMap<String, VolumeState>,
    /// The user data, base64, as the plan carries it.
    pub user_data: Option<String>,
    /// The user data must still hash to this, or the plan is stale.
    pub user_data_sha256: Option<String>,
    pub instance_profile: Option<String>,
    /// All tags, tether's bookkeeping tags included.
    pub tags: BTreeMap<String, String>,
    /// Derived from project, name and generation: the same launch always has the same one.
    pub client_token: String,
}

/// What operations need beyond the change itself: where secrets go, and how long a
/// generated password must be.
#[derive(Clone, Debug)]
pub struct Context {
    pub project: String,
    pub secrets: SecretsMode,
    /// The plan's `secrets_dir` made absolute for the operator who applies.
    pub secrets_dir: PathBuf,
    /// The applying operator's home, for `~` in the spec's paths.
    pub home: Option<PathBuf>,
    pub minimum_password_length: u16,
}

impl Context {
    /// The context of `plan` applied by an operator whose home is `home`: its project and
    /// secret store, and the password policy it sets (or IAM's default minimum of 8).
    pub fn of(plan: &Plan, home: Option<&std::path::Path>) -> Context {
        let minimum_password_length = plan
            .changes
            .iter()
            .find_map(|c| match c.after.as_ref().or(c.before.as_ref()) {
                Some(ResourceState::PasswordPolicy { policy, .. }) => Some(policy.minimum_length),
                _ => None,
            })
            .unwrap_or(8);
        Context {
            project: plan.project.clone(),
            secrets: plan.secrets,
            secrets_dir: secrets::expand_home(&plan.secrets_dir, home),
            home: home.map(std::path::Path::to_path_buf),
            minimum_password_length,
        }
    }

    /// Where a user's secret of one kind goes: its parameter, or its file.
    fn user_secret(&self, secret: secrets::UserSecret, user: &str) -> SecretDestination {
        SecretDestination::of_user(self.secrets, &self.project, &self.secrets_dir, secret, user)
    }

    /// The operation that records how the project came to own account setting `name`.
    fn setting_record(&self, name: &str, record: OwnershipRecord) -> Operation {
        Operation::PutRecord {
            parameter: secrets::setting_record_parameter(&self.project, name),
            owner: name.to_string(),
            record,
        }
    }

    /// The parameter that holds a user's secret of one kind, when secrets are stored there.
    fn user_parameter(&self, secret: secrets::UserSecret, user: &str) -> Option<String> {
        (self.secrets == SecretsMode::ParameterStore).then(|| secret.parameter(&self.project, user))
    }
}

impl Operation {
    /// A present-participle description for progress lines.
    pub fn describe(&self) -> &'static str {
        match self {
            Operation::CreateBucket { .. } => "creating bucket",
            Operation::PutBucketTags { .. } => "tagging",
            Operation::PutPublicAccessBlock { .. } => "setting public access block",
            Operation::PutBucketPolicy { .. } => "putting policy",
            Operation::DeleteBucketPolicy { .. } => "deleting policy",
            Operation::EmptyBucket { .. } => "emptying bucket",
            Operation::DeleteBucket { .. } => "deleting bucket",
            Operation::CreateGroup { .. } => "creating group",
            Operation::SetGroupPath { .. } | Operation::SetUserPath { .. } => "setting path",
            Operation::AttachGroupPolicy { .. } | Operation::AttachUserPolicy { .. } => {
                "attaching policy"
            }
            Operation::DetachGroupPolicy { .. } | Operation::DetachUserPolicy { .. } => {
                "detaching policy"
            }
            Operation::DeleteGroup { .. } => "deleting group",
            Operation::CreateUser { .. } => "creating user",
            Operation::SetUserTags { .. } => "tagging",
            Operation::AddUserToGroup { .. } => "adding to group",
            Operation::RemoveUserFromGroup { .. } => "removing from group",
            Operation::PutUserPolicy { .. } => "putting inline policy",
            Operation::DeleteUserPolicy { .. } => "deleting inline policy",
            Operation::DeleteUser { .. } => "deleting user",
            Operation::SetAccountAlias { .. } => "setting account alias",
            Operation::DeleteAccountAlias { .. } => "deleting account alias",
            Operation::PutPasswordPolicy { .. } => "setting password policy",
            Operation::DeletePasswordPolicy => "deleting password policy",
            Operation::PutRecord { .. } => "recording the project's ownership",
            Operation::DeleteRecord { .. } => "deleting the project's ownership record",
            Operation::CreateLoginProfile { .. } => "creating console password",
            Operation::DeleteLoginProfile { .. } => "deleting console password",
            Operation::CreateAccessKey { .. } => "creating access key",
            Operation::DeleteAccessKeys { .. } => "deleting access keys",
            Operation::CreateKeyPair { .. } => "creating key pair",
            Operation::ImportKeyPair { .. } => "importing key pair",
            Operation::SetKeyPairTags { .. } | Operation::SetSecurityGroupTags { .. } => "tagging",
            Operation::DeleteKeyPair { .. } => "deleting key pair",
            Operation::CreateSecurityGroup { .. } => "creating security group",
            Operation::AuthorizeIngress { .. } => "adding ingress rules",
            Operation::RevokeIngress { .. } => "removing ingress rules",
            Operation::DeleteSecurityGroup { .. } => "deleting security group",
            Operation::LaunchInstance { .. } => "launching instance, then waiting until it runs",
            Operation::StopInstance { .. } => "stopping instance, then waiting until it stops",
            Operation::StartInstance { .. } => "starting instance, then waiting until it runs",
            Operation::SetInstanceType { .. } => "changing instance type",
            Operation::SetInstanceSecurityGroups { .. } => "setting security groups",
            Operation::SetInstanceProfile { .. } => "setting instance profile",
            Operation::ModifyVolume { .. } => "modifying volume",
            Operation::SetInstanceTags { .. } | Operation::SetAddressTags { .. } => "tagging",
            Operation::TerminateInstance { .. } => {
                "terminating instance, then waiting until it is gone"
            }
            Operation::AllocateAddress { .. } => "allocating address",
            Operation::AssociateAddress { .. } => "associating address",
            Operation::DisassociateAddress { .. } => "disassociating address",
            Operation::ReleaseAddress { .. } => "releasing address",
            Operation::WriteSshConfig { .. } => "writing SSH aliases",
            Operation::RemoveSshConfig { .. } => "removing SSH aliases",
        }
    }
}

/// The operations that carry out `change`, in order.
pub fn operations(change: &Change, context: &Context) -> Vec<Operation> {
    let name = change.address.name.as_str();
    // A secret nobody holds is issued as if it did not exist.
    let reissued = change
        .before
        .as_ref()
        .filter(|_| change.reissue_secret)
        .map(ResourceState::without_secret);
    let (before, after) = (
        reissued.as_ref().or(change.before.as_ref()),
        change.after.as_ref(),
    );
    if change.action == Action::NoOp {
        return Vec::new();
    }
    let deleting = matches!(change.action, Action::Delete | Action::Replace);
    let creating = matches!(change.action, Action::Create | Action::Replace);
    let mut ops = Vec::new();
    if deleting {
        ops.extend(
            before
                .map(|state| delete(name, state, change.empty_bucket, context))
                .unwrap_or_default(),
        );
    }
    if creating {
        ops.extend(match (before, after) {
            // A replacement launches the next generation, so its client token is new.
            (Some(ResourceState::Instance(old)), Some(ResourceState::Instance(new))) => {
                create_instance(name, new, old.generation + 1, context)
            }
            (_, Some(state)) => create(name, state, context),
            (_, None) => Vec::new(),
        });
    }
    if change.action == Action::Adopt && change.address.kind == Kind::Account {
        // Recorded first, so that a crash leaves the setting owned, never half-adopted.
        ops.push(context.setting_record(name, OwnershipRecord::Adopted));
    }
    if matches!(change.action, Action::Update | Action::Adopt) {
        if let (Some(before), Some(after)) = (before, after) {
            ops.extend(update(name, before, after, context, change.reissue_secret));
        }
    }
    ops
}

fn create(name: &str, after: &ResourceState, context: &Context) -> Vec<Operation> {
    match after {
        ResourceState::Bucket(bucket) => {
            let mut ops = create_bucket(name, bucket);
            // The evidence that emptying it some day deletes the project's own data: kept
            // where those who may tag the bucket cannot write. After the create, so that a
            // failed create records nothing.
            ops.insert(
                1,
                Operation::PutRecord {
                    parameter: secrets::bucket_record_parameter(&context.project, name),
                    owner: name.to_string(),
                    record: OwnershipRecord::Created,
                },
            );
            ops
        }
        ResourceState::IamGroup(group) => {
            let mut ops = vec![Operation::CreateGroup {
                group: name.to_string(),
                path: group.path.clone(),
            }];
            ops.extend(
                group
                    .policies
                    .iter()
                    .map(|arn| Operation::AttachGroupPolicy {
                        group: name.to_string(),
                        arn: arn.clone(),
                    }),
            );
            ops
        }
        ResourceState::IamUser(user) => {
            let mut ops = vec![Operation::CreateUser {
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
        ResourceState::KeyPair(key) => {
            let mut tags = key_pair_tags(key);
            match &key.public_key_file {
                None => {
                    tags.insert(
                        TAG_PRIVATE_KEY.to_string(),
                        PrivateKeyRecord::Pending.as_tag().to_string(),
                    );
                    let destination = match context.secrets {
                        SecretsMode::ParameterStore => KeyDestination::ParameterStore,
                        SecretsMode::Local => KeyDestination::File {
                            path: secrets::expand_home(
                                key.private_key_file.as_deref().unwrap_or_default(),
                                context.home.as_deref(),
                            ),
                            secrets_dir: context.secrets_dir.clone(),
                        },
                    };
                    vec![Operation::CreateKeyPair {
                        name: name.to_string(),
                        tags,
                        destination,
                    }]
                }
                Some(file) => vec![Operation::ImportKeyPair {
                    name: name.to_string(),
                    tags,
                    public_key_file: secrets::expand_home(file, context.home.as_deref()),
                }],
            }
        }
        ResourceState::SecurityGroup(group) => {
            let mut ops = vec![Operation::CreateSecurityGroup {
                name: name.to_string(),
                description: group.description.clone(),
                tags: group.tags.clone(),
            }];
            if !group.ingress.is_empty() {
                ops.push(Operation::AuthorizeIngress {
                    group: name.to_string(),
                    rules: group.ingress.iter().cloned().collect(),
                });
            }
            ops
        }
        ResourceState::Instance(instance) => create_instance(name, instance, 1, context),
        ResourceState::ElasticIp(address) => {
            let mut ops = vec![Operation::AllocateAddress {
                name: name.to_string(),
                tags: address.tags.clone(),
            }];
            ops.extend(
                address
                    .instance
                    .iter()
                    .map(|instance| Operation::AssociateAddress {
                        name: name.to_string(),
                        instance: instance.clone(),
                        replacing: None,
                    }),
            );
            ops
        }
        ResourceState::SshConfig(config) => vec![Operation::WriteSshConfig {
            file: PathBuf::from(&config.file),
            hosts: config.hosts.clone(),
        }],
        // The record goes first: a crash after it leaves a setting the project owns, never
        // one it set but would refuse as someone else's.
        ResourceState::AccountAlias { alias, .. } => vec![
            context.setting_record(name, OwnershipRecord::Created),
            Operation::SetAccountAlias {
                alias: alias.clone(),
                previous: None,
            },
        ],
        ResourceState::PasswordPolicy { policy, .. } => vec![
            context.setting_record(name, OwnershipRecord::Created),
            Operation::PutPasswordPolicy {
                policy: policy.clone(),
            },
        ],
    }
}

/// `empty_bucket`: the plan found evidence (or was told) that the bucket's contents may go.
fn delete(
    name: &str,
    before: &ResourceState,
    empty_bucket: bool,
    context: &Context,
) -> Vec<Operation> {
    match before {
        ResourceState::Bucket(_) => {
            let mut ops = Vec::new();
            if empty_bucket {
                ops.push(Operation::EmptyBucket {
                    bucket: name.to_string(),
                });
            }
            ops.push(Operation::DeleteBucket {
                bucket: name.to_string(),
            });
            // The record goes after the bucket: a crash in between leaves a record of a
            // bucket that is gone, never a bucket without its evidence.
            ops.push(Operation::DeleteRecord {
                parameter: secrets::bucket_record_parameter(&context.project, name),
            });
            ops
        }
        ResourceState::IamGroup(_) => vec![Operation::DeleteGroup {
            group: name.to_string(),
        }],
        ResourceState::IamUser(_) => vec![Operation::DeleteUser {
            user: name.to_string(),
            parameters: [
                context.user_parameter(secrets::UserSecret::AccessKey, name),
                context.user_parameter(secrets::UserSecret::ConsolePassword, name),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }],
        ResourceState::KeyPair(key) => vec![Operation::DeleteKeyPair {
            name: name.to_string(),
            // A pending key may have been stored before its run died: delete that too.
            parameter: match (key.private_key, &key.id) {
                (Some(PrivateKeyRecord::ParameterStore | PrivateKeyRecord::Pending), Some(id)) => {
                    Some(secrets::key_pair_parameter(id))
                }
                _ => None,
            },
        }],
        ResourceState::SecurityGroup(_) => vec![Operation::DeleteSecurityGroup {
            name: name.to_string(),
        }],
        ResourceState::Instance(_) => vec![Operation::TerminateInstance {
            name: name.to_string(),
        }],
        ResourceState::ElasticIp(_) => vec![Operation::ReleaseAddress {
            name: name.to_string(),
        }],
        ResourceState::SshConfig(config) => vec![Operation::RemoveSshConfig {
            file: PathBuf::from(&config.file),
        }],
        // The record goes last: a crash before it leaves a record of a setting that is
        // gone, which is harmless, never a setting the project would no longer own.
        ResourceState::AccountAlias { alias, .. } => vec![
            Operation::DeleteAccountAlias {
                alias: alias.clone(),
            },
            Operation::DeleteRecord {
                parameter: secrets::setting_record_parameter(&context.project, name),
            },
        ],
        ResourceState::PasswordPolicy { .. } => vec![
            Operation::DeletePasswordPolicy,
            Operation::DeleteRecord {
                parameter: secrets::setting_record_parameter(&context.project, name),
            },
        ],
    }
}

fn update(
    name: &str,
    before: &ResourceState,
    after: &ResourceState,
    context: &Context,
    reissue: bool,
) -> Vec<Operation> {
    match (before, after) {
        (ResourceState::Bucket(before), ResourceState::Bucket(after)) => {
            update_bucket(name, before, after)
        }
        (ResourceState::IamGroup(before), ResourceState::IamGroup(after)) => {
            let mut ops = Vec::new();
            if before.path != after.path {
                ops.push(Operation::SetGroupPath {
                    group: name.to_string(),
                    path: after.path.clone(),
                });
            }
            ops.extend(after.policies.difference(&before.policies).map(|arn| {
                Operation::AttachGroupPolicy {
                    group: name.to_string(),
                    arn: arn.clone(),
                }
            }));
            ops.extend(before.policies.difference(&after.policies).map(|arn| {
                Operation::DetachGroupPolicy {
                    group: name.to_string(),
                    arn: arn.clone(),
                }
            }));
            ops
        }
        (ResourceState::IamUser(before), ResourceState::IamUser(after)) => {
            update_user(name, before, after, context, reissue)
        }
        (ResourceState::KeyPair(before), ResourceState::KeyPair(after))
            if before.tags != after.tags =>
        {
            let (before_tags, after_tags) = (key_pair_tags(before), key_pair_tags(after));
            vec![Operation::SetKeyPairTags {
                name: name.to_string(),
                remove: removed_keys(&before_tags, &after_tags),
                tags: after_tags,
            }]
        }
        (ResourceState::SecurityGroup(before), ResourceState::SecurityGroup(after)) => {
            let mut ops = Vec::new();
            if before.tags != after.tags {
                ops.push(Operation::SetSecurityGroupTags {
                    name: name.to_string(),
                    tags: after.tags.clone(),
                    remove: removed_keys(&before.tags, &after.tags),
                });
            }
            // New rules first, so access never lapses while rules are swapped.
            let added: Vec<IngressRule> =
                after.ingress.difference(&before.ingress).cloned().collect();
            let removed: Vec<IngressRule> =
                before.ingress.difference(&after.ingress).cloned().collect();
            if !added.is_empty() {
                ops.push(Operation::AuthorizeIngress {
                    group: name.to_string(),
                    rules: added,
                });
            }
            if !removed.is_empty() {
                ops.push(Operation::RevokeIngress {
                    group: name.to_string(),
                    rules: removed,
                });
            }
            ops
        }
        (ResourceState::Instance(before), ResourceState::Instance(after)) => {
            update_instance(name, before, after)
        }
        (ResourceState::ElasticIp(before), ResourceState::ElasticIp(after)) => {
            let mut ops = Vec::new();
            if before.tags != after.tags {
                ops.push(Operation::SetAddressTags {
                    name: name.to_string(),
                    tags: after.tags.clone(),
                    remove: removed_keys(&before.tags, &after.tags),
                });
            }
            // Associating is a no-op when the address is already on the instance; running
            // it on every update also re-associates it after its instance was replaced.
            match &after.instance {
                Some(instance) => ops.push(Operation::AssociateAddress {
                    name: name.to_string(),
                    instance: instance.clone(),
                    replacing: before.instance.clone(),
                }),
                None if before.instance.is_some() => ops.push(Operation::DisassociateAddress {
                    name: name.to_string(),
                }),
                None => {}
            }
            ops
        }
        (ResourceState::SshConfig(_), ResourceState::SshConfig(config)) => {
            vec![Operation::WriteSshConfig {
                file: PathBuf::from(&config.file),
                hosts: config.hosts.clone(),
            }]
        }
        (
            ResourceState::AccountAlias { alias: old, .. },
            ResourceState::AccountAlias { alias, .. },
        ) if old != alias => {
            vec![Operation::SetAccountAlias {
                alias: alias.clone(),
                previous: Some(old.clone()),
            }]
        }
        (
            ResourceState::PasswordPolicy { policy: old, .. },
            ResourceState::PasswordPolicy { policy, .. },
        ) if old != policy => {
            vec![Operation::PutPasswordPolicy {
                policy: policy.clone(),
            }]
        }
        _ => Vec::new(),
    }
}

fn removed_keys(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect()
}

/// The client token of a launch: the same project, name and generation always give the
/// same token (64 characters at most, as EC2 requires).
pub fn client_token(project: &str, name: &str, generation: u32) -> String {
    let digest = crate::hash::sha256_hex(format!("{project}\n{name}\n{generation}").as_bytes());
    format!("tether-{}", &digest[..32])
}

/// Launch (then stop, for `state: stopped`). `generation` counts launches under the name.
fn create_instance(
    name: &str,
    instance: &InstanceState,
    generation: u32,
    context: &Context,
) -> Vec<Operation> {
    let mut tags = instance.tags.clone();
    tags.insert(TAG_GENERATION.to_string(), generation.to_string());
    if let Some(price) = &instance.max_price {
        tags.insert(TAG_MAX_PRICE.to_string(), price.clone());
    }
    if let Some(hash) = &instance.user_data_sha256 {
        tags.insert(TAG_USER_DATA.to_string(), hash.clone());
    }
    let mut ops = vec![Operation::LaunchInstance {
        name: name.to_string(),
        launch: Box::new(Launch {
            ami: instance.ami.clone(),
            instance_type: instance.instance_type.clone(),
            market: instance.market,
            max_price: instance.max_price.clone(),
            key_pair: instance.key_pair.clone(),
            security_groups: instance.security_groups.clone(),
            root_volume_gb: instance.root_volume_gb,
            volumes: instance.volumes.clone(),
            user_data: instance.user_data.clone(),
            user_data_sha256: instance.user_data_sha256.clone(),
            instance_profile: instance.instance_profile.clone(),
            tags,
            client_token: client_token(&context.project, name, generation),
        }),
    }];
    if instance.state == RunState::Stopped {
        ops.push(Operation::StopInstance {
            name: name.to_string(),
        });
    }
    ops
}

/// Tags and security groups first (they change on a running instance), then volumes (EBS
/// grows them online), then the type (which needs the instance stopped), then the state.
fn update_instance(name: &str, before: &InstanceState, after: &InstanceState) -> Vec<Operation> {
    let name_ = || name.to_string();
    let mut ops = Vec::new();
    if before.tags != after.tags {
        ops.push(Operation::SetInstanceTags {
            name: name_(),
            tags: after.tags.clone(),
            remove: removed_keys(&before.tags, &after.tags),
        });
    }
    if before.security_groups != after.security_groups {
        ops.push(Operation::SetInstanceSecurityGroups {
            name: name_(),
            groups: after.security_groups.clone(),
        });
    }
    if before.instance_profile != after.instance_profile {
        ops.push(Operation::SetInstanceProfile {
            name: name_(),
            profile: after.instance_profile.clone(),
        });
    }
    if let (Some(old), Some(new)) = (before.root_volume_gb, after.root_volume_gb) {
        if new > old {
            ops.push(Operation::ModifyVolume {
                name: name_(),
                device: None,
                size_gb: new,
                volume_type: None,
            });
        }
    }
    for (device, new) in &after.volumes {
        if let Some(old) = before.volumes.get(device) {
            if old != new {
                ops.push(Operation::ModifyVolume {
                    name: name_(),
                    device: Some(device.clone()),
                    size_gb: new.size_gb,
                    volume_type: (old.volume_type != new.volume_type)
                        .then(|| new.volume_type.clone()),
                });
            }
        }
    }
    let mut running = before.state == RunState::Running;
    if before.instance_type != after.instance_type {
        if running {
            ops.push(Operation::StopInstance { name: name_() });
            running = false;
        }
        ops.push(Operation::SetInstanceType {
            name: name_(),
            instance_type: after.instance_type.clone(),
        });
    }
    match (running, after.state) {
        (true, RunState::Stopped) => ops.push(Operation::StopInstance { name: name_() }),
        (false, RunState::Running) => ops.push(Operation::StartInstance { name: name_() }),
        _ => {}
    }
    ops
}

/// A key pair's tags with its public key file recorded, as they are kept on the key pair.
fn key_pair_tags(key: &KeyPairState) -> BTreeMap<String, String> {
    let mut tags = key.tags.clone();
    if let Some(file) = &key.public_key_file {
        tags.insert(TAG_PUBLIC_KEY_FILE.to_string(), file.clone());
    }
    tags
}

/// Ownership (path, tags) first, so an adoption marks the user before changing it; grants
/// are added before old ones are removed, so the user never briefly has neither.
fn update_user(
    name: &str,
    before: &UserState,
    after: &UserState,
    context: &Context,
    reissue: bool,
) -> Vec<Operation> {
    let user = || name.to_string();
    let mut ops = Vec::new();
    if before.path != after.path {
        ops.push(Operation::SetUserPath {
            user: user(),
            path: after.path.clone(),
        });
    }
    if before.tags != after.tags {
        ops.push(Operation::SetUserTags {
            user: user(),
            tags: after.tags.clone(),
            remove: removed_keys(&before.tags, &after.tags),
        });
    }
    ops.extend(
        after
            .groups
            .difference(&before.groups)
            .map(|group| Operation::AddUserToGroup {
                user: user(),
                group: group.clone(),
            }),
    );
    ops.extend(after.policies.difference(&before.policies).map(|arn| {
        Operation::AttachUserPolicy {
            user: user(),
            arn: arn.clone(),
        }
    }));
    for (policy, document) in &after.inline_policies {
        if before.inline_policies.get(policy) != Some(document) {
            ops.push(Operation::PutUserPolicy {
                user: user(),
                name: policy.clone(),
                document: document.clone(),
            });
        }
    }
    ops.extend(before.groups.difference(&after.groups).map(|group| {
        Operation::RemoveUserFromGroup {
            user: user(),
            group: group.clone(),
        }
    }));
    ops.extend(before.policies.difference(&after.policies).map(|arn| {
        Operation::DetachUserPolicy {
            user: user(),
            arn: arn.clone(),
        }
    }));
    ops.extend(
        before
            .inline_policies
            .keys()
            .filter(|policy| !after.inline_policies.contains_key(*policy))
            .map(|policy| Operation::DeleteUserPolicy {
                user: user(),
                name: policy.clone(),
            }),
    );
    match (before.console_access, after.console_access) {
        (false, true) => ops.push(Operation::CreateLoginProfile {
            user: user(),
            destination: context.user_secret(secrets::UserSecret::ConsolePassword, name),
            minimum_length: context.minimum_password_length,
        }),
        (true, false) => ops.push(Operation::DeleteLoginProfile {
            user: user(),
            parameter: context.user_parameter(secrets::UserSecret::ConsolePassword, name),
        }),
        _ => {}
    }
    match (before.programmatic_access, after.programmatic_access) {
        (false, true) => ops.push(Operation::CreateAccessKey {
            user: user(),
            destination: context.user_secret(secrets::UserSecret::AccessKey, name),
            profile: secrets::profile_name(&context.project, name),
            replace_existing: reissue,
        }),
        (true, false) => ops.push(Operation::DeleteAccessKeys {
            user: user(),
            parameter: context.user_parameter(secrets::UserSecret::AccessKey, name),
        }),
        _ => {}
    }
    ops
}

fn create_bucket(bucket: &str, after: &BucketState) -> Vec<Operation> {
    // Tags go with the create so ownership is atomic where AWS supports it; the separate
    // tagging call covers endpoints that ignore tags on create, and is idempotent.
    let mut ops = vec![
        Operation::CreateBucket {
            bucket: bucket.to_string(),
            tags: after.tags.clone(),
        },
        Operation::PutBucketTags {
            bucket: bucket.to_string(),
            tags: after.tags.clone(),
        },
    ];
    // The public access block goes first: a public policy is refused while it blocks them.
    if let Some(block) = after.public_access_block {
        ops.push(Operation::PutPublicAccessBlock {
            bucket: bucket.to_string(),
            block,
        });
    }
    if let Some(policy) = &after.policy {
        ops.push(Operation::PutBucketPolicy {
            bucket: bucket.to_string(),
            policy: policy.clone(),
        });
    }
    ops
}

fn update_bucket(bucket: &str, before: &BucketState, after: &BucketState) -> Vec<Operation> {
    let mut ops = Vec::new();
    // Tags first: an adoption marks the bucket as owned before anything else changes.
    if before.tags != after.tags {
        ops.push(Operation::PutBucketTags {
            bucket: bucket.to_string(),
            tags: after.tags.clone(),
        });
    }
    let block = (before.public_access_block != after.public_access_block)
        .then_some(after.public_access_block)
        .flatten()
        .map(|block| Operation::PutPublicAccessBlock {
            bucket: bucket.to_string(),
            block,
        });
    let policy = (before.policy != after.policy).then(|| match &after.policy {
        Some(policy) => Operation::PutBucketPolicy {
            bucket: bucket.to_string(),
            policy: policy.clone(),
        },
        None => Operation::DeleteBucketPolicy {
            bucket: bucket.to_string(),
        },
    });
    // Loosening the block must precede a public policy; tightening it follows the policy's
    // change, so the bucket is never briefly more open than either end state.
    let loosening = after
        .public_access_block
        .is_some_and(|b| !b.block_public_policy || !b.restrict_public_buckets);
    if loosening {
        ops.extend(block);
        ops.extend(policy);
    } else {
        ops.extend(policy);
        ops.extend(block);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, BucketState, TAG_FORCE_DESTROY, TAG_PROJECT};
    use crate::policy;

    fn test_context() -> Context {
        Context {
            project: "lab".into(),
            secrets: SecretsMode::ParameterStore,
            secrets_dir: PathBuf::from("/secrets"),
            home: Some(PathBuf::from("/home/ds")),
            minimum_password_length: 8,
        }
    }

    fn state(public: bool, force: bool) -> ResourceState {
        let mut tags = BTreeMap::from([(TAG_PROJECT.to_string(), "lab".to_string())]);
        if force {
            tags.insert(TAG_FORCE_DESTROY.to_string(), "true".to_string());
        }
        ResourceState::Bucket(BucketState {
            record: None,
            tags,
            policy: public.then(|| policy::document_of(policy::public_read_statement("b", "aws"))),
            public_access_block: Some(PublicAccessBlock::for_policy(public)),
        })
    }

    fn names(
        action: Action,
        before: Option<ResourceState>,
        after: Option<ResourceState>,
    ) -> Vec<&'static str> {
        // As the planner decides when the project's record shows it created the bucket.
        let empty_bucket = matches!(
            &before,
            Some(ResourceState::Bucket(b)) if b.tags.contains_key(TAG_FORCE_DESTROY)
        );
        let change = Change {
            address: Address::bucket("b"),
            action,
            reason: None,
            attributes: Vec::new(),
            before,
            after,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket,
        };
        bucket_operation_names(&change)
    }

    fn bucket_operation_names(change: &Change) -> Vec<&'static str> {
        operations(change, &test_context())
            .iter()
            .map(|op| match op {
                Operation::PutRecord { .. } => "record",
                Operation::DeleteRecord { .. } => "unrecord",
                Operation::CreateBucket { .. } => "create",
                Operation::PutBucketTags { .. } => "tags",
                Operation::PutPublicAccessBlock { .. } => "block",
                Operation::PutBucketPolicy { .. } => "policy",
                Operation::DeleteBucketPolicy { .. } => "delete-policy",
                Operation::EmptyBucket { .. } => "empty",
                Operation::DeleteBucket { .. } => "delete",
                other => other.describe(),
            })
            .collect()
    }

    #[test]
    fn operation_order_table() {
        type Case = (
            &'static str,
            Action,
            Option<ResourceState>,
            Option<ResourceState>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "create public",
                Action::Create,
                None,
                Some(state(true, false)),
                vec!["create", "record", "tags", "block", "policy"],
            ),
            (
                "create private",
                Action::Create,
                None,
                Some(state(false, false)),
                vec!["create", "record", "tags", "block"],
            ),
            (
                "going public loosens the block first",
                Action::Update,
                Some(state(false, false)),
                Some(state(true, false)),
                vec!["block", "policy"],
            ),
            (
                "going private drops the policy first",
                Action::Update,
                Some(state(true, false)),
                Some(state(false, false)),
                vec!["delete-policy", "block"],
            ),
            (
                "force_destroy flag is a tag change",
                Action::Update,
                Some(state(false, false)),
                Some(state(false, true)),
                vec!["tags"],
            ),
            (
                "delete keeps objects without force_destroy",
                Action::Delete,
                Some(state(false, false)),
                None,
                vec!["delete", "unrecord"],
            ),
            (
                "delete empties with force_destroy",
                Action::Delete,
                Some(state(true, true)),
                None,
                vec!["empty", "delete", "unrecord"],
            ),
            (
                "no-op does nothing",
                Action::NoOp,
                Some(state(true, false)),
                Some(state(true, false)),
                vec![],
            ),
        ];
        for (name, action, before, after, expected) in cases {
            assert_eq!(names(action, before, after), expected, "{name}");
        }
    }

    // Regression: anyone allowed to tag a bucket could add the project's tags and
    // `tether:force-destroy`, and the next apply emptied it. Without the planner's word (the
    // project's record, or the command line), deleting never empties.
    #[test]
    fn a_force_destroy_tag_alone_never_empties_a_bucket() {
        let change = Change {
            address: Address::bucket("b"),
            action: Action::Delete,
            reason: None,
            attributes: Vec::new(),
            before: Some(state(false, true)),
            after: None,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        };
        assert_eq!(bucket_operation_names(&change), ["delete", "unrecord"]);
    }

    fn instance(instance_type: &str, state: RunState, root: i32) -> ResourceState {
        ResourceState::Instance(InstanceState {
            tags: BTreeMap::from([("tether:name".to_string(), "worker".to_string())]),
            ami: "ami-0abcdef1234567890".into(),
            instance_type: instance_type.into(),
            market: Market::OnDemand,
            max_price: None,
            key_pair: Some("lab-key".into()),
            security_groups: BTreeSet::from(["ssh".to_string()]),
            root_volume_gb: Some(root),
            volumes: BTreeMap::new(),
            user_data_sha256: None,
            instance_profile: None,
            state,
            generation: 1,
            user_data: None,
            image_lookup: None,
            id: None,
            public_ip: None,
        })
    }

    fn instance_ops(
        action: Action,
        before: Option<ResourceState>,
        after: Option<ResourceState>,
    ) -> Vec<Operation> {
        let change = Change {
            address: crate::model::Address::new(crate::model::Kind::Instance, "worker"),
            action,
            reason: None,
            attributes: Vec::new(),
            before,
            after,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        };
        let context = test_context();
        operations(&change, &context)
    }

    #[test]
    fn instance_operation_order_table() {
        type Case = (
            &'static str,
            Action,
            Option<ResourceState>,
            Option<ResourceState>,
            Vec<&'static str>,
        );
        use RunState::{Running, Stopped};
        let cases: Vec<Case> = vec![
            (
                "a stopped instance is launched, then stopped",
                Action::Create,
                None,
                Some(instance("m5.large", Stopped, 50)),
                vec![
                    "launching instance, then waiting until it runs",
                    "stopping instance, then waiting until it stops",
                ],
            ),
            (
                "a type change on a running instance stops, changes, starts",
                Action::Update,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.xlarge", Running, 50)),
                vec![
                    "stopping instance, then waiting until it stops",
                    "changing instance type",
                    "starting instance, then waiting until it runs",
                ],
            ),
            (
                "a type change with a stop does not start it again",
                Action::Update,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.xlarge", Stopped, 50)),
                vec![
                    "stopping instance, then waiting until it stops",
                    "changing instance type",
                ],
            ),
            (
                "the volume grows before the restart",
                Action::Update,
                Some(instance("m5.large", Stopped, 50)),
                Some(instance("m5.large", Running, 80)),
                vec![
                    "modifying volume",
                    "starting instance, then waiting until it runs",
                ],
            ),
            (
                "a replacement terminates, then launches",
                Action::Replace,
                Some(instance("m5.large", Running, 50)),
                Some(instance("m5.large", Running, 50)),
                vec![
                    "terminating instance, then waiting until it is gone",
                    "launching instance, then waiting until it runs",
                ],
            ),
        ];
        for (name, action, before, after, expected) in cases {
            let described: Vec<&str> = instance_ops(action, before, after)
                .iter()
                .map(Operation::describe)
                .collect();
            assert_eq!(described, expected, "{name}");
        }
    }

    /// The client token must differ between generations (a replacement is a new launch) and
    /// be stable within one (a retried launch is the same launch).
    #[test]
    fn a_replacement_launches_the_next_generation_with_its_own_client_token() {
        let launch_of = |ops: Vec<Operation>| {
            ops.into_iter()
                .find_map(|op| match op {
                    Operation::LaunchInstance { launch, .. } => Some(launch),
                    _ => None,
                })
                .expect("a launch")
        };
        let created = launch_of(instance_ops(
            Action::Create,
            None,
            Some(instance("m5.large", RunState::Running, 50)),
        ));
        let replaced = launch_of(instance_ops(
            Action::Replace,
            Some(instance("m5.large", RunState::Running, 50)),
            Some(instance("m5.large", RunState::Running, 50)),
        ));
        assert_eq!(
            created.tags.get(TAG_GENERATION).map(String::as_str),
            Some("1")
        );
        assert_eq!(
            replaced.tags.get(TAG_GENERATION).map(String::as_str),
            Some("2")
        );
        assert_eq!(created.client_token, client_token("lab", "worker", 1));
        assert_eq!(replaced.client_token, client_token("lab", "worker", 2));
        assert_ne!(created.client_token, replaced.client_token);
        assert!(created.client_token.len() <= 64);
    }
}
