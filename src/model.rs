//! The resource model shared by `live`, `plan` and `apply`: addresses, ownership tags and the
//! comparable state of each kind of resource.
//!
//! A `ResourceState` is the same type whether it was read from the account or derived from the
//! spec, so diffing is comparing two values. This module holds data only; it neither reads the
//! account nor decides what to change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::Location;

/// Tag naming the project that owns a resource.
pub const TAG_PROJECT: &str = "tether:project";
/// Tag holding the resource's key in the spec.
pub const TAG_NAME: &str = "tether:name";
/// Tag recording where tether kept a generated key pair's private key: `pending` from the
/// create until the key is stored, then `parameter-store` or `local`.
pub const TAG_PRIVATE_KEY: &str = "tether:private-key";
/// Tag that tether versions before the shared secret store put on generated key pairs (the
/// operator's private key file); such a key is held locally by whoever applied it.
pub const TAG_LEGACY_PRIVATE_KEY_FILE: &str = "tether:private-key-file";
/// Tag on an IAM user recording the access key tether issued and stored: `pending` from
/// just before the create until the key is stored, then the key's id (not a secret).
pub const TAG_ACCESS_KEY: &str = "tether:access-key-id";
/// The value of `TAG_PRIVATE_KEY` and `TAG_ACCESS_KEY` while a secret is being made: one
/// still `pending` when no apply runs was made by a run that died before storing it.
pub const SECRET_PENDING: &str = "pending";
/// Tag recording which public key file an imported key pair came from.
pub const TAG_PUBLIC_KEY_FILE: &str = "tether:public-key-file";
/// Tag recording `force_destroy: true`, so a bucket removed from the spec can still be emptied.
pub const TAG_FORCE_DESTROY: &str = "tether:force-destroy";
/// Tag counting an instance's launches under one name, part of its launch's client token.
pub const TAG_GENERATION: &str = "tether:generation";
/// Tag recording a spot instance's maximum price, which EC2 does not show on the instance.
pub const TAG_MAX_PRICE: &str = "tether:max-price";
/// Tag recording the SHA-256 of the user data an instance was launched with.
pub const TAG_USER_DATA: &str = "tether:user-data-sha256";

/// The kinds of resource tether manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bucket,
    IamGroup,
    IamUser,
    KeyPair,
    SecurityGroup,
    Instance,
    ElasticIp,
    /// The project's block of aliases in an OpenSSH config file (a local file, not AWS).
    SshConfig,
    /// The account's singletons: `account.alias`, `account.password_policy`.
    Account,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::IamGroup => "iam_group",
            Kind::IamUser => "iam_user",
            Kind::KeyPair => "key_pair",
            Kind::SecurityGroup => "security_group",
            Kind::Instance => "instance",
            Kind::ElasticIp => "elastic_ip",
            Kind::SshConfig => "ssh_config",
            Kind::Account => "account",
        }
    }

    /// Kinds that live on the operator's machine, not in the account (the SSH alias block):
    /// their changes are this operator's, so they stay out of the shared plan (its JSON,
    /// saved plans, `--detailed-exitcode`).
    pub fn is_local(self) -> bool {
        self == Kind::SshConfig
    }

    /// Singletons exist once per account and belong to nobody: they are managed while the
    /// spec declares them, and never deleted just because the spec stopped declaring them.
    pub fn is_singleton(self) -> bool {
        self == Kind::Account
    }
}

/// The address of the account alias.
pub const ACCOUNT_ALIAS: &str = "alias";
/// The address of the account password policy.
pub const ACCOUNT_PASSWORD_POLICY: &str = "password_policy";

/// A resource's address in plans: its kind and its key in the spec, e.g. `bucket.lab-data`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Address {
        Address {
            kind,
            name: name.into(),
        }
    }

    pub fn bucket(name: impl Into<String>) -> Address {
        Address::new(Kind::Bucket, name)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Address, String> {
        let (kind, name) = text
            .split_once('.')
            .ok_or_else(|| format!("`{text}` is not an address like `bucket.name`"))?;
        let kind = match kind {
            "bucket" => Kind::Bucket,
            "iam_group" => Kind::IamGroup,
            "iam_user" => Kind::IamUser,
            "key_pair" => Kind::KeyPair,
            "security_group" => Kind::SecurityGroup,
            "instance" => Kind::Instance,
            "elastic_ip" => Kind::ElasticIp,
            "ssh_config" => Kind::SshConfig,
            "account" => Kind::Account,
            other => return Err(format!("unknown resource kind `{other}`")),
        };
        Ok(Address {
            kind,
            name: name.to_string(),
        })
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// S3's public access block settings for one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// ACLs stay blocked always (tether uses policies, never ACLs); public policies are let
    /// through only when the bucket's own policy is public.
    pub fn for_policy(public_policy: bool) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: !public_policy,
            restrict_public_buckets: !public_policy,
        }
    }
}

