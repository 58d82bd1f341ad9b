//! The media bucket on S3: presigned links for clients, files for workers.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::io::AsyncWriteExt;

use super::classify;
use crate::ports::{MediaFiles, MediaLinks, ObjectInfo};
use crate::{Error, Result};

/// Files up to this size go up in one PutObject; larger ones in parts, so an upload is never one
/// request that must finish inside one attempt's timeout (a single PUT also stops at 5 GB).
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// The size of each part (S3 takes 5 MiB to 5 GiB, at most 10,000 parts).
pub const PART_SIZE: u64 = 16 << 20;
const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;
/// Parts uploading at once.
const PARALLEL_PARTS: usize = 4;

#[derive(Clone, Debug)]
pub struct S3Media {
    client: Client,
    bucket: String,
    multipart_threshold: u64,
    part_size: u64,
}

impl S3Media {
    /// A client for `bucket`. With a custom endpoint (the emulator), requests use path-style
    /// addressing, which emulators need and AWS still accepts.
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let mut builder = aws_sdk_s3::config::Builder::from(config);
        if config.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: bucket.into(),
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
        }
    }

    /// The same client with other multipart settings (tests use small parts). The part size is
    /// raised to S3's minimum of 5 MiB.
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// Uploads `path` in parts; aborts the upload (so no parts linger) if any part fails.
    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        size: u64,
    ) -> Result<()> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", e))?;
        let upload_id = upload.upload_id.ok_or_else(|| Error::Service {
            op: "CreateMultipartUpload",
            message: "no upload id".into(),
        })?;
        match self.upload_parts(key, path, size, &upload_id).await {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("CompleteMultipartUpload", e)),
            Err(e) => {
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key, error = %DisplayErrorContext(&abort), "could not abort a failed multipart upload; the bucket's lifecycle rule removes it");
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>> {
        let part_size = self.part_size.max(size.div_ceil(MAX_PARTS));
        let count = size.div_ceil(part_size);
        let mut parts = Vec::with_capacity(count as usize);
        let mut running = tokio::task::JoinSet::new();
        let mut next = 0u64;
        while next < count || !running.is_empty() {
            while next < count && running.len() < PARALLEL_PARTS {
                let offset = next * part_size;
                let length = part_size.min(size - offset);
                let number = (next + 1) as i32;
                let (client, bucket, key, upload_id, path) = (
                    self.client.clone(),
                    self.bucket.clone(),
                    key.to_owned(),
                    upload_id.to_owned(),
                    path.to_owned(),
                );
                running.spawn(async move {
                    let body = ByteStream::read_from()
                        .path(&path)
                        .offset(offset)
                        .length(Length::Exact(length))
                        .build()
                        .await
                        .map_err(|e| Error::Service {
                            op: "UploadPart",
                            message: e.to_string(),
                        })?;
                    let out = client
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(length as i64)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| classify("UploadPart", e))?;
                    Ok::<_, Error>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag)
                            .build(),
                    )
                });
                next += 1;
            }
            if let Some(done) = running.join_next().await {
                let part = done.map_err(|e| Error::Transient {
                    op: "UploadPart",
                    message: format!("a part's upload stopped: {e}"),
                })??;
                parts.push(part);
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it does not exist (the local stack; Terraform does it in AWS).
    pub async fn create_bucket(&self) -> Result<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("CreateBucket", e)),
        }
    }

    /// Keys under `prefix` (for audits and tests).
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| classify("ListObjectsV2", e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(keys)
    }

    fn presigning(ttl: Duration) -> Result<PresigningConfig> {
        PresigningConfig::expires_in(ttl)
            .map_err(|e| Error::Config(format!("presigning for {ttl:?}: {e}")))
    }
}

#[async_trait]
impl MediaLinks for S3Media {
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| classify("PresignGetObject", e))?;
        Ok(req.uri().to_owned())
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size_bytes: u64,
        ttl: Duration,
    ) -> Result<String> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size_bytes as i64)
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| classify("PresignPutObject", e))?;
        Ok(req.uri().to_owned())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size_bytes: out.content_length.unwrap_or(0).max(0) as u64,
                content_type: out.content_type,
            })),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(None),
            Err(e) => Err(classify("HeadObject", e)),
        }
    }
}

#[async_trait]
impl MediaFiles for S3Media {
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<u64> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::Service {
                op: "PutObject",
                message: format!("{}: {e}", path.display()),
            })?
            .len();
        if size > self.multipart_threshold {
            self.put_multipart(key, path, content_type, size).await?;
            return Ok(size);
        }
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| Error::Service {
                op: "PutObject",
                message: e.to_string(),
            })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| classify("PutObject", e))?;
        Ok(size)
    }

    async fn get_file(&self, key: &str, path: &Path, max_bytes: u64) -> Result<u64> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
                return Err(Error::NotFound(format!("object {key}")));
            }
            Err(e) => return Err(classify("GetObject", e)),
        };
        let io = |e: std::io::Error| Error::Service {
            op: "GetObject",
            message: e.to_string(),
        };
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut body = out.body;
        let mut written = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| Error::Transient {
            op: "GetObject",
            message: e.to_string(),
        })? {
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(Error::Service {
                    op: "GetObject",
                    message: format!("object {key} is larger than {max_bytes} bytes"),
                });
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(written)
    }
}
