//! From spec to desired state: what each declared resource should look like in the account,
//! tether's ownership tags and derived settings included. Pure.

use std::collections::BTreeMap;

use crate::model::{
    Address, BucketState, DesiredResource, PublicAccessBlock, ResourceState, TAG_FORCE_DESTROY,
    TAG_NAME, TAG_PROJECT,
};
use crate::policy;
use crate::spec::{BucketSpec, Spec};

/// The desired state of every resource in `spec`, for an account in `region`.
pub fn desired_resources(spec: &Spec, region: &str) -> Vec<DesiredResource> {
    spec.buckets
        .values()
        .map(|bucket| desired_bucket(&spec.project, region, bucket))
        .collect()
}

fn desired_bucket(project: &str, region: &str, bucket: &BucketSpec) -> DesiredResource {
    let mut tags: BTreeMap<String, String> = bucket.tags.clone();
    tags.insert(TAG_PROJECT.to_string(), project.to_string());
    tags.insert(TAG_NAME.to_string(), bucket.name.clone());
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
            tags,
            policy: document.as_ref().map(policy::normalise),
            public_access_block: Some(PublicAccessBlock::for_policy(public)),
        }),
        adopt: bucket.adopt,
        depends_on: Vec::new(),
        location: bucket.location.clone(),
    }
}