/// The comparable state of a bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// All tags, tether's included.
    pub tags: BTreeMap<String, String>,
    /// The bucket policy, normalised (`policy::normalise`); `None` when there is none.
    pub policy: Option<Value>,
    /// `None` when the bucket has no public access block configuration.
    pub public_access_block: Option<PublicAccessBlock>,
    /// The project's record that it created the bucket (live only; read for buckets tagged
    /// `tether:force-destroy`): the evidence, beyond tags anyone may write, that emptying
    /// it deletes the project's own data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OwnershipRecord>,
}

/// The comparable state of an IAM group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// IAM path; `/tether/<project>/` marks ownership, since groups take no tags.
    pub path: String,
    /// Attached managed policy ARNs.
    pub policies: BTreeSet<String>,
}

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

/// The account password policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicyState {
    pub minimum_length: u16,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub allow_users_to_change_password: bool,
    pub max_age_days: Option<u16>,
    pub reuse_prevention: Option<u16>,
    pub hard_expiry: bool,
}

/// Where a generated key pair's private key is kept, as recorded on the key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivateKeyRecord {
    /// Created, not yet stored: nobody holds the key if no apply is still running.
    Pending,
    /// In Parameter Store at `/ec2/keypair/<key-pair-id>`.
    ParameterStore,
    /// In the private key file of whoever applied it (`secrets: local`, or an older tether).
    Local,
}

impl PrivateKeyRecord {
    pub fn from_tag(value: &str) -> Option<PrivateKeyRecord> {
        match value {
            SECRET_PENDING => Some(PrivateKeyRecord::Pending),
            "parameter-store" => Some(PrivateKeyRecord::ParameterStore),
            "local" => Some(PrivateKeyRecord::Local),
            _ => None,
        }
    }

    pub fn as_tag(self) -> &'static str {
        match self {
            PrivateKeyRecord::Pending => SECRET_PENDING,
            PrivateKeyRecord::ParameterStore => "parameter-store",
            PrivateKeyRecord::Local => "local",
        }
    }
}

/// The comparable state of an EC2 key pair. Where this operator keeps a copy of the private
/// key is no attribute: it differs between operators and never changes the key pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPairState {
    /// All tags, tether's included (but not its bookkeeping tags, below).
    pub tags: BTreeMap<String, String>,
    /// The public key file an imported key came from, as the spec writes it (tag
    /// `tether:public-key-file`); `None` for a key AWS generated.
    pub public_key_file: Option<String>,
    /// Where a generated key's private key is kept (live only; tag `tether:private-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKeyRecord>,
    /// Where local copies of the private key go, as the spec writes it (`~` unexpanded, so
    /// every operator's plan says the same); desired only, not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
    /// The key pair's id (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One ingress rule as EC2 holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// A CIDR block, or the id of a security group.
    pub source: String,
}

impl fmt::Display for IngressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = if self.protocol == "-1" {
            "all"
        } else {
            &self.protocol
        };
        if self.from_port == self.to_port {
            write!(f, "{protocol}/{} from {}", self.from_port, self.source)
        } else {
            write!(
                f,
                "{protocol}/{}-{} from {}",
                self.from_port, self.to_port, self.source
            )
        }
    }
}

/// The comparable state of a security group (of the default VPC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupState {
    /// Cannot change after creation.
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeSet<IngressRule>,
}

/// How an instance is bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    OnDemand,
    Spot,
}

