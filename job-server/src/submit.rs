//! Submitting jobs, without HTTP: validate the spec, check its assets, store the job, enqueue
//! it. The routes turn requests into calls here and the results into responses.
//!
//! A job is written before it is enqueued. If the process dies in between, or the queue refuses,
//! the job stays stored as queued-but-not-enqueued and the sweeper sends it: an accepted job is
//! never lost. With an idempotency key, a repeat with the same spec finds the same job and
//! enqueues nothing; with another spec it is refused.

use renderfleet_core::clock::now_ms;
use renderfleet_core::ids::JobId;
use renderfleet_core::job::Job;
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::{Created, Idempotency};
use renderfleet_core::spec::{AssetUse, JobSpec, SpecError};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Jobs in one batch request, at most.
pub const MAX_BATCH: usize = 10;
/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Accepts one job for `tenant`: the new job, or the job an earlier request with the same
/// idempotency `key` and spec created.
pub async fn submit(
    state: &AppState,
    tenant: &str,
    spec: JobSpec,
    key: Option<String>,
) -> Result<Job, ApiError> {
    check_assets(state, tenant, &spec).await?;
    let now = now_ms();
    let job = Job::new(JobId::generate(), tenant, spec, now);
    let idem = key.map(|key| Idempotency {
        tenant: tenant.to_owned(),
        key,
        body_hash: spec_hash(&job.spec),
        expires_at: now + IDEMPOTENCY_TTL_MS,
    });
    match state.jobs.create(&job, idem.as_ref()).await? {
        Created::New => {
            renderfleet_core::failpoint("after_job_write");
            enqueue(state, &job).await;
            Ok(job)
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
            match state.jobs.get(&job_id).await? {
                Some(existing) => Ok(existing),
                None => resume(state, Job { id: job_id, ..job }).await,
            }
        }
    }
}

/// The request that wrote the idempotency key stopped before storing its job (or is storing it
/// now): stores this identical one under the recorded id. One of the two puts wins; whoever
/// stores the job enqueues it.
async fn resume(state: &AppState, job: Job) -> Result<Job, ApiError> {
    match state.jobs.create(&job, None).await {
        Ok(_) => {
            tracing::warn!(job_id = %job.id, "stored a job whose idempotency key was recorded without it");
            enqueue(state, &job).await;
            Ok(job)
        }
        Err(renderfleet_core::Error::Conflict(_)) => {
            state.jobs.get(&job.id).await?.ok_or_else(|| {
                ApiError::Unavailable(anyhow::anyhow!(
                    "idempotency record points at a job not yet readable"
                ))
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Accepts up to [`MAX_BATCH`] specs (as JSON values) for `tenant`, each validated and stored
/// on its own, all enqueued with one batch call: per spec, in order, the job or why it was
/// refused. A store failure fails the whole call (jobs already stored are swept and rendered).
pub async fn submit_batch(
    state: &AppState,
    tenant: &str,
    specs: Vec<serde_json::Value>,
) -> Result<Vec<Result<Job, SpecError>>, ApiError> {
    let now = now_ms();
    let mut out = Vec::with_capacity(specs.len());
    for item in specs {
        let bytes = serde_json::to_vec(&item).expect("a JSON value serializes");
        let checked = async {
            let spec = JobSpec::from_json(&bytes).map_err(ApiError::Invalid)?;
            check_assets(state, tenant, &spec).await?;
            let job = Job::new(JobId::generate(), tenant, spec, now);
            state.jobs.create(&job, None).await?;
            Ok::<Job, ApiError>(job)
        }
        .await;
        match checked {
            Ok(job) => out.push(Ok(job)),
            Err(ApiError::Invalid(e)) => out.push(Err(e)),
            Err(e) => return Err(e),
        }
    }
    let created: Vec<&Job> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
    enqueue_batch(state, &created).await;
    Ok(out)
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
        if state.media.head(&asset.key).await?.is_none() {
            return Err(ApiError::invalid(
                "asset_not_uploaded",
                &field,
                format!("asset {id} has not been uploaded yet"),
            ));
        }
    }
    Ok(())
}

/// Sends the job's message and records that it was sent. A failure is logged, not returned: the
/// job is stored, and the sweeper sends what was not.
async fn enqueue(state: &AppState, job: &Job) {
    let sent = state.queue.send(&JobMessage::new(job.id.clone())).await;
    settle_send(state, job, sent).await;
}

/// Sends the jobs' messages with one batch call, then records each one sent.
async fn enqueue_batch(state: &AppState, jobs: &[&Job]) {
    if jobs.is_empty() {
        return;
    }
    let msgs: Vec<JobMessage> = jobs.iter().map(|j| JobMessage::new(j.id.clone())).collect();
    match state.queue.send_batch(&msgs).await {
        Ok(sent) => {
            for (job, res) in jobs.iter().zip(sent) {
                settle_send(state, job, res).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = msgs.len(), "batch not enqueued; the sweeper will send it")
        }
    }
}

async fn settle_send(state: &AppState, job: &Job, sent: renderfleet_core::Result<()>) {
    match sent {
        Ok(()) => {
            if let Err(e) = state.jobs.mark_enqueued(&job.id, now_ms()).await {
                tracing::warn!(job_id = %job.id, error = %e, "enqueued but not marked; the sweeper may send a duplicate, which agents ignore");
            }
        }
        Err(e) => {
            tracing::warn!(job_id = %job.id, error = %e, "not enqueued; the sweeper will send it")
        }
    }
}
