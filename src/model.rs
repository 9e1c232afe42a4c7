//! The resource model shared by `live`, `plan` and `apply`: addresses, ownership tags and the
//! comparable state of each kind of resource.
//!
//! A `ResourceState` is the same type whether it was read from the account or derived from the
//! spec, so diffing is comparing two values. This module holds data only; it neither reads the
//! account nor decides what to change.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::Location;

/// Tag naming the project that owns a resource.
pub const TAG_PROJECT: &str = "tether:project";
/// Tag holding the resource's key in the spec.
pub const TAG_NAME: &str = "tether:name";
/// Tag recording `force_destroy: true`, so a bucket removed from the spec can still be emptied.
pub const TAG_FORCE_DESTROY: &str = "tether:force-destroy";

/// The kinds of resource tether manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bucket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
        }
    }
}

/// A resource's address in plans: its kind and its key in the spec, e.g. `bucket.lab-data`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn bucket(name: impl Into<String>) -> Address {
        Address {
            kind: Kind::Bucket,
            name: name.into(),
        }
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

/// The state of any resource, tagged by kind in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceState {
    Bucket(BucketState),
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

impl ResourceState {
    pub fn tags(&self) -> &BTreeMap<String, String> {
        match self {
            ResourceState::Bucket(bucket) => &bucket.tags,
        }
    }

    /// The attributes a plan compares, in display order. `Value::Null` means absent.
    pub fn attributes(&self) -> Vec<Attribute> {
        match self {
            ResourceState::Bucket(bucket) => vec![
                Attribute {
                    name: "tags",
                    value: serde_json::to_value(&bucket.tags).unwrap_or_default(),
                    format: AttributeFormat::Map,
                    forces_replacement: false,
                },
                Attribute {
                    name: "public_access_block",
                    value: serde_json::to_value(bucket.public_access_block).unwrap_or_default(),
                    format: AttributeFormat::Map,
                    forces_replacement: false,
                },
                Attribute {
                    name: "policy",
                    value: bucket.policy.clone().unwrap_or(Value::Null),
                    format: AttributeFormat::Document,
                    forces_replacement: false,
                },
            ],
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
}