/// An EC2 instance's lifecycle state, as EC2 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceStatus {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceStatus {
    /// Every state, in lifecycle order.
    pub const ALL: [InstanceStatus; 6] = [
        InstanceStatus::Pending,
        InstanceStatus::Running,
        InstanceStatus::Stopping,
        InstanceStatus::Stopped,
        InstanceStatus::ShuttingDown,
        InstanceStatus::Terminated,
    ];

    /// The states in which an instance exists for tether: shutting-down and terminated
    /// ones are gone.
    pub const LIVE: [InstanceStatus; 4] = [
        InstanceStatus::Pending,
        InstanceStatus::Running,
        InstanceStatus::Stopping,
        InstanceStatus::Stopped,
    ];

    /// EC2's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Pending => "pending",
            InstanceStatus::Running => "running",
            InstanceStatus::Stopping => "stopping",
            InstanceStatus::Stopped => "stopped",
            InstanceStatus::ShuttingDown => "shutting-down",
            InstanceStatus::Terminated => "terminated",
        }
    }

    /// The state EC2 names `name`, if it is one.
    pub fn parse(name: &str) -> Option<InstanceStatus> {
        InstanceStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Running, or on its way there: it has (or is getting) an address and takes ssh.
    pub fn is_up(self) -> bool {
        matches!(self, InstanceStatus::Pending | InstanceStatus::Running)
    }

    /// Stopped, or on its way there.
    pub fn is_down(self) -> bool {
        matches!(self, InstanceStatus::Stopping | InstanceStatus::Stopped)
    }

    /// Gone for good, or on its way there.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            InstanceStatus::ShuttingDown | InstanceStatus::Terminated
        )
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an instance should be running (and billed) or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Stopped,
}

/// An EBS volume attached to an instance at a device name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeState {
    pub size_gb: i32,
    /// `gp3`, `gp2`, `io1`, ...
    pub volume_type: String,
}

/// The comparable state of an EC2 instance, plus facts a plan shows but never compares
/// (its id and public address).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// All tags, tether's ownership tags and `Name` included; tether's bookkeeping tags
    /// (generation, max price, user data hash) are the fields below.
    pub tags: BTreeMap<String, String>,
    /// The image id.
    pub ami: String,
    pub instance_type: String,
    pub market: Market,
    /// A spot instance's maximum hourly price; `None` means the on-demand price.
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    /// Security group names.
    pub security_groups: BTreeSet<String>,
    /// The root volume's size; `None` in a desired state means the image's own size.
    pub root_volume_gb: Option<i32>,
    /// Further volumes by device name.
    pub volumes: BTreeMap<String, VolumeState>,
    /// SHA-256 of the user data, hex.
    pub user_data_sha256: Option<String>,
    /// The IAM instance profile's name.
    #[serde(default)]
    pub instance_profile: Option<String>,
    pub state: RunState,
    /// Launches so far under this name; a new launch uses the next one in its client token.
    #[serde(default)]
    pub generation: u32,
    /// The user data itself (base64), carried for the launch so that a plan is whole and
    /// the same for every operator (no path of this machine's); not compared (its hash is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The image lookup the AMI was chosen by, for display; not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_lookup: Option<String>,
    /// The instance id (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The instance's own public address (live only; an Elastic IP shows here once associated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
}

/// The comparable state of an Elastic IP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElasticIpState {
    pub tags: BTreeMap<String, String>,
    /// The instance it is associated with: its spec name when it is one of the project's
    /// instances, else its id.
    pub instance: Option<String>,
    /// The address (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// The allocation id (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
}

/// The address of the project's SSH alias block.
pub const SSH_ALIASES: &str = "aliases";

/// The project's block of aliases in an OpenSSH config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SshConfigState {
    /// The config file (absolute).
    pub file: String,
    /// The block's text, markers included; the planner renders the desired one from the
    /// hosts and the live addresses.
    pub block: String,
    /// The declared aliases (desired state only), for apply to render the block with the
    /// addresses it finds then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::sshconfig::HostEntry>,
}

/// The state of any resource, tagged by kind in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceState {
    Bucket(BucketState),
    IamGroup(GroupState),
    IamUser(UserState),
    KeyPair(KeyPairState),
    SecurityGroup(SecurityGroupState),
    Instance(InstanceState),
    ElasticIp(ElasticIpState),
    SshConfig(SshConfigState),
    AccountAlias {
        alias: String,
        /// How the project came to own it (live only; `None`: not this project's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<OwnershipRecord>,
    },
    PasswordPolicy {
        policy: PasswordPolicyState,
        /// How the project came to own it (live only; `None`: not this project's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<OwnershipRecord>,
    },
}

