//! Jobs as the API shows them.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use renderfleet_core::api::{JobView, OutputView};
use renderfleet_core::clock::{now_ms, to_rfc3339};
use renderfleet_core::job::Job;
use renderfleet_core::spec::JobSpec;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// The API view of `job`; a succeeded job gets a fresh presigned link to its video.
pub async fn job_view(state: &AppState, job: Job, with_spec: bool) -> Result<JobView, ApiError> {
    let output = match &job.output {
        Some(o) => {
            let ttl = state.config.output_url_ttl;
            let url = state.media.presign_get(&o.key, ttl).await?;
            Some(OutputView {
                url,
                expires_at: to_rfc3339(now_ms() + ttl.as_millis() as i64),
                size_bytes: o.size_bytes,
                duration: o.duration,
            })
        }
        None => None,
    };
    let spec = with_spec.then(|| JobSpec::clone(&job.spec));
    Ok(JobView {
        id: job.id.as_str().to_owned(),
        state: job.state,
        progress: job.progress,
        attempts: job.attempts,
        created_at: to_rfc3339(job.created_at),
        started_at: job.started_at.map(to_rfc3339),
        finished_at: job.finished_at.map(to_rfc3339),
        error: job.error,
        output,
        cancel_requested: job.cancel_requested,
        priority: job.priority,
        metadata: job.spec.metadata.clone(),
        spec,
    })
}

/// A JSON response body. Unlike `axum::Json`, which grows a 128-byte buffer through one small
/// write per token, it writes into one buffer sized for a job's view.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(512);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(anyhow::Error::new(e).context("serializing a response"))
                .into_response(),
        }
    }
}
