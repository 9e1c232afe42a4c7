//! The Resource Groups Tagging API: the tags of many resources of one region in pages of a
//! hundred, where S3 answers one GetBucketTagging call per bucket.
//!
//! The index behind it is AWS's copy of the tags, filled a little after each change: it may
//! miss a resource made a moment ago, show tags since changed, or (in some setups and in
//! local endpoints) cover no resource of a type at all. What it says is a hint for which
//! per-resource calls a reading may skip, never the last word (`live`).

use std::collections::BTreeMap;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::{classify, AwsError, Cloud};

/// The most resources GetResources returns per page.
const RESOURCES_PER_PAGE: i32 = 100;

/// The most tags per page (a resource's tags are never split across pages). Set as well,
/// since some endpoints (moto) otherwise cut pages at 100 tags: 33 buckets of three tags.
/// Were it refused, the reading would fall back to per-bucket calls, never go wrong.
const TAGS_PER_PAGE: i32 = 500;

/// The resource type of S3 buckets in the index (`service:type` of their ARNs).
const BUCKET_TYPE: &str = "s3:bucket";

impl Cloud {
    /// The buckets the tag index of this client's region holds with the tag `key` set to
    /// `value`, each with all its tags as the index has them. One GetResources call per
    /// page of a hundred. ARNs that do not name a bucket are left out.
    pub async fn indexed_buckets(
        &self,
        key: &str,
        value: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
        let filter = TagFilter::builder().key(key).values(value).build();
        let mut pages = self
            .tagging
            .get_resources()
            .tag_filters(filter)
            .resource_type_filters(BUCKET_TYPE)
            .resources_per_page(RESOURCES_PER_PAGE)
            .tags_per_page(TAGS_PER_PAGE)
            .into_paginator()
            .send();
        let mut buckets = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("GetResources", BUCKET_TYPE, e))?;
            for mapping in page.resource_tag_mapping_list() {
                let Some(name) = mapping.resource_arn().and_then(bucket_name) else {
                    continue;
                };
                let tags = mapping
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                buckets.insert(name.to_string(), tags);
            }
        }
        Ok(buckets)
    }
}

/// The bucket an ARN names (`arn:<partition>:s3:::<bucket>`), or `None` when it names
/// something else (an object, an access point, another service's resource).
fn bucket_name(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("s3"), Some(""), Some(""), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::bucket_name;

    #[test]
    fn only_a_bucket_arn_names_a_bucket() {
        assert_eq!(bucket_name("arn:aws:s3:::lab-data"), Some("lab-data"));
        assert_eq!(bucket_name("arn:aws-cn:s3:::lab-data"), Some("lab-data"));
        assert_eq!(bucket_name("arn:aws:s3:::lab-data/key"), None);
        assert_eq!(bucket_name("arn:aws:s3:us-east-1:123:accesspoint/x"), None);
        assert_eq!(bucket_name("arn:aws:ec2:us-east-1:123:instance/i-1"), None);
        assert_eq!(bucket_name("arn:aws:s3:::"), None);
        assert_eq!(bucket_name("lab-data"), None);
    }
}
