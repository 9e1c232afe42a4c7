//! S3 object calls for the jobs: listing a prefix, streaming an object's body, downloading
//! to and uploading from files, putting a small document. Uploads are single PutObject
//! calls, so an object is complete or absent: an interrupted upload leaves nothing behind
//! (the SDK retries throttling, 5xx and dropped connections, and a file body replays).
//!
//! A body that breaks off mid-stream (a dropped connection, a reset) is resumed from the
//! byte it reached with a ranged GetObject that must match the first answer's ETag, so a
//! changed object is never stitched onto the old one's start: that is `Changed`, and a
//! download starts over. A download is written under a temporary name and renamed when
//! whole, so a partial file never sits under the final name.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;

use super::{classify, AwsError, AwsErrorKind, Cloud};

/// An object found under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Its ETag: which version of it this is.
    pub etag: Option<String>,
}

/// How many times one body is resumed after breaking off.
const RESUMES: u32 = 8;

/// The error code of an object that changed while it was read (its ETag no longer matches).
pub const CHANGED: &str = "PreconditionFailed";

/// An object's body, read chunk by chunk as it arrives: an object larger than memory is
/// never held whole. A body that breaks off is resumed where it stopped.
pub struct ObjectBody {
    stream: ByteStream,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// The version being read: a resumed read must match it.
    etag: Option<String>,
    /// The object's size, when S3 said it.
    length: Option<u64>,
    /// Bytes delivered so far.
    offset: u64,
    resumes_left: u32,
}

impl ObjectBody {
    fn url(&self) -> String {
        url(&self.bucket, &self.key)
    }

    fn broke_off(&self, why: String) -> AwsError {
        AwsError {
            operation: "GetObject",
            resource: self.url(),
            code: None,
            message: format!("the body broke off: {why}"),
            kind: AwsErrorKind::Unreachable,
        }
    }

    /// The next chunk, or `None` at the end. A body that breaks off is read on from the
    /// byte it reached (with backoff, `RESUMES` times), only from the same version of the
    /// object: one that changed meanwhile is an error with code `CHANGED`.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AwsError> {
        loop {
            let why = match self.stream.try_next().await {
                Ok(Some(chunk)) => {
                    self.offset += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Ok(None) if self.length.is_none_or(|length| self.offset >= length) => {
                    return Ok(None);
                }
                Ok(None) => format!(
                    "it ended at byte {} of {}",
                    self.offset,
                    self.length.unwrap_or_default()
                ),
                Err(error) => error.to_string(),
            };
            self.resume(why).await?;
        }
    }

    /// Asks for the rest of the same version of the object, from `offset`.
    async fn resume(&mut self, mut why: String) -> Result<(), AwsError> {
        loop {
            if self.resumes_left == 0 || self.etag.is_none() {
                return Err(self.broke_off(why));
            }
            self.resumes_left -= 1;
            let attempt = RESUMES - self.resumes_left;
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            let resumed = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .range(format!("bytes={}-", self.offset))
                .set_if_match(self.etag.clone())
                .send()
                .await
                .map_err(|e| classify("GetObject", &self.url(), e));
            match resumed {
                Ok(output) => {
                    self.stream = output.body;
                    return Ok(());
                }
                // Still unreachable after the SDK's own retries: another round.
                Err(error)
                    if matches!(
                        error.kind,
                        AwsErrorKind::Unreachable | AwsErrorKind::Throttled
                    ) =>
                {
                    why = error.to_string();
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// What an uploaded object carries besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'a> {
    /// User metadata: a name and its value.
    pub metadata: Option<(&'a str, &'a str)>,
    /// `Content-Encoding`, which a reader that asks for it undoes (`gzip`).
    pub content_encoding: Option<&'a str>,
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
                    etag: object.e_tag().map(str::to_string),
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
            etag: output.e_tag().map(str::to_string),
            length: output
                .content_length()
                .and_then(|length| u64::try_from(length).ok()),
            stream: output.body,
            s3: self.s3.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            offset: 0,
            resumes_left: RESUMES,
        })
    }

    /// Streams the object into `file` (created with mode 0600, or truncated). Returns the
    /// bytes written.
    pub async fn download(&self, bucket: &str, key: &str, file: &Path) -> Result<u64, AwsError> {
        let mut partial = file.as_os_str().to_os_string();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        // An object replaced while it was read is read again from its start, a few times.
        let mut tries = 3;
        loop {
            match self.download_once(bucket, key, &partial).await {
                Ok(written) => {
                    tokio::fs::rename(&partial, file)
                        .await
                        .map_err(|error| AwsError {
                            operation: "GetObject",
                            resource: url(bucket, key),
                            code: None,
                            message: format!(
                                "cannot move the download to {}: {error}",
                                file.display()
                            ),
                            kind: AwsErrorKind::Service,
                        })?;
                    return Ok(written);
                }
                Err(error) if error.is_code(CHANGED) && tries > 1 => tries -= 1,
                Err(error) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(error);
                }
            }
        }
    }

    async fn download_once(&self, bucket: &str, key: &str, file: &Path) -> Result<u64, AwsError> {
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

    /// The object's user metadata (`x-amz-meta-*`, by name), or `None` when there is no
    /// such object.
    pub async fn object_metadata(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, AwsError> {
        let result = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("HeadObject", &url(bucket, key), e));
        match result {
            Ok(output) => Ok(Some(output.metadata().cloned().unwrap_or_default())),
            Err(error) if error.is_code("NotFound") || error.is_code("NoSuchKey") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Uploads `file` as one object.
    pub async fn upload(&self, bucket: &str, key: &str, file: &Path) -> Result<(), AwsError> {
        self.upload_with(bucket, key, file, Headers::default())
            .await
    }

    /// Uploads `file` as one object with `headers` (user metadata, a content encoding),
    /// written with the object in the same call.
    pub async fn upload_with(
        &self,
        bucket: &str,
        key: &str,
        file: &Path,
        headers: Headers<'_>,
    ) -> Result<(), AwsError> {
        let Headers {
            metadata,
            content_encoding,
        } = headers;
        let body = ByteStream::from_path(file)
            .await
            .map_err(|error| AwsError {
                operation: "PutObject",
                resource: url(bucket, key),
                code: None,
                message: format!("cannot read {}: {error}", file.display()),
                kind: AwsErrorKind::Service,
            })?;
        let mut request = self.s3.put_object().bucket(bucket).key(key).body(body);
        if let Some((name, value)) = metadata {
            request = request.metadata(name, value);
        }
        if let Some(encoding) = content_encoding {
            request = request.content_encoding(encoding);
        }
        request
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
        self.put_document_with(bucket, key, content, content_type, None)
            .await
    }

    /// Puts a small document carrying the user metadata `metadata`, in one call.
    pub async fn put_document_with(
        &self,
        bucket: &str,
        key: &str,
        content: Vec<u8>,
        content_type: &str,
        metadata: Option<(&str, &str)>,
    ) -> Result<(), AwsError> {
        let mut request = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(content));
        if let Some((name, value)) = metadata {
            request = request.metadata(name, value);
        }
        request
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
        Ok(self.object_metadata(bucket, key).await?.is_some())
    }
}
