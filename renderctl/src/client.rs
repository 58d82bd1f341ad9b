//! The client of the REST API: renderctl's commands and the end-to-end tests both use it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use renderfleet_core::api::{ErrorResponse, JobList, JobView};
use serde::de::DeserializeOwned;
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
        let resp = self.post_request(spec, idempotency_key).send().await;
        parse(resp.context("sending the job")?).await
    }

    /// `POST /v1/jobs` with `spec`, whatever it answers: the status and the JSON answer (null
    /// when the answer is not JSON). Fails only when no answer came.
    pub async fn post(
        &self,
        spec: &[u8],
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self.post_request(spec, idempotency_key).send().await?;
        Ok(status_and_body(resp).await)
    }

    /// A request to `path` of the API, with the key.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base);
        self.http.request(method, url).bearer_auth(&self.key)
    }

    fn post_request(&self, spec: &[u8], idempotency_key: Option<&str>) -> reqwest::RequestBuilder {
        let req = self
            .request(reqwest::Method::POST, "/v1/jobs")
            .header("content-type", "application/json")
            .body(spec.to_vec());
        match idempotency_key {
            Some(k) => req.header("idempotency-key", k),
            None => req,
        }
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<JobView> {
        let resp = self.request(reqwest::Method::GET, &format!("/v1/jobs/{id}"));
        parse(resp.send().await.context("asking for the job")?).await
    }

    /// The jobs of `ids`, in that order, as the server has them now.
    pub async fn get_all(&self, ids: &[String]) -> anyhow::Result<Vec<JobView>> {
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.push(self.get(id).await?);
        }
        Ok(views)
    }

    /// `GET /v1/jobs`: the caller's newest jobs, at most `limit` (one page).
    pub async fn list(&self, limit: u32) -> anyhow::Result<Vec<JobView>> {
        let resp = self.request(reqwest::Method::GET, &format!("/v1/jobs?limit={limit}"));
        let list: JobList = parse(resp.send().await.context("listing the jobs")?).await?;
        Ok(list.jobs)
    }

    /// `DELETE /v1/jobs/{id}`: asks for the job to be cancelled; the status and the JSON answer.
    pub async fn cancel(&self, id: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self.request(reqwest::Method::DELETE, &format!("/v1/jobs/{id}"));
        Ok(status_and_body(resp.send().await?).await)
    }

    /// Whether the server answers `GET /healthz` with a success.
    pub async fn healthy(&self) -> bool {
        let resp = self.http.get(format!("{}/healthz", self.base)).send().await;
        resp.is_ok_and(|r| r.status().is_success())
    }

    /// Polls every job of `ids` every `every` until all are terminal; fails after `timeout`.
    pub async fn wait_terminal(
        &self,
        ids: &[String],
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Vec<JobView>> {
        let deadline = Instant::now() + timeout;
        loop {
            let views = self.get_all(ids).await?;
            if views.iter().all(|v| v.state.is_terminal()) {
                return Ok(views);
            }
            if Instant::now() > deadline {
                bail!(
                    "jobs unfinished after {} s: {:?}",
                    timeout.as_secs(),
                    views.iter().map(|v| (&v.id, v.state)).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(every).await;
        }
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

async fn status_and_body(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The answer as `T` on a success, else the server's error as ours.
async fn parse<T: DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
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
