//! `/v1/jobs`: submit and read render jobs.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use renderfleet_core::clock::now_ms;
use renderfleet_core::ids::JobId;
use renderfleet_core::job::Job;
use renderfleet_core::message::JobMessage;
use renderfleet_core::spec::JobSpec;

use super::JsonBody;
use crate::AppState;
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::views::job_view;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(submit))
        .route("/v1/jobs/{id}", get(get_job))
}

/// `POST /v1/jobs`: validate, store, enqueue; 202 with the job and its `Location`.
///
/// The job is written before it is enqueued. If the process dies in between, or the queue
/// refuses, the job is still stored as queued-but-not-enqueued and the sweeper sends it: the 202
/// stands either way.
async fn submit(
    State(state): State<AppState>,
    tenant: Tenant,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = JobSpec::from_json(&body).map_err(ApiError::Invalid)?;
    let job = Job::new(JobId::generate(), &tenant.0, spec, now_ms());
    state.jobs.create(&job, None).await?;
    enqueue(&state, &job).await;
    let id = job.id.to_string();
    let view = job_view(&state, job, false).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/jobs/{id}")).expect("ids are header-safe"),
    );
    Ok((StatusCode::ACCEPTED, headers, axum::Json(view)).into_response())
}

/// Sends the job's message and records that it was sent. A failure is logged, not returned: the
/// job is stored, and the sweeper sends what was not.
async fn enqueue(state: &AppState, job: &Job) {
    match state.queue.send(&JobMessage::new(job.id.clone())).await {
        Ok(()) => {
            if let Err(e) = state.jobs.mark_enqueued(&job.id).await {
                tracing::warn!(job_id = %job.id, error = %e, "enqueued but not marked; the sweeper may send a duplicate, which agents ignore");
            }
        }
        Err(e) => {
            tracing::warn!(job_id = %job.id, error = %e, "not enqueued; the sweeper will send it")
        }
    }
}

/// `GET /v1/jobs/{id}`. Another tenant's job is a 404, exactly like a job that does not exist.
async fn get_job(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = JobId::parse(&id).ok_or(ApiError::NotFound("job"))?;
    let job = state
        .jobs
        .get(&id)
        .await?
        .filter(|j| j.tenant == tenant.0)
        .ok_or(ApiError::NotFound("job"))?;
    Ok(axum::Json(job_view(&state, job, true).await?).into_response())
}
