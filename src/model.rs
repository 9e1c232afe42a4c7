//! The vocabulary every layer shares: addresses and kinds, ownership tags and records, the
//! attributes a plan shows, and the value types the `aws` layer speaks in (a public access
//! block, a password policy, an ingress rule, an instance's market and states, a volume).
//!
//! The resource states themselves, and every rule about one kind, are in `kinds`. This
//! module holds data only; it neither reads the account nor decides what to change.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    IamRole,
    /// An IAM instance profile: what gives an instance its role.
    #[serde(rename = "iam_instance_profile")]
    InstanceProfile,
    KeyPair,
    SecurityGroup,
    Instance,
    ElasticIp,
    /// AWS Batch: a managed compute environment.
    BatchComputeEnvironment,
    /// AWS Batch: a job queue.
    BatchJobQueue,
    /// AWS Batch: a job definition (its active revision).
    BatchJobDefinition,
    /// The project's block of aliases in an OpenSSH config file (a local file, not AWS).
    SshConfig,
    /// The account's singletons: `account.alias`, `account.password_policy`.
    Account,
    /// A CloudWatch alarm that stops an idle instance (the backstop of `idle_stop`).
    IdleAlarm,
    /// An AWS Budgets cost budget on the project's tag, with its alerts.
    Budget,
}

impl Kind {
    /// Every kind, in address order.
    pub const ALL: [Kind; 16] = [
        Kind::Bucket,
        Kind::IamGroup,
        Kind::IamUser,
        Kind::IamRole,
        Kind::InstanceProfile,
        Kind::KeyPair,
        Kind::SecurityGroup,
        Kind::Instance,
        Kind::ElasticIp,
        Kind::BatchComputeEnvironment,
        Kind::BatchJobQueue,
        Kind::BatchJobDefinition,
        Kind::SshConfig,
        Kind::Account,
        Kind::IdleAlarm,
        Kind::Budget,
    ];

    /// Its name in addresses and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::IamGroup => "iam_group",
            Kind::IamUser => "iam_user",
            Kind::IamRole => "iam_role",
            Kind::InstanceProfile => "iam_instance_profile",
            Kind::KeyPair => "key_pair",
            Kind::SecurityGroup => "security_group",
            Kind::Instance => "instance",
            Kind::ElasticIp => "elastic_ip",
            Kind::BatchComputeEnvironment => "batch_compute_environment",
            Kind::BatchJobQueue => "batch_job_queue",
            Kind::BatchJobDefinition => "batch_job_definition",
            Kind::SshConfig => "ssh_config",
            Kind::Account => "account",
            Kind::IdleAlarm => "idle_alarm",
            Kind::Budget => "budget",
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

/// What a budget alert compares with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The month's spend so far.
    Actual,
    /// AWS's forecast of the month's spend.
    Forecasted,
}

/// One alert of a budget: an e-mail to `subscribers` when the spend (or its forecast)
/// passes `percent` of the limit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BudgetAlert {
    pub kind: AlertKind,
    /// The threshold in percent of the limit, as text (`80`, `92.5`).
    pub percent: String,
    pub subscribers: std::collections::BTreeSet<String>,
}

/// A number as decimal text without a needless fraction: `100`, `42.5` (a budget's limit,
/// an alert's percentage).
pub fn decimal_text(value: f64) -> String {
    let text = format!("{value}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// The name of a project's budget in AWS Budgets.
pub fn budget_name(project: &str) -> String {
    format!("tether-{project}")
}

/// The filter that makes a budget count the project's resources only: its tag, key and
/// values.
pub fn budget_tag_filter(project: &str) -> BTreeMap<String, Vec<String>> {
    [(TAG_PROJECT.to_string(), vec![project.to_string()])].into()
}

/// The address of the account alias.
pub const ACCOUNT_ALIAS: &str = "alias";
/// The address of the account password policy.
pub const ACCOUNT_PASSWORD_POLICY: &str = "password_policy";
/// The address of the project's SSH alias block.
pub const SSH_ALIASES: &str = "aliases";

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
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| format!("unknown resource kind `{kind}`"))?;
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

/// How an instance is bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    /// Billed by the second at the on-demand price; EC2 never takes it back.
    OnDemand,
    /// A persistent spot request: far cheaper, stopped when EC2 needs the capacity back.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Running, billed by the second.
    Running,
    /// Stopped: only its disks are billed. Its Elastic IP keeps its address.
    Stopped,
}