/// How a project came to own what tags cannot prove: an account setting (alias, password
/// policy), which takes no tags, or a bucket it created, whose tags anyone allowed to tag
/// it can write. Recorded in the project's Parameter Store path, not on anyone's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnershipRecord {
    /// The project set it where there was none: `destroy` deletes it.
    Created,
    /// It was there, and the spec adopted it: `destroy` leaves it as it is.
    Adopted,
}

impl OwnershipRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnershipRecord::Created => "created",
            OwnershipRecord::Adopted => "adopted",
        }
    }

    pub fn parse(text: &str) -> Option<OwnershipRecord> {
        match text {
            "created" => Some(OwnershipRecord::Created),
            "adopted" => Some(OwnershipRecord::Adopted),
            _ => None,
        }
    }
}

/// The IAM path that marks a user or group as owned by `project`.
pub fn iam_path(project: &str) -> String {
    format!("/tether/{project}/")
}

/// How an attribute is best shown in a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeFormat {
    /// A single value.
    Value,
    /// A flat mapping, shown key by key.
    Map,
    /// A document (policy), shown as a unified diff.
    Document,
}

/// One attribute of a resource, for diffing and display.
pub struct Attribute {
    pub name: &'static str,
    pub value: Value,
    pub format: AttributeFormat,
    /// Changing it cannot be done in place.
    pub forces_replacement: bool,
}

fn attribute(name: &'static str, value: impl Serialize, format: AttributeFormat) -> Attribute {
    Attribute {
        name,
        value: serde_json::to_value(value).unwrap_or_default(),
        format,
        forces_replacement: false,
    }
}

