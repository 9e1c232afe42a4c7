//! S3 buckets: owned by tags, with a policy and a public access block; emptied on deletion
//! only on the project's evidence (its record that it created the bucket).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::AwsError;
use crate::model::{
    attribute, ownership, Attribute,
    AttributeFormat::{Document, Map},
    Kind, Ownership, OwnershipRecord, PublicAccessBlock, TAG_FORCE_DESTROY,
};

use crate::model::{ownership_tags, Address};
use crate::policy;
use crate::spec::{BucketSpec, Spec};

use super::record::RecordOp;
use super::{
    Context, Deletion, DesiredResource, Intent, ResourceKind, ResourceState, SpecContext, Step,
    StepFailure,
};

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

/// A bucket's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum BucketOp {
    Create {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    PutTags {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    PutPublicAccessBlock {
        bucket: String,
        block: PublicAccessBlock,
    },
    PutPolicy {
        bucket: String,
        policy: Value,
    },
    DeletePolicy {
        bucket: String,
    },
    /// Delete every object version and delete marker.
    Empty {
        bucket: String,
    },
    Delete {
        bucket: String,
    },
    Record(RecordOp),
}

/// The bucket kind.
pub struct Bucket;

/// What reading a listed bucket found.
pub(crate) enum BucketRead {
    Found(Box<super::LiveResource>),
    /// Not named by the spec and not readable: it cannot be ours to manage anyway.
    Unreadable(String),
    /// Gone since it was listed, or neither named nor owned.
    Irrelevant,
}

/// Reads a listed bucket: its `tags` (a call, or what the tag index showed), then, if the
/// spec names it (`is_named`) or the project owns it, its policy, public access block and
/// (for a bucket tether may empty) the project's record of creating it. A bucket the spec
/// names is read whole at once, its tags beside the rest; any other only once its tags show
/// it is the project's. Each round of calls waits for a pass of `gate`; what `tags` waits
/// for besides (an index's pages) holds none.
pub(crate) async fn read(
    (cloud, gate): (&crate::aws::Cloud, &crate::aws::Gate),
    project: &str,
    name: &str,
    is_named: bool,
    tags: impl std::future::Future<Output = Result<Option<BTreeMap<String, String>>, AwsError>>,
) -> Result<BucketRead, AwsError> {
    let details = || async {
        let _pass = gate.enter().await;
        tokio::join!(cloud.bucket_policy(name), cloud.public_access_block(name))
    };
    let (tags, early) = if is_named {
        let (tags, details) = tokio::join!(tags, details());
        (tags, Some(details))
    } else {
        (tags.await, None)
    };
    let tags = match tags {
        Ok(Some(tags)) => tags,
        // Gone since it was listed: what else was read of it does not matter.
        Ok(None) => return Ok(BucketRead::Irrelevant),
        // Another team's locked-down bucket must not stop the plan; ours would be readable.
        Err(error) if error.kind == crate::aws::AwsErrorKind::AccessDenied && !is_named => {
            return Ok(BucketRead::Unreadable(format!(
                "skipped bucket `{name}`: its tags cannot be read ({error})"
            )))
        }
        Err(error) => return Err(error),
    };
    if !is_named && ownership(&tags, project) != Ownership::Owned {
        return Ok(BucketRead::Irrelevant);
    }
    // Emptying needs the project's record of creating the bucket: read it where it matters.
    let record = async {
        let force = tags.get(TAG_FORCE_DESTROY).map(String::as_str) == Some("true");
        if !force || ownership(&tags, project) != Ownership::Owned {
            return Ok(None);
        }
        let parameter = crate::parameters::bucket_record_parameter(project, name);
        let _pass = gate.enter().await;
        super::record::read(cloud, &parameter).await
    };
    let ((policy, public_access_block), record) = match early {
        Some(details) => (details, record.await),
        None => tokio::join!(details(), record),
    };
    let (policy, public_access_block, record) = (policy?, public_access_block?, record?);
    Ok(BucketRead::Found(Box::new(super::LiveResource {
        address: Address::bucket(name),
        state: ResourceState::Bucket(BucketState {
            tags,
            policy: policy.as_ref().map(policy::normalise),
            public_access_block,
            record,
        }),
        depends_on: Vec::new(),
    })))
}

impl ResourceKind for Bucket {
    const KIND: Kind = Kind::Bucket;
    type State = BucketState;
    type Op = BucketOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.buckets
            .values()
            .map(|bucket| desired_bucket(env.project, env.region, bucket))
            .collect()
    }

    fn attributes(bucket: &BucketState) -> Vec<Attribute> {
        vec![
            attribute("tags", &bucket.tags, Map),
            attribute("public_access_block", bucket.public_access_block, Map),
            attribute("policy", &bucket.policy, Document),
        ]
    }

    fn ownership(bucket: &BucketState, project: &str) -> Ownership {
        ownership(&bucket.tags, project)
    }

    fn disowned(bucket: &BucketState) -> Result<BucketState, &'static str> {
        Ok(BucketState {
            tags: crate::model::without_tether_tags(&bucket.tags),
            record: None,
            ..bucket.clone()
        })
    }

    /// The record first: it is what would let a later `destroy` empty the bucket, and a
    /// run killed after it leaves a bucket still tagged as the project's, to forget again.
    fn forget(
        bucket: &str,
        before: &BucketState,
        after: &BucketState,
        context: &Context,
    ) -> Vec<BucketOp> {
        let mut ops = vec![BucketOp::Record(RecordOp::Delete {
            parameter: crate::parameters::bucket_record_parameter(&context.project, bucket),
        })];
        ops.extend(Self::update(
            bucket,
            before,
            after,
            &Intent::default(),
            context,
        ));
        ops
    }

    fn create(
        bucket: &str,
        after: &BucketState,
        _replacing: Option<&BucketState>,
        context: &Context,
    ) -> Vec<BucketOp> {
        // Tags go with the create so ownership is atomic where AWS supports it; the separate
        // tagging call covers endpoints that ignore tags on create, and is idempotent.
        let mut ops = vec![
            BucketOp::Create {
                bucket: bucket.to_string(),
                tags: after.tags.clone(),
            },
            // The evidence that emptying it some day deletes the project's own data: kept
            // where those who may tag the bucket cannot write. After the create, so that a
            // failed create records nothing.
            BucketOp::Record(context.record(
                crate::parameters::bucket_record_parameter(&context.project, bucket),
                bucket,
                OwnershipRecord::Created,
                Vec::new(),
            )),
            BucketOp::PutTags {
                bucket: bucket.to_string(),
                tags: after.tags.clone(),
            },
        ];
        // The public access block goes first: a public policy is refused while it blocks them.
        if let Some(block) = after.public_access_block {
            ops.push(BucketOp::PutPublicAccessBlock {
                bucket: bucket.to_string(),
                block,
            });
        }
        if let Some(policy) = &after.policy {
            ops.push(BucketOp::PutPolicy {
                bucket: bucket.to_string(),
                policy: policy.clone(),
            });
        }
        ops
    }

    fn update(
        bucket: &str,
        before: &BucketState,
        after: &BucketState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<BucketOp> {
        let mut ops = Vec::new();
        // Tags first: an adoption marks the bucket as owned before anything else changes.
        if before.tags != after.tags {
            ops.push(BucketOp::PutTags {
                bucket: bucket.to_string(),
                tags: after.tags.clone(),
            });
        }
        let block = (before.public_access_block != after.public_access_block)
            .then_some(after.public_access_block)
            .flatten()
            .map(|block| BucketOp::PutPublicAccessBlock {
                bucket: bucket.to_string(),
                block,
            });
        let policy = (before.policy != after.policy).then(|| match &after.policy {
            Some(policy) => BucketOp::PutPolicy {
                bucket: bucket.to_string(),
                policy: policy.clone(),
            },
            None => BucketOp::DeletePolicy {
                bucket: bucket.to_string(),
            },
        });
        // Loosening the block must precede a public policy; tightening it follows the
        // policy's change, so the bucket is never briefly more open than either end state.
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

    /// `intent.empty_bucket`: the plan found evidence (or was told) that the contents may go.
    fn delete(
        bucket: &str,
        _before: &BucketState,
        intent: &Intent,
        context: &Context,
    ) -> Vec<BucketOp> {
        let mut ops = Vec::new();
        if intent.empty_bucket {
            ops.push(BucketOp::Empty {
                bucket: bucket.to_string(),
            });
        }
        ops.push(BucketOp::Delete {
            bucket: bucket.to_string(),
        });
        // The record goes after the bucket: a crash in between leaves a record of a bucket
        // that is gone, never a bucket without its evidence.
        ops.push(BucketOp::Record(RecordOp::Delete {
            parameter: crate::parameters::bucket_record_parameter(&context.project, bucket),
        }));
        ops
    }

    fn describe(op: &BucketOp) -> &'static str {
        match op {
            BucketOp::Create { .. } => "creating bucket",
            BucketOp::PutTags { .. } => "tagging",
            BucketOp::PutPublicAccessBlock { .. } => "setting public access block",
            BucketOp::PutPolicy { .. } => "putting policy",
            BucketOp::DeletePolicy { .. } => "deleting policy",
            BucketOp::Empty { .. } => "emptying bucket",
            BucketOp::Delete { .. } => "deleting bucket",
            BucketOp::Record(record) => record.describe(),
        }
    }

    async fn run(op: &BucketOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let cloud = step.cloud;
        let result = match op {
            BucketOp::Create { bucket, tags } => return create(step, bucket, tags).await,
            BucketOp::PutTags { bucket, tags } => cloud.put_bucket_tags(bucket, tags).await,
            BucketOp::PutPublicAccessBlock { bucket, block } => {
                cloud.put_public_access_block(bucket, *block).await
            }
            BucketOp::PutPolicy { bucket, policy } => cloud.put_bucket_policy(bucket, policy).await,
            BucketOp::DeletePolicy { bucket } => cloud.delete_bucket_policy(bucket).await,
            BucketOp::Empty { bucket } => cloud.empty_bucket(bucket).await.map(|_| ()),
            BucketOp::Delete { bucket } => cloud.delete_bucket(bucket).await,
            BucketOp::Record(record) => return record.run(step).await,
        };
        Ok(result?)
    }

    fn hint(op: &BucketOp, error: &AwsError) -> Option<String> {
        match op {
            BucketOp::Delete { bucket } if error.is_code("BucketNotEmpty") => Some(format!(
                "tether empties a bucket only when it is tagged `force_destroy` and the project's record shows it created it: empty `{bucket}` yourself, or run again with --empty-tagged-buckets if its contents may go"
            )),
            BucketOp::Create { bucket, .. } if error.is_code("BucketAlreadyExists") => Some(format!(
                "bucket names are global across all AWS accounts, and `{bucket}` is taken: choose another name"
            )),
            _ => error.hint(),
        }
    }

    /// A `force_destroy` tag alone is no evidence: anyone allowed to tag a bucket can write
    /// it. The bucket is emptied when the project's record (in its Parameter Store path,
    /// written when it created the bucket) shows it created it, or when the command line
    /// says so.
    fn deletion(bucket: &BucketState, empty_tagged_buckets: bool) -> Deletion {
        let tagged = bucket.tags.get(TAG_FORCE_DESTROY).map(String::as_str) == Some("true");
        let (empties, note) = match (tagged, bucket.record, empty_tagged_buckets) {
            (false, _, _) => (false, None),
            (true, Some(OwnershipRecord::Created), _) => (
                true,
                Some("force_destroy: its contents are deleted too (the project's record shows it created the bucket)"),
            ),
            (true, _, true) => (
                true,
                Some("force_destroy: its contents are deleted too (--empty-tagged-buckets)"),
            ),
            (true, _, false) => (
                false,
                Some("force_destroy is tagged, but no record of the project's shows it created the bucket, so its contents are kept and deleting it fails if it holds objects (--empty-tagged-buckets empties it)"),
            ),
        };
        Deletion {
            empties,
            note: note.map(str::to_string),
        }
    }
}