/// An EBS volume attached to an instance at a device name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeState {
    pub size_gb: i32,
    /// `gp3`, `gp2`, `io1`, ...
    pub volume_type: String,
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

    /// A record's text: the word, then the SHA-256 of each value the project wrote (or
    /// is about to write) for the setting: `created 3f1a... 9bc0...`.
    pub fn text(self, values: &[String]) -> String {
        std::iter::once(self.as_str())
            .chain(values.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The record in `text`, whatever values it names (a bucket's record names none).
    pub fn parse(text: &str) -> Option<OwnershipRecord> {
        match text.split_whitespace().next()? {
            "created" => Some(OwnershipRecord::Created),
            "adopted" => Some(OwnershipRecord::Adopted),
            _ => None,
        }
    }

    /// The record in `text` if it names `value_hash` (`setting_value_hash` of what the
    /// setting holds now): a record is the project's evidence for the value it wrote, and
    /// for no other. A setting someone changed since, or a record that names no value
    /// (written by an older tether), proves nothing, and the setting is not the project's
    /// until the spec adopts it again.
    pub fn parse_bound(text: &str, value_hash: &str) -> Option<OwnershipRecord> {
        let record = OwnershipRecord::parse(text)?;
        text.split_whitespace()
            .skip(1)
            .any(|recorded| recorded == value_hash)
            .then_some(record)
    }
}

/// The project's record of which EC2 instance is its instance of a name. Instances have no
/// names in EC2, and tags (or launch times) anyone may set prove nothing: the instance is
/// the project's because of a value only tether had, written before it launched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceRecord {
    /// tether launched it with this client token (drawn at random, recorded before
    /// RunInstances), which EC2 keeps on the instance.
    Launched { client_token: String },
    /// The spec adopted this instance (`adopt: true`), by the id the plan showed.
    Adopted { instance_id: String },
}

impl InstanceRecord {
    pub fn text(&self) -> String {
        match self {
            InstanceRecord::Launched { client_token } => format!("launched {client_token}"),
            InstanceRecord::Adopted { instance_id } => format!("adopted {instance_id}"),
        }
    }

    pub fn parse(text: &str) -> Option<InstanceRecord> {
        let (word, value) = text.trim().split_once(' ')?;
        let value = value.trim().to_string();
        match word {
            "launched" if !value.is_empty() => Some(InstanceRecord::Launched {
                client_token: value,
            }),
            "adopted" if !value.is_empty() => Some(InstanceRecord::Adopted { instance_id: value }),
            _ => None,
        }
    }

    /// Whether it names the instance `id`, launched with `client_token`.
    pub fn identifies(&self, id: &str, client_token: Option<&str>) -> bool {
        match self {
            InstanceRecord::Launched {
                client_token: token,
            } => client_token == Some(token),
            InstanceRecord::Adopted { instance_id } => instance_id == id,
        }
    }
}

/// What an account setting's record names it by: the SHA-256 of its value as JSON.
pub fn setting_value_hash(value: &impl Serialize) -> String {
    let json = serde_json::to_string(value).expect("a setting serialises");
    crate::hash::sha256_hex(json.as_bytes())
}

/// The IAM path that marks a user, group, role or instance profile as owned by `project`.
pub fn iam_path(project: &str) -> String {
    format!("/tether/{project}/")
}

/// Who owns an IAM user, group, role or instance profile, according to its path (`/tether/<project>/`).
pub fn path_ownership(path: &str, project: &str) -> Ownership {
    match path
        .strip_prefix("/tether/")
        .and_then(|rest| rest.strip_suffix('/'))
    {
        Some(owner) if owner == project => Ownership::Owned,
        Some(owner) if !owner.contains('/') => Ownership::OtherProject(owner.to_string()),
        _ => Ownership::Unowned,
    }
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

/// An attribute that changes in place.
pub fn attribute(name: &'static str, value: impl Serialize, format: AttributeFormat) -> Attribute {
    Attribute {
        name,
        value: serde_json::to_value(value).unwrap_or_default(),
        format,
        forces_replacement: false,
    }
}

impl Attribute {
    /// The attribute, marked as one whose change cannot be made in place.
    #[must_use]
    pub fn forcing(self) -> Attribute {
        Attribute {
            forces_replacement: true,
            ..self
        }
    }
}

/// Who owns an IAM role or instance profile: its path (`/tether/<project>/`) when it is
/// tether's, else its tags. IAM cannot change a role's or profile's path, so one adopted from
/// elsewhere keeps its own path and is owned by the tags it is given.
pub fn path_or_tag_ownership(
    path: &str,
    tags: &BTreeMap<String, String>,
    project: &str,
) -> Ownership {
    match path_ownership(path, project) {
        Ownership::Unowned => ownership(tags, project),
        by_path => by_path,
    }
}

/// The tags that mark a resource as `project`'s resource `name`.
pub fn ownership_tags(project: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PROJECT.to_string(), project.to_string()),
        (TAG_NAME.to_string(), name.to_string()),
    ])
}

/// The prefix of every tag tether writes (ownership and bookkeeping alike); users may not
/// set tags of their own with it.
pub const TAG_PREFIX: &str = "tether:";

/// The keys of tether's own among `tags`.
pub fn tether_tag_keys(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.keys()
        .filter(|key| key.starts_with(TAG_PREFIX))
        .cloned()
        .collect()
}

/// `tags` without tether's own: what a resource keeps when the project lets it go.
pub fn without_tether_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(key, _)| !key.starts_with(TAG_PREFIX))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
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

#[cfg(test)]
mod record_tests {
    use super::*;

    // Regression: a record said only `created`, so a policy a security team set by hand
    // later was still taken for the project's, weakened, and deleted by `destroy`.
    #[test]
    fn a_record_is_evidence_for_the_values_it_names_only() {
        let (old, new) = (
            setting_value_hash(&"lab-alias"),
            setting_value_hash(&"other"),
        );
        let text = OwnershipRecord::Created.text(std::slice::from_ref(&old));
        assert_eq!(
            OwnershipRecord::parse_bound(&text, &old),
            Some(OwnershipRecord::Created)
        );
        assert_eq!(OwnershipRecord::parse_bound(&text, &new), None);
        // While a change is under way the record names both.
        let both = OwnershipRecord::Adopted.text(&[old.clone(), new.clone()]);
        assert_eq!(
            OwnershipRecord::parse_bound(&both, &new),
            Some(OwnershipRecord::Adopted)
        );
        // An older tether's record names no value, and proves nothing about one.
        assert_eq!(OwnershipRecord::parse_bound("created", &old), None);
        assert_eq!(
            OwnershipRecord::parse("created"),
            Some(OwnershipRecord::Created)
        );
    }
}