impl ResourceState {
    /// The managed policy ARNs the resource attaches.
    pub fn policy_arns(&self) -> Vec<&str> {
        match self {
            ResourceState::IamGroup(group) => group.policies.iter().map(String::as_str).collect(),
            ResourceState::IamUser(user) => user.policies.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Who owns the resource: by tags for buckets, by IAM path for users and groups, by the
    /// project's record in Parameter Store for account settings.
    pub fn ownership(&self, project: &str) -> Ownership {
        match self {
            ResourceState::Bucket(bucket) => ownership(&bucket.tags, project),
            ResourceState::KeyPair(KeyPairState { tags, .. })
            | ResourceState::SecurityGroup(SecurityGroupState { tags, .. })
            | ResourceState::Instance(InstanceState { tags, .. })
            | ResourceState::ElasticIp(ElasticIpState { tags, .. }) => ownership(tags, project),
            ResourceState::IamGroup(GroupState { path, .. })
            | ResourceState::IamUser(UserState { path, .. }) => {
                match path
                    .strip_prefix("/tether/")
                    .and_then(|rest| rest.strip_suffix('/'))
                {
                    Some(owner) if owner == project => Ownership::Owned,
                    Some(owner) if !owner.contains('/') => {
                        Ownership::OtherProject(owner.to_string())
                    }
                    _ => Ownership::Unowned,
                }
            }
            // The project's record in Parameter Store says whether it owns a setting.
            ResourceState::AccountAlias { record, .. }
            | ResourceState::PasswordPolicy { record, .. } => match record {
                Some(_) => Ownership::Owned,
                None => Ownership::Unowned,
            },
            // The block's markers name the project: a block is only ever the project's own.
            ResourceState::SshConfig(_) => Ownership::Owned,
        }
    }

    /// The state as if its secret did not exist, so that a diff issues it anew: a user
    /// without programmatic access.
    pub fn without_secret(&self) -> ResourceState {
        let mut state = self.clone();
        if let ResourceState::IamUser(user) = &mut state {
            user.programmatic_access = false;
        }
        state
    }

    /// Whether the resource's secret was made by a run that died before storing it, so that
    /// nobody holds it: a key pair or access key still recorded as `pending`. Judged from
    /// the account alone, never from this operator's files.
    pub fn secret_unheld(&self) -> bool {
        match self {
            ResourceState::IamUser(user) => {
                user.programmatic_access
                    && user.stored_access_key.as_deref() == Some(SECRET_PENDING)
            }
            ResourceState::KeyPair(key) => key.private_key == Some(PrivateKeyRecord::Pending),
            _ => false,
        }
    }

    /// What a user should know about deleting the resource, beyond the deletion itself.
    pub fn deletion_note(&self) -> Option<String> {
        match self {
            ResourceState::KeyPair(KeyPairState {
                private_key: Some(PrivateKeyRecord::ParameterStore),
                ..
            }) => Some("its private key is deleted from Parameter Store; local copies stay".into()),
            ResourceState::Instance(instance) => Some(format!(
                "terminated{}; its volumes are deleted with it",
                instance
                    .id
                    .as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default()
            )),
            ResourceState::ElasticIp(ElasticIpState {
                public_ip: Some(ip),
                ..
            }) => Some(format!("the address {ip} is released for good")),
            _ => None,
        }
    }

    /// The attributes a plan compares, in display order. `Value::Null` means absent.
    pub fn attributes(&self) -> Vec<Attribute> {
        use AttributeFormat::{Document, Map, Value as Scalar};
        match self {
            ResourceState::Bucket(bucket) => vec![
                attribute("tags", &bucket.tags, Map),
                attribute("public_access_block", bucket.public_access_block, Map),
                attribute("policy", &bucket.policy, Document),
            ],
            ResourceState::IamGroup(group) => vec![
                attribute("path", &group.path, Scalar),
                attribute("policies", &group.policies, Scalar),
            ],
            ResourceState::IamUser(user) => vec![
                attribute("path", &user.path, Scalar),
                attribute("tags", &user.tags, Map),
                attribute("groups", &user.groups, Scalar),
                attribute("policies", &user.policies, Scalar),
                attribute("inline_policies", &user.inline_policies, Document),
                attribute("console_access", user.console_access, Scalar),
                attribute("programmatic_access", user.programmatic_access, Scalar),
            ],
            ResourceState::KeyPair(key) => vec![
                attribute("tags", &key.tags, Map),
                Attribute {
                    forces_replacement: true,
                    ..attribute("public_key_file", &key.public_key_file, Scalar)
                },
            ],
            ResourceState::SecurityGroup(group) => vec![
                Attribute {
                    forces_replacement: true,
                    ..attribute("description", &group.description, Scalar)
                },
                attribute("tags", &group.tags, Map),
                attribute(
                    "ingress",
                    group
                        .ingress
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                    Scalar,
                ),
            ],
            ResourceState::Instance(instance) => {
                let forcing = |attribute: Attribute| Attribute {
                    forces_replacement: true,
                    ..attribute
                };
                vec![
                    forcing(attribute("ami", &instance.ami, Scalar)),
                    attribute("instance_type", &instance.instance_type, Scalar),
                    forcing(attribute("market", instance.market, Scalar)),
                    forcing(attribute("max_price", &instance.max_price, Scalar)),
                    forcing(attribute("key_pair", &instance.key_pair, Scalar)),
                    attribute("security_groups", &instance.security_groups, Scalar),
                    attribute("root_volume_gb", instance.root_volume_gb, Scalar),
                    attribute("volumes", &instance.volumes, Map),
                    forcing(attribute(
                        "user_data_sha256",
                        &instance.user_data_sha256,
                        Scalar,
                    )),
                    attribute("instance_profile", &instance.instance_profile, Scalar),
                    attribute("state", instance.state, Scalar),
                    attribute("tags", &instance.tags, Map),
                ]
            }
            ResourceState::ElasticIp(address) => vec![
                attribute("instance", &address.instance, Scalar),
                attribute("tags", &address.tags, Map),
            ],
            ResourceState::SshConfig(config) => vec![
                Attribute {
                    forces_replacement: true,
                    ..attribute("file", &config.file, Scalar)
                },
                attribute("block", &config.block, Document),
            ],
            ResourceState::AccountAlias { alias, .. } => vec![attribute("alias", alias, Scalar)],
            ResourceState::PasswordPolicy { policy, .. } => {
                vec![attribute("password_policy", policy, Map)]
            }
        }
    }
}

/// What an instance refers to (its key pair and security groups), which must exist before
/// it and may be deleted only after it.
pub fn instance_references(
    key_pair: Option<&str>,
    security_groups: &BTreeSet<String>,
) -> Vec<Address> {
    key_pair
        .map(|key| Address::new(Kind::KeyPair, key))
        .into_iter()
        .chain(
            security_groups
                .iter()
                .map(|group| Address::new(Kind::SecurityGroup, group)),
        )
        .collect()
}

/// The attributes whose change from `before` to `after` cannot be made in place although
/// the attribute can change in place in general: a volume shrinks, or one is added or
/// removed (volumes are attached at launch only).
pub fn forced_by_change(before: &ResourceState, after: &ResourceState) -> Vec<&'static str> {
    let (ResourceState::Instance(before), ResourceState::Instance(after)) = (before, after) else {
        return Vec::new();
    };
    let mut forcing = Vec::new();
    if let (Some(old), Some(new)) = (before.root_volume_gb, after.root_volume_gb) {
        if new < old {
            forcing.push("root_volume_gb");
        }
    }
    let same_devices = before.volumes.keys().eq(after.volumes.keys());
    let shrinks = after.volumes.iter().any(|(device, new)| {
        before
            .volumes
            .get(device)
            .is_some_and(|old| new.size_gb < old.size_gb)
    });
    if !same_devices || shrinks {
        forcing.push("volumes");
    }
    forcing
}

/// Why an in-place update does more than its attributes say, for the plan to show.
pub fn update_note(before: &ResourceState, after: &ResourceState) -> Option<String> {
    match (before, after) {
        (ResourceState::Instance(before), ResourceState::Instance(after))
            if before.instance_type != after.instance_type =>
        {
            Some(if before.state == RunState::Running {
                if after.state == RunState::Running {
                    "changing instance_type stops the instance, changes it, and starts it again"
                        .to_string()
                } else {
                    "changing instance_type stops the instance first".to_string()
                }
            } else {
                "instance_type is changed while the instance is stopped".to_string()
            })
        }
        (ResourceState::Instance(before), ResourceState::Instance(after))
            if before.state != after.state =>
        {
            Some(
                match after.state {
                    RunState::Stopped => {
                        "stops the instance: compute billing ends, its volumes are still billed"
                    }
                    RunState::Running => "starts the instance",
                }
                .to_string(),
            )
        }
        _ => None,
    }
}

/// Why changing an attribute means a replacement, where that is not obvious.
pub fn forcing_reason(attribute: &str) -> Option<&'static str> {
    match attribute {
        "root_volume_gb" | "volumes" => {
            Some("EBS volumes cannot shrink, and tether attaches volumes only at launch")
        }
        "user_data_sha256" => Some("user data runs only at an instance's first boot"),
        "ami" | "key_pair" | "market" | "max_price" => {
            Some("an instance's image, key pair and market are fixed at launch")
        }
        _ => None,
    }
}

