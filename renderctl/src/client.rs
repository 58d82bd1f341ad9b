//! A small client of the REST API.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use renderfleet_core::api::{ErrorResponse, JobView};
use tokio::io::AsyncWriteExt;

use crate::settings;

#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            http,
        })
    }

    /// From `RENDERFLEET_API_URL` and `RENDERFLEET_API_KEY`, or the local stack's env file.
    pub fn from_settings() -> anyhow::Result<Self> {
        let base = settings::lookup("RENDERFLEET_API_URL").context(
            "RENDERFLEET_API_URL is not set and no local stack runs (start one with scripts/dev-up)",
        )?;
        let key =
            settings::lookup("RENDERFLEET_API_KEY").context("RENDERFLEET_API_KEY is not set")?;
        Self::new(&base, &key)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Submits a job spec. Returns the accepted job.
    pub async fn submit(
        &self,
        spec: &[u8],
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<JobView> {
        let mut req = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(spec.to_vec());
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.context("sending the job")?;
        parse(resp).await
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<JobView> {
        let resp = self
            .http
            .get(format!("{}/v1/jobs/{id}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .context("asking for the job")?;
        parse(resp).await
    }

    /// Downloads `url` (a presigned output link) to `path`.
    pub async fn download(&self, url: &str, path: &Path) -> anyhow::Result<u64> {
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(600))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("download failed with HTTP {}", resp.status());
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        tokio::fs::rename(&tmp, path).await?;
        Ok(n)
    }
}

async fn parse(resp: reqwest::Response) -> anyhow::Result<JobView> {
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).context("reading the job server's answer");
    }
    match serde_json::from_slice::<ErrorResponse>(&bytes) {
        Ok(e) => {
            let at = e
                .error
                .field
                .map(|f| format!(" (at {f})"))
                .unwrap_or_default();
            bail!("HTTP {status}: {}{at} [{}]", e.error.message, e.error.code)
        }
        Err(_) => bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
    }
}
