//! The narrow traits the binaries depend on, in our words. Each speaks domain types only; the AWS
//! implementations live in [`crate::aws`] and in-memory ones in `fakes`.
//!
//! Every method that writes documents whether it is idempotent; "not found" is a value (`None`,
//! `false`, an outcome variant), never an error, unless the method says otherwise.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::clock::EpochMillis;
use crate::ids::{AssetId, JobId};
use crate::job::{ActiveJob, Job, JobError, JobState, Outcome};
use crate::message::JobMessage;

// ---------------------------------------------------------------------------------------------
// Jobs

/// An idempotency record: a client's key for one job within its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub tenant: String,
    /// The client's `Idempotency-Key`, as sent.
    pub key: String,
    /// SHA-256 of the canonical request, so the same key with another body can be refused.
    pub body_hash: String,
    pub expires_at: EpochMillis,
}

/// What [`JobStore::create`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The job was written.
    New,
    /// The idempotency key was used before; nothing was written. The job it names may not be
    /// stored: a request can stop between writing the key and the job, and then the caller, if
    /// its body is the same, stores its job under `job_id` (with no key) and enqueues it.
    Existing { job_id: JobId, body_hash: String },
}

/// A page request for a tenant's jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub state: Option<JobState>,
    pub limit: usize,
    /// A cursor from a previous page, as the store produced it.
    pub cursor: Option<String>,
}

/// One page of jobs, newest first.
#[derive(Clone, Debug, Default)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_cursor: Option<String>,
}

/// What a cancel did.
#[derive(Clone, Debug)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled; it will never render.
    Cancelled(Job),
    /// The job is running; its agent will stop the engine and end it `cancelled`.
    Requested(Job),
    /// The job had already finished; nothing changed.
    AlreadyFinished(Job),
    NotFound,
}

/// The job server's side of the jobs table.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a new job, and its idempotency record first if given. If the idempotency key
    /// exists, writes nothing and returns [`Created::Existing`].
    async fn create(&self, job: &Job, idem: Option<&Idempotency>) -> Result<Created>;
    async fn get(&self, id: &JobId) -> Result<Option<Job>>;
    /// The tenant's jobs, newest first. A cursor from another tenant or query yields an empty
    /// page, never another tenant's jobs.
    async fn list(&self, tenant: &str, query: &ListQuery) -> Result<JobPage>;
    /// Records that the job's message was sent. Idempotent; a job that has moved on is left alone.
    async fn mark_enqueued(&self, id: &JobId) -> Result<()>;
    /// Cancels a queued job, or flags a running one. Idempotent.
    async fn cancel(&self, id: &JobId, now: EpochMillis) -> Result<CancelOutcome>;
}

/// Who claims a job, until when, under which message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub instance: String,
    /// The SQS message id of the delivery the claim comes from.
    pub message_id: String,
    pub now: EpochMillis,
    pub until: EpochMillis,
}

/// What [`JobLedger::claim`] found.
#[derive(Clone, Debug)]
pub enum Claim {
    /// The job is now running on the caller; `job.attempts` is the caller's attempt number.
    Claimed(Job),
    /// The job is finished, cancelled, or running under a live lease elsewhere.
    NotClaimable(Job),
    Missing,
}

/// What a running attempt should do next, from [`JobLedger::heartbeat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    Continue,
    /// A client cancelled the job: stop the engine and finish it `cancelled`.
    Cancel,
    /// The attempt is no longer current (its lease lapsed and another worker took the job, or
    /// the job ended): stop without writing anything.
    Lost,
}

/// The render agent's side of a job's life. Every method is a conditional write on the job's
/// state, attempt and instance, so a stale worker can never overwrite a newer attempt.
#[async_trait]
pub trait JobLedger: Send + Sync {
    /// `queued -> running`, or takes over a `running` job whose lease has lapsed, for `instance`;
    /// increments `attempts` and records the queue message the attempt holds.
    async fn claim(&self, id: &JobId, lease: &Lease) -> Result<Claim>;
    /// Renews the lease and records progress (0..=1).
    async fn heartbeat(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        progress: f64,
        lease_until: EpochMillis,
    ) -> Result<Directive>;
    /// `running -> succeeded | failed | cancelled`. `false` when the attempt was no longer
    /// current, and then nothing was written.
    async fn finish(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        outcome: &Outcome,
        now: EpochMillis,
    ) -> Result<bool>;
    /// `running -> queued`, so another worker renders it (a drain, a lost worker, a retryable
    /// failure). `false` when the attempt was no longer current.
    async fn release(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        now: EpochMillis,
    ) -> Result<bool>;
}