/// Who owns a resource, according to its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged with this project.
    Owned,
    /// Tagged with another tether project.
    OtherProject(String),
    /// Not tagged by tether at all.
    Unowned,
}

pub fn ownership(tags: &BTreeMap<String, String>, project: &str) -> Ownership {
    match tags.get(TAG_PROJECT) {
        Some(owner) if owner == project => Ownership::Owned,
        Some(owner) => Ownership::OtherProject(owner.clone()),
        None => Ownership::Unowned,
    }
}

/// A search for the newest image whose name matches a pattern, among one owner's images.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageLookup {
    /// A name pattern (`*` and `?` wildcards, as EC2's `name` filter takes them).
    pub name: String,
    /// `self`, `amazon`, `aws-marketplace` or an account id.
    pub owner: String,
}

impl ImageLookup {
    /// How the lookup is named in plans and in `LiveState::images`.
    pub fn key(&self) -> String {
        format!("newest image named `{}` owned by {}", self.name, self.owner)
    }
}

/// An image that matched a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCandidate {
    pub id: String,
    /// ISO 8601, so that text order is time order.
    pub created: String,
}

/// A resource as the spec wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredResource {
    pub address: Address,
    pub state: ResourceState,
    /// Take over an existing resource that nobody owns.
    pub adopt: bool,
    /// Resources that must exist before this one.
    pub depends_on: Vec<Address>,
    /// Where the spec declares it.
    pub location: Location,
}

/// A resource as found in the account.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveResource {
    pub address: Address,
    pub state: ResourceState,
    /// Resources this one refers to in the account (deleted after it).
    pub depends_on: Vec<Address>,
}

/// What was read from the account: owned resources and those the spec names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    pub resources: BTreeMap<Address, LiveResource>,
    /// Things the reader skipped and the user should know about (a bucket it may not read).
    pub warnings: Vec<String>,
    /// Managed policy ARNs the desired state names that do not exist in the account.
    pub missing_policies: BTreeSet<String>,
    /// The images each of the spec's image lookups matched, by `ImageLookup::key`.
    pub images: BTreeMap<String, Vec<ImageCandidate>>,
}