/// Creates the bucket, and proves it made it before the record that says so is written:
/// the plan saw no bucket, so one there now is someone else's (made since the plan), and
/// so is one S3 says the account had already. In us-east-1, where S3 answers 200 for a
/// bucket the account owns, a bucket that holds anything is not new either. Each refusal
/// comes before any tag, record or policy is written.
async fn create(
    step: &Step<'_>,
    bucket: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), StepFailure> {
    let cloud = step.cloud;
    let refuse = |found: String| StepFailure::NotCreated {
        resource: format!("bucket `{bucket}`"),
        found,
    };
    // Another account's bucket answers 403 here: the create below says so best.
    if cloud.bucket_exists(bucket).await.unwrap_or(false) {
        // The plan reads the spec's region only: say where it is when it is elsewhere.
        let found = match cloud.bucket_region(bucket).await {
            Ok(region) if region != cloud.region() => format!(
                "this account already has a bucket named `{bucket}`, in {region}; the spec's region is {}",
                cloud.region()
            ),
            _ => "it exists now, though it did not when the plan was made, so someone else made it".into(),
        };
        return Err(refuse(found));
    }
    match cloud.create_bucket(bucket, tags).await? {
        crate::aws::BucketCreated::ExistedAlready => Err(refuse(
            "S3 says this account had it already (BucketAlreadyOwnedByYou)".into(),
        )),
        crate::aws::BucketCreated::Answered200 if cloud.create_answer_proves_new() => Ok(()),
        crate::aws::BucketCreated::Answered200 => {
            if cloud.bucket_is_empty(bucket).await? {
                Ok(())
            } else {
                Err(refuse(
                    "it holds objects, so it is no new bucket (in us-east-1, S3 answers a create of a bucket the account owns as if it made it)".into(),
                ))
            }
        }
    }
}

fn desired_bucket(project: &str, region: &str, bucket: &BucketSpec) -> DesiredResource {
    let mut tags: BTreeMap<String, String> = bucket.tags.clone();
    tags.extend(ownership_tags(project, &bucket.name));
    if bucket.force_destroy {
        tags.insert(TAG_FORCE_DESTROY.to_string(), "true".to_string());
    }
    let public_read = bucket
        .public_read
        .then(|| policy::public_read_statement(&bucket.name, policy::partition(region)));
    let document = match (&bucket.policy, public_read) {
        (Some(document), Some(statement)) => Some(policy::with_statement(document, statement)),
        (Some(document), None) => Some(document.clone()),
        (None, Some(statement)) => Some(policy::document_of(statement)),
        (None, None) => None,
    };
    let public = document.as_ref().is_some_and(policy::grants_public_access);
    DesiredResource {
        address: Address::bucket(&bucket.name),
        state: ResourceState::Bucket(BucketState {
            record: None,
            tags,
            policy: document.as_ref().map(policy::normalise),
            public_access_block: Some(PublicAccessBlock::for_policy(public)),
        }),
        adopt: bucket.adopt,
        depends_on: Vec::new(),
        location: bucket.location.clone(),
    }
}
