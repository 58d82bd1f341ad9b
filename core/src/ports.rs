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
use crate::job::lifecycle::Change;
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
    /// Records that the job's message was sent at `now`. Idempotent; a job that has moved on is
    /// left alone.
    async fn mark_enqueued(&self, id: &JobId, now: EpochMillis) -> Result<()>;
    /// Records that the sweeper sent a queued job's message again from the dead-letter queue:
    /// `redrives + 1`, `enqueued_at = now`. `false` when the job is no longer queued.
    async fn redrive(&self, id: &JobId, now: EpochMillis) -> Result<bool>;
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
    /// Records progress (0..=1) and, when `lease_until` is given, renews the lease. The lease is
    /// projected into the active index and progress is not, so callers renew it only as often
    /// as it needs (every third of its term), not with every progress write.
    async fn heartbeat(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        progress: f64,
        lease_until: Option<EpochMillis>,
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

/// The one primitive a jobs table implements for the job lifecycle: make one move of
/// [`crate::job::lifecycle`] atomically, as its table allows. [`JobLedger`] is written once on
/// top of it, for every store, and so is [`cancel`].
#[async_trait]
pub trait Transitions: Send + Sync {
    /// Makes `change` on job `id` when the lifecycle table allows it: the job as the move left
    /// it, or `None` (and nothing written) when the table refuses it or there is no such job.
    async fn transition(&self, id: &JobId, change: &Change<'_>) -> Result<Option<Job>>;
    /// Makes `change` like [`Transitions::transition`], for a caller that needs only whether it
    /// was made (a store may then skip reading the job back).
    async fn make(&self, id: &JobId, change: &Change<'_>) -> Result<bool> {
        Ok(self.transition(id, change).await?.is_some())
    }
    /// The job as stored now.
    async fn current(&self, id: &JobId) -> Result<Option<Job>>;
}

#[async_trait]
impl<T: Transitions + ?Sized> JobLedger for T {
    async fn claim(&self, id: &JobId, lease: &Lease) -> Result<Claim> {
        if let Some(job) = self.transition(id, &Change::Claim(lease)).await? {
            return Ok(Claim::Claimed(job));
        }
        Ok(match self.current(id).await? {
            Some(job) => Claim::NotClaimable(job),
            None => Claim::Missing,
        })
    }

    async fn heartbeat(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        progress: f64,
        lease_until: Option<EpochMillis>,
    ) -> Result<Directive> {
        let beat = Change::Heartbeat {
            attempt,
            instance,
            progress,
            lease_until,
        };
        Ok(match self.transition(id, &beat).await? {
            Some(job) if job.cancel_requested => Directive::Cancel,
            Some(_) => Directive::Continue,
            None => Directive::Lost,
        })
    }

    async fn finish(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        outcome: &Outcome,
        now: EpochMillis,
    ) -> Result<bool> {
        let end = Change::Finish {
            attempt,
            instance,
            outcome,
            now,
        };
        self.make(id, &end).await
    }

    async fn release(
        &self,
        id: &JobId,
        attempt: u32,
        instance: &str,
        now: EpochMillis,
    ) -> Result<bool> {
        let back = Change::Release {
            attempt,
            instance,
            now,
        };
        self.make(id, &back).await
    }
}

/// [`JobStore::cancel`] for any store: cancel a queued job, else flag a running one, else say
/// it finished. The job may move between the moves; three rounds settle any interleaving short
/// of a job that is requeued and claimed again within milliseconds, twice.
pub async fn cancel<S: Transitions + ?Sized>(
    store: &S,
    id: &JobId,
    now: EpochMillis,
) -> Result<CancelOutcome> {
    for _ in 0..3 {
        if let Some(job) = store.transition(id, &Change::Cancel { now }).await? {
            return Ok(CancelOutcome::Cancelled(job));
        }
        if let Some(job) = store.transition(id, &Change::RequestCancel { now }).await? {
            return Ok(CancelOutcome::Requested(job));
        }
        match store.current(id).await? {
            None => return Ok(CancelOutcome::NotFound),
            Some(job) if job.state.is_terminal() => return Ok(CancelOutcome::AlreadyFinished(job)),
            Some(_) => continue,
        }
    }
    Err(crate::Error::Transient {
        op: "cancel",
        message: "the job kept changing state".into(),
    })
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
    /// Sends a message that becomes visible after `delay` (at most 15 minutes, SQS's limit).
    async fn send_after(&self, msg: &JobMessage, delay: Duration) -> Result<()>;
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

/// Whether the cloud is about to take this instance away (scale-in, a spot interruption), and
/// where the group means it to go.
#[async_trait]
pub trait TerminationNotice: Send + Sync {
    /// Why, if it is.
    async fn pending(&self) -> Result<Option<String>>;
    /// The group's target lifecycle state for this instance (`InService`, `Warmed:Stopped`,
    /// `Terminated`, ...); `None` when the instance is not in a group or cannot tell.
    async fn target_state(&self) -> Result<Option<String>>;
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

/// An agent's liveness heartbeat: one item per worker in the jobs table (`AGENTS`, its instance
/// id), rewritten every few seconds and expired by TTL.
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
    /// Why the agent is unhealthy, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set by the scaler, never by the agent: when the scaler chose to retire this worker (the
    /// agent's [`WorkGate`] is then closed and it takes no more work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<EpochMillis>,
    /// Read from the gate, never written by the agent's heartbeat: whether its [`WorkGate`] is
    /// engaged (it holds or is about to claim work). The scaler's busy signal: instances are
    /// launched protected from scale-in, so protection says nothing about work.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub engaged: bool,
}

/// The agent's side of its liveness item.
#[async_trait]
pub trait HealthReporter: Send + Sync {
    /// Writes the agent's heartbeat fields, leaving the gate's fields (`engaged`, `retiring`)
    /// as they are.
    async fn report(&self, instance_id: &str, hb: &Heartbeat) -> Result<()>;
    /// Removes the agent's liveness item on a clean exit. Idempotent.
    async fn withdraw(&self, instance_id: &str) -> Result<()>;
}

/// The scaler's view of the fleet's liveness.
#[async_trait]
pub trait AgentDirectory: Send + Sync {
    /// Every agent's last heartbeat, by instance id (one query). Unparseable ones are skipped
    /// and logged.
    async fn heartbeats(&self) -> Result<Vec<(String, Heartbeat)>>;
}

/// The agent's side of the handshake that closes the race between a claim and a retirement
/// (TerminateInstanceInAutoScalingGroup ignores scale-in protection): before an idle agent takes
/// work it engages, and the scaler retires only a worker it could mark while disengaged. Both are
/// conditional writes on the same item, so exactly one of them wins.
#[async_trait]
pub trait WorkGate: Send + Sync {
    /// Marks the agent busy; `false` (and nothing written) when the scaler is retiring it.
    async fn engage(&self, instance_id: &str) -> Result<bool>;
    /// Marks the agent idle again. Idempotent.
    async fn disengage(&self, instance_id: &str) -> Result<()>;
}

/// The scaler's side of the [`WorkGate`] handshake.
#[async_trait]
pub trait Retirement: Send + Sync {
    /// Marks the worker as being retired at `now`; `false` (nothing written) when its agent is
    /// engaged, or has no liveness item. Idempotent for a worker already marked.
    async fn mark_retiring(&self, instance_id: &str, now: EpochMillis) -> Result<bool>;
}

/// An agent's health state as operators see it in SSM Parameter Store
/// (`/renderfleet/{env}/agents/{instance}`). Written only when it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub state: StatusState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when the agent is in this state.
    pub since: EpochMillis,
    pub version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Ready,
    Unhealthy,
    Draining,
}

/// The agent's health state board (SSM Parameter Store on AWS).
#[async_trait]
pub trait StatusBoard: Send + Sync {
    /// Writes (overwrites) the agent's state.
    async fn publish(&self, instance_id: &str, status: &AgentStatus) -> Result<()>;
}

/// The scaler's housekeeping of the status board: parameters of instances that left the group.
#[async_trait]
pub trait StatusCleanup: Send + Sync {
    /// Deletes the status of each instance (at most 10 a call to the service). Idempotent.
    async fn remove(&self, instance_ids: &[String]) -> Result<()>;
    /// One page (at most 10) of instances that have a status, and the cursor of the next page.
    async fn page(&self, cursor: Option<String>) -> Result<(Vec<String>, Option<String>)>;
}

/// Mutual exclusion and deduplication of scaler ticks: one lease item in the jobs table.
#[async_trait]
pub trait TickLease: Send + Sync {
    /// Takes the lease for `holder` until `until` if nobody holds it (or the holder's lease
    /// lapsed) and, for a scheduled tick, if no tick of `slot` or later has run.
    async fn acquire(
        &self,
        holder: &str,
        slot: Option<u64>,
        now: EpochMillis,
        until: EpochMillis,
    ) -> Result<LeaseOutcome>;
    /// Gives the lease back. Idempotent; a lease another holder took over is left alone.
    async fn release(&self, holder: &str) -> Result<()>;
}

/// What [`TickLease::acquire`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired,
    /// Another tick holds the lease until then.
    Busy {
        until: EpochMillis,
    },
    /// A tick of this slot (or a later one) already ran.
    SlotDone,
}

/// The scaler's own schedule: the next tick as a delayed message (SQS on AWS).
#[async_trait]
pub trait TickQueue: Send + Sync {
    /// Asks for a tick of `slot` (or an extra tick, `None`) after `delay` (at most 15 minutes).
    async fn schedule(&self, slot: Option<u64>, delay: Duration) -> Result<()>;
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
