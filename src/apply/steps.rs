//! From a change to the ordered AWS operations that carry it out. Pure.
//!
//! Every operation is idempotent (a put replaces, a create of a bucket the account already
//! owns succeeds, a delete of something gone succeeds), so a step interrupted halfway is
//! finished by running all its operations again: re-running `apply` converges.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{PublicAccessBlock, ResourceState, TAG_FORCE_DESTROY};
use crate::plan::{Action, Change};

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
        }
    }
}

/// The operations that carry out `change`, in order.
pub fn operations(change: &Change) -> Vec<Operation> {
    let bucket = change.address.name.clone();
    let before = change.before.as_ref().map(as_bucket);
    let after = change.after.as_ref().map(as_bucket);
    match change.action {
        Action::NoOp => Vec::new(),
        Action::Create => create(&bucket, after),
        Action::Delete => delete(&bucket, before),
        Action::Replace => {
            let mut ops = delete(&bucket, before);
            ops.extend(create(&bucket, after));
            ops
        }
        Action::Update | Action::Adopt => update(&bucket, before, after),
    }
}

fn as_bucket(state: &ResourceState) -> &crate::model::BucketState {
    match state {
        ResourceState::Bucket(bucket) => bucket,
    }
}

fn create(bucket: &str, after: Option<&crate::model::BucketState>) -> Vec<Operation> {
    let Some(after) = after else {
        return Vec::new();
    };
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

fn delete(bucket: &str, before: Option<&crate::model::BucketState>) -> Vec<Operation> {
    let force =
        before.is_some_and(|b| b.tags.get(TAG_FORCE_DESTROY).map(String::as_str) == Some("true"));
    let mut ops = Vec::new();
    if force {
        ops.push(Operation::EmptyBucket {
            bucket: bucket.to_string(),
        });
    }
    ops.push(Operation::DeleteBucket {
        bucket: bucket.to_string(),
    });
    ops
}

fn update(
    bucket: &str,
    before: Option<&crate::model::BucketState>,
    after: Option<&crate::model::BucketState>,
) -> Vec<Operation> {
    let (Some(before), Some(after)) = (before, after) else {
        return Vec::new();
    };
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
    use crate::model::{Address, BucketState, TAG_PROJECT};
    use crate::policy;

    fn state(public: bool, force: bool) -> ResourceState {
        let mut tags = BTreeMap::from([(TAG_PROJECT.to_string(), "lab".to_string())]);
        if force {
            tags.insert(TAG_FORCE_DESTROY.to_string(), "true".to_string());
        }
        ResourceState::Bucket(BucketState {
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
        let change = Change {
            address: Address::bucket("b"),
            action,
            reason: None,
            attributes: Vec::new(),
            before,
            after,
            depends_on: Vec::new(),
        };
        operations(&change)
            .iter()
            .map(|op| match op {
                Operation::CreateBucket { .. } => "create",
                Operation::PutBucketTags { .. } => "tags",
                Operation::PutPublicAccessBlock { .. } => "block",
                Operation::PutBucketPolicy { .. } => "policy",
                Operation::DeleteBucketPolicy { .. } => "delete-policy",
                Operation::EmptyBucket { .. } => "empty",
                Operation::DeleteBucket { .. } => "delete",
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
                vec!["create", "tags", "block", "policy"],
            ),
            (
                "create private",
                Action::Create,
                None,
                Some(state(false, false)),
                vec!["create", "tags", "block"],
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
                vec!["delete"],
            ),
            (
                "delete empties with force_destroy",
                Action::Delete,
                Some(state(true, true)),
                None,
                vec!["empty", "delete"],
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
}
