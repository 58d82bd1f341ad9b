//! `/v1/jobs`: submit (one or a batch), read, list and cancel render jobs.

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renderfleet_core::api::{BatchItem, BatchResponse, ErrorBody, JobList, json_error};
use renderfleet_core::clock::now_ms;
use renderfleet_core::ids::JobId;
use renderfleet_core::job::{Job, JobState};
use renderfleet_core::ports::{CancelOutcome, ListQuery};
use renderfleet_core::spec::{JobSpec, SpecError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JsonBody;
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::submit::{self, MAX_BATCH};
use crate::views::{Json, job_view};
use crate::{AppState, Shared};

/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/batch", post(batch))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel))
}

fn location(id: &str) -> [(header::HeaderName, HeaderValue); 1] {
    let path = ["/v1/jobs/", id].concat();
    [(
        header::LOCATION,
        HeaderValue::try_from(path).expect("ids are header-safe"),
    )]
}

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The request's `Idempotency-Key`, checked (an extractor, so the handler does not copy every
/// header to read one).
pub(crate) struct IdempotencyKey(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        idempotency_key(&parts.headers).map(IdempotencyKey)
    }
}

/// Reads and checks the `Idempotency-Key` header.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = |message: &str| ApiError::BadRequest {
        code: "invalid_idempotency_key",
        field: Some("Idempotency-Key".into()),
        message: message.into(),
    };
    let s = v.to_str().map_err(|_| bad("must be printable ASCII"))?;
    if s.is_empty() || s.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad("must be printable ASCII without spaces"));
    }
    Ok(Some(s.to_owned()))
}

/// `POST /v1/jobs`: validate, store, enqueue; 202 with the job and its `Location`.
///
/// The job is written before it is enqueued. If the process dies in between, or the queue
/// refuses, the job is still stored as queued-but-not-enqueued and the sweeper sends it: the 202
/// stands either way. With an `Idempotency-Key`, a repeat with the same body returns the same job
/// and enqueues nothing; with another body it is a 422.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    request_body = renderfleet_core::spec::JobSpec,
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 printable ASCII characters; a retry with the same key and body returns the same job")),
    responses(
        (status = 202, description = "Accepted: the job will end in exactly one terminal state", body = renderfleet_core::api::JobView,
            headers(("Location" = String, description = "The job's URL"))),
        super::BodyFailures,
        super::Failures,
    ))]
pub(crate) async fn submit(
    State(state): State<Shared>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = JobSpec::from_json(&body).map_err(ApiError::Invalid)?;
    let job = submit::submit(&state, &tenant.0, spec, key).await?;
    let view = job_view(&state, job, false).await?;
    Ok((StatusCode::ACCEPTED, location(&view.id), Json(view)).into_response())
}

/// `POST /v1/jobs/batch`: up to ten specs, validated and stored one by one and enqueued with a
/// single SQS batch call. One result per spec, in order: 202 with the job or 422 with the error.
#[utoipa::path(post, path = "/v1/jobs/batch", tag = "jobs", security(("bearer" = [])),
    request_body = renderfleet_core::api::BatchRequest,
    responses(
        (status = 200, description = "One result per spec, in order: 202 with the job or 422 with the error", body = renderfleet_core::api::BatchResponse),
        super::BodyFailures,
        super::Failures,
    ))]
pub(crate) async fn batch(
    State(state): State<Shared>,
    tenant: Tenant,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        jobs: Vec<Value>,
    }
    let raw: Raw =
        serde_json::from_slice(&body).map_err(|e| ApiError::Invalid(json_error(&e, "jobs")))?;
    if raw.jobs.is_empty() || raw.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "too_many",
            "jobs",
            format!(
                "a batch holds 1 to {MAX_BATCH} jobs, got {}",
                raw.jobs.len()
            ),
        ));
    }
    let mut results = Vec::with_capacity(raw.jobs.len());
    for (index, r) in submit::submit_batch(&state, &tenant.0, raw.jobs)
        .await?
        .into_iter()
        .enumerate()
    {
        results.push(match r {
            Ok(job) => BatchItem {
                index,
                status: StatusCode::ACCEPTED.as_u16(),
                job: Some(job_view(&state, job, false).await?),
                error: None,
            },
            Err(e) => batch_error(index, e),
        });
    }
    Ok((StatusCode::OK, Json(BatchResponse { results })).into_response())
}

/// A refused spec of a batch: 422, its field path under `jobs[index]`.
fn batch_error(index: usize, e: SpecError) -> BatchItem {
    let field = if e.field.is_empty() {
        format!("jobs[{index}]")
    } else {
        format!("jobs[{index}].{}", e.field)
    };
    BatchItem {
        index,
        status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
        job: None,
        error: Some(ErrorBody {
            code: e.code.into(),
            message: e.message,
            field: Some(field),
            request_id: None,
        }),
    }
}

