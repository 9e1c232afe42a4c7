//! S3 object calls for the jobs: listing a prefix, streaming an object's body, downloading
//! to and uploading from files, putting a small document. Uploads are single PutObject
//! calls, so an object is complete or absent: an interrupted upload leaves nothing behind.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;

use super::{classify, AwsError, AwsErrorKind, Cloud};

/// An object found under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// An object's body, read chunk by chunk as it arrives: an object larger than memory is
/// never held whole.
pub struct ObjectBody {
    stream: ByteStream,
    url: String,
}

impl ObjectBody {
    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AwsError> {
        self.stream.try_next().await.map_err(|error| AwsError {
            operation: "GetObject",
            resource: self.url.clone(),
            code: None,
            message: format!("the body broke off: {error}"),
            kind: AwsErrorKind::Unreachable,
        })
    }
}

fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

impl Cloud {
    /// Every object under `prefix`, in key order, following continuation tokens.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, AwsError> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListObjectsV2", &url(bucket, prefix), e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                // "Directory" placeholder objects hold nothing to process.
                if key.ends_with('/') {
                    continue;
                }
                found.push(ObjectInfo {
                    key: key.to_string(),
                    size: u64::try_from(object.size().unwrap_or_default()).unwrap_or(0),
                });
            }
        }
        Ok(found)
    }

    /// Whether the bucket exists (and these credentials may see it).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, AwsError> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(error) => {
                let error = classify("HeadBucket", &format!("s3://{bucket}"), error);
                if error.is_code("NotFound") || error.is_code("NoSuchBucket") {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// The object's body as a stream of chunks.
    pub async fn object_body(&self, bucket: &str, key: &str) -> Result<ObjectBody, AwsError> {
        let output = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", &url(bucket, key), e))?;
        Ok(ObjectBody {
            stream: output.body,
            url: url(bucket, key),
        })
    }

    /// Streams the object into `file` (created with mode 0600, or truncated). Returns the
    /// bytes written.
    pub async fn download(&self, bucket: &str, key: &str, file: &Path) -> Result<u64, AwsError> {
        use tokio::io::AsyncWriteExt;
        let io_error = |error: std::io::Error| AwsError {
            operation: "GetObject",
            resource: url(bucket, key),
            code: None,
            message: format!("cannot write {}: {error}", file.display()),
            kind: AwsErrorKind::Service,
        };
        let mut body = self.object_body(bucket, key).await?;
        // An input is the team's data: readable by this user only, whatever the umask.
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(file)
            .await
            .map_err(io_error)?;
        let mut written = 0u64;
        while let Some(chunk) = body.next_chunk().await? {
            out.write_all(&chunk).await.map_err(io_error)?;
            written += chunk.len() as u64;
        }
        out.flush().await.map_err(io_error)?;
        Ok(written)
    }

    /// Uploads `file` as one object.
    pub async fn upload(&self, bucket: &str, key: &str, file: &Path) -> Result<(), AwsError> {
        let body = ByteStream::from_path(file)
            .await
            .map_err(|error| AwsError {
                operation: "PutObject",
                resource: url(bucket, key),
                code: None,
                message: format!("cannot read {}: {error}", file.display()),
                kind: AwsErrorKind::Service,
            })?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutObject", &url(bucket, key), e))
    }

    /// Puts a small document as one object.
    pub async fn put_document(
        &self,
        bucket: &str,
        key: &str,
        content: Vec<u8>,
        content_type: &str,
    ) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(content))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutObject", &url(bucket, key), e))
    }

    /// The whole object, when it exists (small documents: results, manifests).
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let result = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", &url(bucket, key), e));
        let Some(output) = super::none_if(result, "NoSuchKey")? else {
            return Ok(None);
        };
        let bytes = output.body.collect().await.map_err(|error| AwsError {
            operation: "GetObject",
            resource: url(bucket, key),
            code: None,
            message: error.to_string(),
            kind: AwsErrorKind::Unreachable,
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Whether the object exists.
    pub async fn object_exists(&self, bucket: &str, key: &str) -> Result<bool, AwsError> {
        let result = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("HeadObject", &url(bucket, key), e));
        match result {
            Ok(()) => Ok(true),
            Err(error) if error.is_code("NotFound") || error.is_code("NoSuchKey") => Ok(false),
            Err(error) => Err(error),
        }
    }
}
