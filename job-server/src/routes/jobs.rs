//! `/v1/jobs`: submit (one or a batch), read, list and cancel render jobs.

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renderfleet_core::api::{BatchItem, BatchResponse, ErrorBody, JobList};
use renderfleet_core::clock::now_ms;
use renderfleet_core::ids::JobId;
use renderfleet_core::job::{Job, JobState};
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::{CancelOutcome, Created, Idempotency, ListQuery};
use renderfleet_core::spec::{AssetUse, JobSpec, SpecError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::JsonBody;
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::views::{Json, job_view};
use crate::{AppState, Shared};

/// Jobs in one batch request, at most.
pub const MAX_BATCH: usize = 10;
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

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

/// The hash two requests share exactly when their specs are the same (after parsing, so
/// whitespace and key order do not matter).
fn spec_hash(spec: &JobSpec) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(spec).expect("a spec always serializes"),
    ))
}

/// Checks that every asset the spec references is the caller's, uploaded, and of a type that
/// fits where it is used. The error names the field.
async fn check_assets(state: &AppState, tenant: &str, spec: &JobSpec) -> Result<(), ApiError> {
    for (field, id, used) in spec.asset_refs() {
        let asset = state
            .assets
            .get_asset(id)
            .await?
            .filter(|a| a.tenant == tenant)
            .ok_or_else(|| {
                ApiError::invalid(
                    "unknown_asset",
                    &field,
                    format!("asset {id} does not exist"),
                )
            })?;
        let fits = match used {
            AssetUse::Image => asset.content_type.starts_with("image/"),
            AssetUse::Video => asset.content_type == "video/mp4",
            AssetUse::Audio => asset.content_type.starts_with("audio/"),
        };
        if !fits {
            return Err(ApiError::invalid(
                "wrong_asset_type",
                &field,
                format!(
                    "asset {id} is {}, which cannot be used here",
                    asset.content_type
                ),
            ));
        }
        let uploaded = state.media.head(&asset.key).await?;
        if uploaded.is_none() {
            return Err(ApiError::invalid(
                "asset_not_uploaded",
                &field,
                format!("asset {id} has not been uploaded yet"),
            ));
        }
    }
    Ok(())
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
        (status = 400, description = "The body is not JSON, or a header is malformed", body = renderfleet_core::api::ErrorResponse),
        (status = 413, description = "The body is larger than 256 KiB", body = renderfleet_core::api::ErrorResponse),
        (status = 415, description = "The body is not application/json", body = renderfleet_core::api::ErrorResponse),
        (status = 422, description = "The spec breaks a rule; `field` names where", body = renderfleet_core::api::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = renderfleet_core::api::ErrorResponse),
        (status = 500, description = "Internal error (answered generically, with the request id)", body = renderfleet_core::api::ErrorResponse),
        (status = 503, description = "A dependency is briefly unavailable; retry", body = renderfleet_core::api::ErrorResponse),
    ))]