/// `GET /v1/jobs/{id}`. Another tenant's job is a 404, exactly like a job that does not exist.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job; a succeeded job carries a presigned link to its video", body = renderfleet_core::api::JobView),
        (status = 404, description = "No such job for this tenant", body = renderfleet_core::api::ErrorResponse),
        super::Failures,
    ))]
pub(crate) async fn get_job(
    State(state): State<Shared>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = own_job(&state, &tenant, &id).await?;
    Ok(Json(job_view(&state, job, true).await?).into_response())
}

async fn own_job(state: &AppState, tenant: &Tenant, id: &str) -> Result<Job, ApiError> {
    let id = JobId::parse(id).ok_or(ApiError::NotFound("job"))?;
    state
        .jobs
        .get(&id)
        .await?
        .filter(|j| j.tenant == tenant.0)
        .ok_or(ApiError::NotFound("job"))
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListParams {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// What an API cursor carries: the store's position, bound to the tenant and filter it was made
/// for, so it cannot be replayed by another tenant or with another filter.
#[derive(Serialize, Deserialize)]
struct Cursor {
    t: String,
    s: Option<String>,
    k: String,
}

fn bad_query(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        field: Some(field.into()),
        message: message.into(),
    }
}

/// `GET /v1/jobs?state=&limit=&cursor=`: the caller's jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, description = "queued, running, succeeded, failed or cancelled"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The caller's jobs, newest first", body = renderfleet_core::api::JobList),
        (status = 400, description = "A query parameter is invalid; `field` names it", body = renderfleet_core::api::ErrorResponse),
        super::Failures,
    ))]
pub(crate) async fn list(
    State(state): State<Shared>,
    tenant: Tenant,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    let filter = match p.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            bad_query(
                "state",
                format!("unknown state {s:?}: use queued, running, succeeded, failed or cancelled"),
            )
        })?),
    };
    let limit = match p.limit.as_deref() {
        None | Some("") => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(bad_query(
                    "limit",
                    format!("must be a whole number from 1 to 100, got {l:?}"),
                ));
            }
        },
    };
    let store_cursor = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let invalid = || {
                bad_query(
                    "cursor",
                    "not a cursor from a previous page of this listing",
                )
            };
            let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| invalid())?;
            let cur: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
            if cur.t != tenant.0
                || cur.s.as_deref() != filter.map(JobState::as_str)
                || !renderfleet_core::aws::is_valid_cursor(&cur.k)
            {
                return Err(invalid());
            }
            Some(cur.k)
        }
    };
    let page = state
        .jobs
        .list(
            &tenant.0,
            &ListQuery {
                state: filter,
                limit,
                cursor: store_cursor,
            },
        )
        .await?;
    let next_cursor = page.next_cursor.map(|k| {
        let cur = Cursor {
            t: tenant.0.clone(),
            s: filter.map(|s| s.as_str().to_owned()),
            k,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cur).expect("serializes"))
    });
    let mut jobs = Vec::with_capacity(page.jobs.len());
    for job in page.jobs {
        jobs.push(job_view(&state, job, false).await?);
    }
    Ok(Json(JobList { jobs, next_cursor }).into_response())
}

/// `DELETE /v1/jobs/{id}`: a queued job is cancelled at once (200) and never renders; a running
/// one is flagged (202) and its agent stops the engine within seconds; a finished one is a 409.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job was queued and is now cancelled; it will never render", body = renderfleet_core::api::JobView),
        (status = 202, description = "The job is running; its agent stops the engine and it ends cancelled", body = renderfleet_core::api::JobView),
        (status = 404, description = "No such job for this tenant", body = renderfleet_core::api::ErrorResponse),
        (status = 409, description = "The job already finished", body = renderfleet_core::api::ErrorResponse),
        super::Failures,
    ))]
pub(crate) async fn cancel(
    State(state): State<Shared>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = own_job(&state, &tenant, &id).await?;
    match state.jobs.cancel(&job.id, now_ms()).await? {
        CancelOutcome::Cancelled(job) => {
            Ok((StatusCode::OK, Json(job_view(&state, job, false).await?)).into_response())
        }
        CancelOutcome::Requested(job) => Ok((
            StatusCode::ACCEPTED,
            Json(job_view(&state, job, false).await?),
        )
            .into_response()),
        CancelOutcome::AlreadyFinished(job) => Err(ApiError::Conflict {
            code: "already_finished",
            message: format!("the job already ended {}", job.state),
        }),
        CancelOutcome::NotFound => Err(ApiError::NotFound("job")),
    }
}