/// Queued and running work, read by the scaler and the sweeper.
#[async_trait]
pub trait ActiveWork: Send + Sync {
    /// Every queued or running job, oldest first.
    async fn active_jobs(&self) -> Result<Vec<ActiveJob>>;
    /// Ends a job that is not yet terminal as `failed` with `error` (for example when its message
    /// reached the dead-letter queue). `false` when it was already terminal.
    async fn fail_unfinished(&self, id: &JobId, error: &JobError, now: EpochMillis)
    -> Result<bool>;
}

// ---------------------------------------------------------------------------------------------
// Tenants, keys, assets

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public part of the key, used to find and revoke it.
    pub key_id: String,
    pub tenant: String,
    pub secret_hash: String,
    pub created_at: EpochMillis,
    pub revoked_at: Option<EpochMillis>,
}

/// API keys per tenant.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    async fn find_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Stores a new key; a `key_id` that exists is a [`crate::Error::Conflict`].
    async fn create_key(&self, record: &ApiKeyRecord) -> Result<()>;
    /// Revokes a key. Idempotent; `false` when no such key exists.
    async fn revoke_key(&self, key_id: &str, now: EpochMillis) -> Result<bool>;
}

/// An uploaded (or to be uploaded) asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub id: AssetId,
    pub tenant: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// S3 key in the media bucket.
    pub key: String,
    pub created_at: EpochMillis,
}

#[async_trait]
pub trait AssetStore: Send + Sync {
    async fn create_asset(&self, asset: &Asset) -> Result<()>;
    async fn get_asset(&self, id: &AssetId) -> Result<Option<Asset>>;
}

// ---------------------------------------------------------------------------------------------
// Queue

/// Sends job messages.
#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, msg: &JobMessage) -> Result<()>;
    /// Sends up to 10 messages in one call; the result holds one entry per message, in order.
    async fn send_batch(&self, msgs: &[JobMessage]) -> Result<Vec<Result<()>>>;
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times the queue has handed this message out, this time included.
    pub receive_count: u32,
    pub sent_at: Option<EpochMillis>,
}

/// Takes job messages off the queue.
#[async_trait]
pub trait JobSource: Send + Sync {
    /// Long-polls for up to `max` messages, waiting up to `wait`.
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>>;
    /// Deletes a handled message. Idempotent for a receipt that is still valid.
    async fn delete(&self, receipt: &str) -> Result<()>;
    /// Sets how long the message stays invisible from now: extends it while rendering; zero
    /// hands it back to the queue at once.
    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<()>;
}

/// The queue's own counters (approximate, as SQS reports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounters {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

#[async_trait]
pub trait QueueDepth: Send + Sync {
    async fn counters(&self) -> Result<QueueCounters>;
}

// ---------------------------------------------------------------------------------------------
// Media

/// An object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size_bytes: u64,
    pub content_type: Option<String>,
}

/// Presigned links to the media bucket, for API clients.
#[async_trait]
pub trait MediaLinks: Send + Sync {
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String>;
    /// A PUT link that only accepts `content_type` and `size_bytes`.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size_bytes: u64,
        ttl: Duration,
    ) -> Result<String>;
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;
}

/// Files to and from the media bucket, for workers.
#[async_trait]
pub trait MediaFiles: Send + Sync {
    /// Uploads `path` to `key`, replacing any object there. Returns the size uploaded.
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<u64>;
    /// Downloads `key` into `path`; fails without writing more than `max_bytes`.
    /// A missing object is [`crate::Error::NotFound`].
    async fn get_file(&self, key: &str, path: &Path, max_bytes: u64) -> Result<u64>;
}

// ---------------------------------------------------------------------------------------------
// Fleet

/// Where an instance is in the Auto Scaling Group's life cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    Pending,
    InService,
    Terminating,
    /// Warm pools, standby and the like: not serving, not leaving.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetInstance {
    pub id: String,
    pub lifecycle: Lifecycle,
    pub healthy: bool,
    pub protected: bool,
}

/// The Auto Scaling Group as it is now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetState {
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    pub instances: Vec<FleetInstance>,
}

impl FleetState {
    pub fn in_service(&self) -> impl Iterator<Item = &FleetInstance> {
        self.instances
            .iter()
            .filter(|i| i.lifecycle == Lifecycle::InService)
    }
}

