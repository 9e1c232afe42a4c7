//! S3 calls, one function each, in tether's types. Errors carry the operation and the
//! resource's address. "Not found" answers that are part of normal reading (no tags, no
//! policy) become `None` here, so callers never match on AWS error codes.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, Tag, Tagging,
};
use serde_json::Value;

use super::{classify, done_if, none_if, AwsError, AwsErrorKind, Cloud};
use crate::model::{Address, PublicAccessBlock};

/// S3 deletes at most this many objects per DeleteObjects call.
const DELETE_BATCH: usize = 1000;

fn address(bucket: &str) -> String {
    Address::bucket(bucket).to_string()
}

fn invalid_request(operation: &'static str, bucket: &str, message: String) -> AwsError {
    AwsError {
        operation,
        resource: address(bucket),
        code: None,
        message,
        kind: AwsErrorKind::Service,
    }
}

fn to_sdk_tags(
    operation: &'static str,
    bucket: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| invalid_request(operation, bucket, e.to_string()))
        })
        .collect()
}

/// How many objects (versions and delete markers) `empty_bucket` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectsDeleted(pub usize);

/// What S3 answered to a create of a bucket in this client's region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketCreated {
    /// 200: made now, except in us-east-1, where a bucket the account owns gets it too.
    Answered200,
    /// `BucketAlreadyOwnedByYou`: the account had it before this call.
    ExistedAlready,
}

