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
/// Tag recording where tether wrote a generated key pair's private key.
pub const TAG_PRIVATE_KEY_FILE: &str = "tether:private-key-file";
/// Tag recording which public key file an imported key pair came from.
pub const TAG_PUBLIC_KEY_FILE: &str = "tether:public-key-file";
/// Tag recording `force_destroy: true`, so a bucket removed from the spec can still be emptied.
pub const TAG_FORCE_DESTROY: &str = "tether:force-destroy";

/// The kinds of resource tether manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bucket,
    IamGroup,
    IamUser,
    KeyPair,
    SecurityGroup,
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
            Kind::Account => "account",
        }
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

/// The comparable state of an EC2 key pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPairState {
    /// All tags, tether's included (but not the key file's, below).
    pub tags: BTreeMap<String, String>,
    /// Where tether wrote the private key of a key pair AWS generated (recorded in the tag
    /// `tether:private-key-file`); `None` for an imported key.
    pub private_key_file: Option<String>,
    /// The public key file an imported key came from (tag `tether:public-key-file`).
    pub public_key_file: Option<String>,
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

/// The state of any resource, tagged by kind in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceState {
    Bucket(BucketState),
    IamGroup(GroupState),
    IamUser(UserState),
    KeyPair(KeyPairState),
    SecurityGroup(SecurityGroupState),
    AccountAlias { alias: String },
    PasswordPolicy(PasswordPolicyState),
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

    /// Who owns the resource: by tags for buckets, by IAM path for users and groups.
    /// Singletons belong to whoever declares them, so they always count as owned.
    pub fn ownership(&self, project: &str) -> Ownership {
        match self {
            ResourceState::Bucket(bucket) => ownership(&bucket.tags, project),
            ResourceState::KeyPair(KeyPairState { tags, .. })
            | ResourceState::SecurityGroup(SecurityGroupState { tags, .. }) => {
                ownership(tags, project)
            }
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
            ResourceState::AccountAlias { .. } | ResourceState::PasswordPolicy(_) => {
                Ownership::Owned
            }
        }
    }

    /// The state as if its secret did not exist, so that a diff issues it anew: a user
    /// without programmatic access, a key pair without its private key file.
    pub fn without_secret(&self) -> ResourceState {
        let mut state = self.clone();
        match &mut state {
            ResourceState::IamUser(user) => user.programmatic_access = false,
            ResourceState::KeyPair(key) => key.private_key_file = None,
            _ => {}
        }
        state
    }

    /// What a user should know about deleting the resource, beyond the deletion itself.
    pub fn deletion_note(&self) -> Option<String> {
        match self {
            ResourceState::Bucket(bucket)
                if bucket.tags.get(TAG_FORCE_DESTROY).map(String::as_str) == Some("true") =>
            {
                Some("force_destroy: its contents are deleted too".into())
            }
            ResourceState::KeyPair(KeyPairState {
                private_key_file: Some(file),
                ..
            }) => Some(format!("the private key file {file} stays")),
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
                    ..attribute("private_key_file", &key.private_key_file, Scalar)
                },
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
            ResourceState::AccountAlias { alias } => vec![attribute("alias", alias, Scalar)],
            ResourceState::PasswordPolicy(policy) => {
                vec![attribute("password_policy", policy, Map)]
            }
        }
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
    /// Resources whose secret nobody holds: a user whose credentials file is missing or
    /// holds none of its keys, a key pair whose private key file is gone. Found by the
    /// caller from local files; the planner issues them anew.
    pub unheld_secrets: BTreeSet<Address>,
}