pub(crate) async fn submit(
    State(state): State<Shared>,
    tenant: Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = JobSpec::from_json(&body).map_err(ApiError::Invalid)?;
    check_assets(&state, &tenant.0, &spec).await?;
    let now = now_ms();
    let job = Job::new(JobId::generate(), &tenant.0, spec, now);
    let idem = key.map(|key| Idempotency {
        tenant: tenant.0.clone(),
        key,
        body_hash: spec_hash(&job.spec),
        expires_at: now + IDEMPOTENCY_TTL_MS,
    });
    match state.jobs.create(&job, idem.as_ref()).await? {
        Created::New => {
            renderfleet_core::failpoint("after_job_write");
            enqueue(&state, &job).await;
            let view = job_view(&state, job, false).await?;
            Ok((StatusCode::ACCEPTED, location(&view.id), Json(view)).into_response())
        }
        Created::Existing { job_id, body_hash } => {
            let idem = idem.expect("only an idempotent create finds an existing record");
            if body_hash != idem.body_hash {
                return Err(ApiError::invalid(
                    "idempotency_key_reused",
                    "Idempotency-Key",
                    "this key was used with a different request body",
                ));
            }
            let existing = match state.jobs.get(&job_id).await? {
                Some(existing) => existing,
                // The request that wrote the key stopped before storing its job (or is storing
                // it now): store this identical one under the recorded id. One of the two puts
                // wins; whoever stores the job enqueues it.
                None => {
                    let resumed = Job {
                        id: job_id.clone(),
                        ..job
                    };
                    match state.jobs.create(&resumed, None).await {
                        Ok(_) => {
                            tracing::warn!(job_id = %job_id, "stored a job whose idempotency key was recorded without it");
                            enqueue(&state, &resumed).await;
                            resumed
                        }
                        Err(renderfleet_core::Error::Conflict(_)) => {
                            state.jobs.get(&job_id).await?.ok_or_else(|| {
                                ApiError::Unavailable(anyhow::anyhow!(
                                    "idempotency record points at a job not yet readable"
                                ))
                            })?
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let view = job_view(&state, existing, false).await?;
            Ok((StatusCode::ACCEPTED, location(job_id.as_str()), Json(view)).into_response())
        }
    }
}

/// Sends the job's message and records that it was sent. A failure is logged, not returned: the
/// job is stored, and the sweeper sends what was not.
async fn enqueue(state: &AppState, job: &Job) {
    match state.queue.send(&JobMessage::new(job.id.clone())).await {
        Ok(()) => mark_enqueued(state, &job.id).await,
        Err(e) => {
            tracing::warn!(job_id = %job.id, error = %e, "not enqueued; the sweeper will send it")
        }
    }
}

async fn mark_enqueued(state: &AppState, id: &JobId) {
    if let Err(e) = state.jobs.mark_enqueued(id, now_ms()).await {
        tracing::warn!(job_id = %id, error = %e, "enqueued but not marked; the sweeper may send a duplicate, which agents ignore");
    }
}

/// `POST /v1/jobs/batch`: up to ten specs, validated and stored one by one and enqueued with a
/// single SQS batch call. One result per spec, in order: 202 with the job or 422 with the error.
#[utoipa::path(post, path = "/v1/jobs/batch", tag = "jobs", security(("bearer" = [])),
    request_body = renderfleet_core::api::BatchRequest,
    responses(
        (status = 200, description = "One result per spec, in order: 202 with the job or 422 with the error", body = renderfleet_core::api::BatchResponse),
        (status = 400, description = "The body is not JSON, or a header is malformed", body = renderfleet_core::api::ErrorResponse),
        (status = 413, description = "The body is larger than 256 KiB", body = renderfleet_core::api::ErrorResponse),
        (status = 415, description = "The body is not application/json", body = renderfleet_core::api::ErrorResponse),
        (status = 422, description = "The spec breaks a rule; `field` names where", body = renderfleet_core::api::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = renderfleet_core::api::ErrorResponse),
        (status = 500, description = "Internal error (answered generically, with the request id)", body = renderfleet_core::api::ErrorResponse),
        (status = 503, description = "A dependency is briefly unavailable; retry", body = renderfleet_core::api::ErrorResponse),
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
    let raw: Raw = serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_json"
        } else {
            "invalid_field"
        };
        let text = e.to_string();
        let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
        ApiError::Invalid(SpecError {
            code,
            field: if code == "malformed_json" {
                String::new()
            } else {
                "jobs".into()
            },
            message,
        })
    })?;
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
    let now = now_ms();
    let mut results: Vec<BatchItem> = Vec::with_capacity(raw.jobs.len());
    let mut created: Vec<(usize, Job)> = Vec::new();
    for (index, item) in raw.jobs.into_iter().enumerate() {
        let bytes = serde_json::to_vec(&item).expect("a JSON value serializes");
        let checked = async {
            let spec = JobSpec::from_json(&bytes).map_err(ApiError::Invalid)?;
            check_assets(&state, &tenant.0, &spec).await?;
            let job = Job::new(JobId::generate(), &tenant.0, spec, now);
            state.jobs.create(&job, None).await?;
            Ok::<Job, ApiError>(job)
        }
        .await;
        match checked {
            Ok(job) => {
                created.push((index, job));
                results.push(BatchItem {
                    index,
                    status: 202,
                    job: None,
                    error: None,
                });
            }
            Err(ApiError::Invalid(mut e)) => {
                e.field = if e.field.is_empty() {
                    format!("jobs[{index}]")
                } else {
                    format!("jobs[{index}].{}", e.field)
                };
                let status = StatusCode::UNPROCESSABLE_ENTITY.as_u16();
                let error = ErrorBody {
                    code: e.code.into(),
                    message: e.message,
                    field: Some(e.field),
                    request_id: None,
                };
                results.push(BatchItem {
                    index,
                    status,
                    job: None,
                    error: Some(error),
                });
            }
            // A store failure is not the client's fault: fail the whole request (jobs already
            // stored are swept and rendered, and a retry creates new ones only for the rest).
            Err(e) => return Err(e),
        }
    }
    let msgs: Vec<JobMessage> = created
        .iter()
        .map(|(_, j)| JobMessage::new(j.id.clone()))
        .collect();
    match state.queue.send_batch(&msgs).await {
        Ok(sent) => {
            for ((_, job), res) in created.iter().zip(sent) {
                match res {
                    Ok(()) => mark_enqueued(&state, &job.id).await,
                    Err(e) => {
                        tracing::warn!(job_id = %job.id, error = %e, "not enqueued; the sweeper will send it")
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = msgs.len(), "batch not enqueued; the sweeper will send it")
        }
    }
    for (index, job) in created {
        results[index].job = Some(job_view(&state, job, false).await?);
    }
    Ok((StatusCode::OK, Json(BatchResponse { results })).into_response())
}

/// `GET /v1/jobs/{id}`. Another tenant's job is a 404, exactly like a job that does not exist.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job; a succeeded job carries a presigned link to its video", body = renderfleet_core::api::JobView),
        (status = 404, description = "No such job for this tenant", body = renderfleet_core::api::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = renderfleet_core::api::ErrorResponse),
        (status = 500, description = "Internal error (answered generically, with the request id)", body = renderfleet_core::api::ErrorResponse),
        (status = 503, description = "A dependency is briefly unavailable; retry", body = renderfleet_core::api::ErrorResponse),
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
        (status = 401, description = "Missing or unknown API key", body = renderfleet_core::api::ErrorResponse),
        (status = 500, description = "Internal error (answered generically, with the request id)", body = renderfleet_core::api::ErrorResponse),
        (status = 503, description = "A dependency is briefly unavailable; retry", body = renderfleet_core::api::ErrorResponse),
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
        (status = 401, description = "Missing or unknown API key", body = renderfleet_core::api::ErrorResponse),
        (status = 500, description = "Internal error (answered generically, with the request id)", body = renderfleet_core::api::ErrorResponse),
        (status = 503, description = "A dependency is briefly unavailable; retry", body = renderfleet_core::api::ErrorResponse),
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
