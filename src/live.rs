//! Reading the account: what exists that the spec names or the project owns.
//!
//! Reads of independent resources run concurrently (bounded). The result is plain data
//! (`LiveState`) for the planner; this module makes no decisions about it beyond which
//! resources are relevant. It talks to AWS only through `aws::Cloud`.

use std::collections::BTreeSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::aws::{AwsError, AwsErrorKind, Cloud};
use crate::model::{
    ownership, Address, BucketState, Kind, LiveResource, LiveState, Ownership, ResourceState,
};
use crate::policy;

/// How many reads are in flight at once. S3 serves far more; this keeps a plan of hundreds
/// of buckets fast without bursting into throttling.
const READ_CONCURRENCY: usize = 32;

/// Which resources to read.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Everything the project owns, plus these addresses whoever owns them (the spec's).
    Project(&'a [Address]),
    /// Exactly these addresses (to check a saved plan is still fresh).
    Only(&'a [Address]),
}

/// Reads the live state of `project`'s resources in the client's region.
pub async fn read(cloud: &Cloud, project: &str, scope: Scope<'_>) -> Result<LiveState, AwsError> {
    let (named, only) = match scope {
        Scope::Project(addresses) => (addresses, false),
        Scope::Only(addresses) => (addresses, true),
    };
    let named_buckets: BTreeSet<&str> = named
        .iter()
        .filter(|a| a.kind == Kind::Bucket)
        .map(|a| a.name.as_str())
        .collect();
    let names: Vec<String> = cloud
        .list_buckets()
        .await?
        .into_iter()
        .filter(|name| !only || named_buckets.contains(name.as_str()))
        .collect();
    let found: Vec<BucketRead> = stream::iter(names)
        .map(|name| read_bucket(cloud, project, name, &named_buckets))
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut live = LiveState::default();
    for read in found {
        match read {
            BucketRead::Found(resource) => {
                live.resources.insert(resource.address.clone(), resource);
            }
            BucketRead::Unreadable(warning) => live.warnings.push(warning),
            BucketRead::Irrelevant => {}
        }
    }
    live.warnings.sort();
    Ok(live)
}

enum BucketRead {
    Found(LiveResource),
    /// Not named by the spec and not readable: it cannot be ours to manage anyway.
    Unreadable(String),
    /// Gone since it was listed, or neither named nor owned.
    Irrelevant,
}

async fn read_bucket(
    cloud: &Cloud,
    project: &str,
    name: String,
    named: &BTreeSet<&str>,
) -> Result<BucketRead, AwsError> {
    let is_named = named.contains(name.as_str());
    let tags = match cloud.bucket_tags(&name).await {
        Ok(Some(tags)) => tags,
        Ok(None) => return Ok(BucketRead::Irrelevant),
        // Another team's locked-down bucket must not stop the plan; ours would be readable.
        Err(error) if error.kind == AwsErrorKind::AccessDenied && !is_named => {
            return Ok(BucketRead::Unreadable(format!(
                "skipped bucket `{name}`: its tags cannot be read ({error})"
            )))
        }
        Err(error) => return Err(error),
    };
    if !is_named && ownership(&tags, project) != Ownership::Owned {
        return Ok(BucketRead::Irrelevant);
    }
    let (policy, public_access_block) =
        tokio::try_join!(cloud.bucket_policy(&name), cloud.public_access_block(&name))?;
    Ok(BucketRead::Found(LiveResource {
        address: Address::bucket(&name),
        state: ResourceState::Bucket(BucketState {
            tags,
            policy: policy.as_ref().map(policy::normalise),
            public_access_block,
        }),
        depends_on: Vec::new(),
    }))
}