/// The scaler's handle on the worker group.
#[async_trait]
pub trait Fleet: Send + Sync {
    async fn describe(&self) -> Result<FleetState>;
    /// Sets the absolute desired capacity. Idempotent: a retried or doubled call is harmless.
    async fn set_desired(&self, desired: u32) -> Result<()>;
    /// Terminates one instance. With `decrement`, the group shrinks (scale-in of a chosen idle
    /// worker); without, the group launches a replacement (an unhealthy worker).
    async fn terminate(&self, instance_id: &str, decrement: bool) -> Result<()>;
}

/// An agent's handle on its own instance's scale-in protection.
#[async_trait]
pub trait ScaleInProtection: Send + Sync {
    /// Idempotent.
    async fn set_protected(&self, instance_id: &str, protected: bool) -> Result<()>;
}

/// Auto Scaling lifecycle hooks: the pause an instance takes when launching or terminating.
#[async_trait]
pub trait LifecycleActions: Send + Sync {
    /// Ends the wait of `hook` for `instance_id`: CONTINUE when `proceed`, ABANDON otherwise.
    async fn complete(&self, hook: &str, instance_id: &str, proceed: bool) -> Result<()>;
}

/// Starts the render agent on an instance that is launching (SSM Run Command on AWS).
#[async_trait]
pub trait AgentLauncher: Send + Sync {
    /// Runs the agent's unit (which checks itself before taking work); returns the command id.
    async fn start_agent(&self, instance_id: &str) -> Result<String>;
}

/// Whether the cloud is about to take this instance away (scale-in, a spot interruption).
#[async_trait]
pub trait TerminationNotice: Send + Sync {
    /// Why, if it is.
    async fn pending(&self) -> Result<Option<String>>;
}

// ---------------------------------------------------------------------------------------------
// Agent health

/// What an agent says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Idle,
    Busy,
    Draining,
    Unhealthy,
}

/// An agent's heartbeat, stored as JSON in its SSM parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub state: AgentState,
    /// Jobs running now.
    pub jobs: Vec<JobId>,
    /// Jobs it can run at once.
    pub slots: u32,
    pub engine_ok: bool,
    pub disk_free_bytes: u64,
    pub version: String,
    /// When this heartbeat was written.
    pub ts: EpochMillis,
    /// When the agent process started (its instance's boot, as near as the agent can tell).
    pub started_at: EpochMillis,
    /// Since when no job has run, while idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<EpochMillis>,
    /// Measured render seconds per work unit (see [`crate::estimate`]), once it has rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_per_unit: Option<f64>,
}

#[async_trait]
pub trait HealthReporter: Send + Sync {
    /// Writes (overwrites) the agent's heartbeat.
    async fn report(&self, instance_id: &str, hb: &Heartbeat) -> Result<()>;
    /// Removes the agent's heartbeat on a clean exit. Idempotent.
    async fn withdraw(&self, instance_id: &str) -> Result<()>;
}

#[async_trait]
pub trait AgentDirectory: Send + Sync {
    /// Every agent's last heartbeat, by instance id. Unparseable ones are skipped and logged.
    async fn heartbeats(&self) -> Result<Vec<(String, Heartbeat)>>;
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricUnit {
    Count,
    Seconds,
    Bytes,
    None,
}

/// One metric value, published with the `Environment` dimension (and `extra`, if any).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDatum {
    pub name: String,
    pub value: f64,
    pub unit: MetricUnit,
    pub extra: Option<(String, String)>,
}

impl MetricDatum {
    pub fn new(name: impl Into<String>, value: f64, unit: MetricUnit) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            extra: None,
        }
    }
}

#[async_trait]
pub trait MetricsSink: Send + Sync {
    async fn publish(&self, data: &[MetricDatum]) -> Result<()>;
}

// ---------------------------------------------------------------------------------------------
// Scaler memory

/// The scaler's durable state and decision history, stored as JSON it owns.
#[async_trait]
pub trait ScalerMemory: Send + Sync {
    async fn load_state(&self) -> Result<Option<String>>;
    async fn save_state(&self, json: &str) -> Result<()>;
    /// Appends one decision record, kept for `ttl`.
    async fn record_decision(&self, at: EpochMillis, json: &str, ttl: Duration) -> Result<()>;
    /// The newest `limit` decisions, newest first.
    async fn decisions(&self, limit: usize) -> Result<Vec<(EpochMillis, String)>>;
}