impl Cloud {
    /// Names of the account's buckets in this client's region.
    pub async fn list_buckets(&self) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut pages = self
            .s3
            .list_buckets()
            .bucket_region(&self.region)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListBuckets", "", e))?;
            names.extend(
                page.buckets()
                    .iter()
                    .filter_map(|b| b.name().map(str::to_string)),
            );
        }
        Ok(names)
    }

    /// The bucket's tags; `None` when the bucket does not exist.
    pub async fn bucket_tags(
        &self,
        bucket: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match self.s3.get_bucket_tagging().bucket(bucket).send().await {
            Ok(output) => Ok(Some(
                output
                    .tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            )),
            Err(error) => {
                let error = classify("GetBucketTagging", &address(bucket), error);
                if error.is_code("NoSuchTagSet") {
                    Ok(Some(BTreeMap::new()))
                } else if error.is_code("NoSuchBucket") {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// The bucket policy as JSON; `None` when the bucket has none.
    pub async fn bucket_policy(&self, bucket: &str) -> Result<Option<Value>, AwsError> {
        let result = self
            .s3
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("GetBucketPolicy", &address(bucket), e));
        let Some(output) = none_if(result, "NoSuchBucketPolicy")? else {
            return Ok(None);
        };
        serde_json::from_str(output.policy().unwrap_or_default())
            .map(Some)
            .map_err(|e| {
                invalid_request(
                    "GetBucketPolicy",
                    bucket,
                    format!("the bucket's policy is not valid JSON: {e}"),
                )
            })
    }

    /// The bucket's public access block; `None` when it has no configuration.
    pub async fn public_access_block(
        &self,
        bucket: &str,
    ) -> Result<Option<PublicAccessBlock>, AwsError> {
        let result = self
            .s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("GetPublicAccessBlock", &address(bucket), e));
        let output = none_if(result, "NoSuchPublicAccessBlockConfiguration")?;
        Ok(output
            .as_ref()
            .and_then(|o| o.public_access_block_configuration())
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }))
    }

    /// Creates the bucket in this client's region with `tags`. Says whether S3 proved the
    /// bucket existed already (`BucketAlreadyOwnedByYou`): then this call did not make it.
    /// In us-east-1, S3 answers a create of a bucket the account owns with 200 as if it
    /// made it: the caller checks that one for signs of an older bucket.
    pub async fn create_bucket(
        &self,
        bucket: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<BucketCreated, AwsError> {
        let mut configuration = CreateBucketConfiguration::builder().set_tags(Some(to_sdk_tags(
            "CreateBucket",
            bucket,
            tags,
        )?));
        // us-east-1 is the one region that takes no location constraint.
        if self.region != "us-east-1" {
            configuration = configuration
                .location_constraint(BucketLocationConstraint::from(self.region.as_str()));
        }
        let result = self
            .s3
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(configuration.build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(BucketCreated::Answered200),
            Err(error) => {
                let error = classify("CreateBucket", &address(bucket), error);
                if !error.is_code("BucketAlreadyOwnedByYou") {
                    return Err(error);
                }
                // Ours, but possibly in another region, where this client cannot manage it.
                let region = self.bucket_region(bucket).await?;
                if region == self.region {
                    Ok(BucketCreated::ExistedAlready)
                } else {
                    Err(AwsError {
                        operation: "CreateBucket",
                        resource: address(bucket),
                        code: Some("BucketAlreadyOwnedByYou".into()),
                        message: format!(
                            "this account already has a bucket named `{bucket}`, in {region}; the spec's region is {}",
                            self.region
                        ),
                        kind: AwsErrorKind::Service,
                    })
                }
            }
        }
    }

    /// Whether S3's 200 to a create proves the bucket is new: everywhere but in us-east-1,
    /// where it answers 200 for a bucket the account owns already.
    pub fn create_answer_proves_new(&self) -> bool {
        self.region != "us-east-1"
    }

    /// Whether the bucket holds no object version and no delete marker (one listing call).
    pub async fn bucket_is_empty(&self, bucket: &str) -> Result<bool, AwsError> {
        let listing = self
            .s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| classify("ListObjectVersions", &address(bucket), e))?;
        Ok(listing.versions().is_empty() && listing.delete_markers().is_empty())
    }

    /// The region a bucket of this account is in.
    pub async fn bucket_region(&self, bucket: &str) -> Result<String, AwsError> {
        let output = self
            .s3
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("GetBucketLocation", &address(bucket), e))?;
        // S3 answers with no constraint for us-east-1 and with the legacy `EU` for eu-west-1.
        Ok(match output.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(region) => region.to_string(),
        })
    }

    /// Replaces the bucket's whole tag set. Idempotent.
    pub async fn put_bucket_tags(
        &self,
        bucket: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        // S3 takes no empty tag set: a bucket left with no tags has its tagging deleted.
        if tags.is_empty() {
            self.s3
                .delete_bucket_tagging()
                .bucket(bucket)
                .send()
                .await
                .map_err(|e| classify("DeleteBucketTagging", &address(bucket), e))?;
            return Ok(());
        }
        let tagging = Tagging::builder()
            .set_tag_set(Some(to_sdk_tags("PutBucketTagging", bucket, tags)?))
            .build()
            .map_err(|e| invalid_request("PutBucketTagging", bucket, e.to_string()))?;
        self.s3
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| classify("PutBucketTagging", &address(bucket), e))?;
        Ok(())
    }

    /// Sets the bucket's public access block. Idempotent.
    pub async fn put_public_access_block(
        &self,
        bucket: &str,
        block: PublicAccessBlock,
    ) -> Result<(), AwsError> {
        let configuration = PublicAccessBlockConfiguration::builder()
            .block_public_acls(block.block_public_acls)
            .ignore_public_acls(block.ignore_public_acls)
            .block_public_policy(block.block_public_policy)
            .restrict_public_buckets(block.restrict_public_buckets)
            .build();
        self.s3
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(configuration)
            .send()
            .await
            .map_err(|e| classify("PutPublicAccessBlock", &address(bucket), e))?;
        Ok(())
    }

    /// Replaces the bucket policy. Idempotent.
    pub async fn put_bucket_policy(&self, bucket: &str, policy: &Value) -> Result<(), AwsError> {
        self.s3
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| classify("PutBucketPolicy", &address(bucket), e))?;
        Ok(())
    }

    /// Removes the bucket policy. Idempotent: S3 answers success when there is none.
    pub async fn delete_bucket_policy(&self, bucket: &str) -> Result<(), AwsError> {
        self.s3
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("DeleteBucketPolicy", &address(bucket), e))?;
        Ok(())
    }

    /// Deletes every object version and delete marker in the bucket, page by page. Safe to
    /// repeat: each pass lists what is left.
    pub async fn empty_bucket(&self, bucket: &str) -> Result<ObjectsDeleted, AwsError> {
        let mut deleted = 0;
        loop {
            let listing = self
                .s3
                .list_object_versions()
                .bucket(bucket)
                .max_keys(i32::try_from(DELETE_BATCH).expect("a batch of 1000 fits"))
                .send()
                .await
                .map_err(|e| classify("ListObjectVersions", &address(bucket), e))?;
            let mut identifiers = Vec::new();
            let versions = listing
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    listing
                        .delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                );
            for (key, version) in versions {
                let Some(key) = key else { continue };
                let identifier = ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.filter(|v| *v != "null").map(str::to_string))
                    .build()
                    .map_err(|e| invalid_request("DeleteObjects", bucket, e.to_string()))?;
                identifiers.push(identifier);
            }
            if identifiers.is_empty() {
                return Ok(ObjectsDeleted(deleted));
            }
            deleted += self.delete_identifiers(bucket, identifiers).await?;
        }
    }

    /// Deletes exactly these keys (their current versions), 1,000 per call. Keys already
    /// gone count as deleted.
    pub async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<usize, AwsError> {
        let mut deleted = 0;
        for chunk in keys.chunks(DELETE_BATCH) {
            let identifiers = chunk
                .iter()
                .map(|key| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(|e| invalid_request("DeleteObjects", bucket, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            deleted += self.delete_identifiers(bucket, identifiers).await?;
        }
        Ok(deleted)
    }

    /// One DeleteObjects call (quiet); any object it could not delete is an error.
    async fn delete_identifiers(
        &self,
        bucket: &str,
        identifiers: Vec<ObjectIdentifier>,
    ) -> Result<usize, AwsError> {
        let count = identifiers.len();
        let delete = Delete::builder()
            .set_objects(Some(identifiers))
            .quiet(true)
            .build()
            .map_err(|e| invalid_request("DeleteObjects", bucket, e.to_string()))?;
        let output = self
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify("DeleteObjects", &address(bucket), e))?;
        if let Some(failure) = output.errors().first() {
            return Err(AwsError {
                operation: "DeleteObjects",
                resource: address(bucket),
                code: failure.code().map(str::to_string),
                message: format!(
                    "could not delete `{}`: {} ({} objects failed)",
                    failure.key().unwrap_or_default(),
                    failure.message().unwrap_or("no message"),
                    output.errors().len()
                ),
                kind: AwsErrorKind::Service,
            });
        }
        Ok(count)
    }

    /// Deletes the (empty) bucket. Safe to repeat: a bucket already gone counts as deleted.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        let result = self
            .s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("DeleteBucket", &address(bucket), e));
        done_if(result, "NoSuchBucket")
    }
}
