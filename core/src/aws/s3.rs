//! The media bucket on S3: presigned links for clients, files for workers.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use tokio::io::AsyncWriteExt;

use super::classify;
use crate::ports::{MediaFiles, MediaLinks, ObjectInfo};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct S3Media {
    client: Client,
    bucket: String,
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
        }
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
