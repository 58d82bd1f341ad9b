//! A job as the jobs table holds it, and the states it moves through.
//!
//! `queued -> running -> succeeded | failed | cancelled`, and `running -> queued` when a worker is
//! lost or drained and the attempt is retried. Every move is a row of [`lifecycle::RULES`] and a
//! conditional write in the store, so no state goes backwards and no job finishes twice.

pub mod lifecycle;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::EpochMillis;
use crate::ids::JobId;
use crate::spec::JobSpec;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed: a stable code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobError {
    /// `invalid_input`, `engine_failed`, `retries_exhausted`, `timeout`, ...
    pub code: String,
    pub message: String,
}

/// The rendered file of a succeeded job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// S3 key in the media bucket.
    pub key: String,
    pub size_bytes: u64,
    /// Seconds, as measured from the file.
    pub duration: f64,
}

/// A job record.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub tenant: String,
    pub state: JobState,
    /// Never changes after submit, so copies of the record share it.
    pub spec: Arc<JobSpec>,
    pub created_at: EpochMillis,
    pub updated_at: EpochMillis,
    /// When the first attempt started.
    pub started_at: Option<EpochMillis>,
    pub finished_at: Option<EpochMillis>,
    /// Attempts started so far.
    pub attempts: u32,
    /// The worker running the current attempt.
    pub instance_id: Option<String>,
    /// The queue message the current attempt holds.
    pub message_id: Option<String>,
    /// 0..=1.
    pub progress: f64,
    pub error: Option<JobError>,
    pub output: Option<JobOutput>,
    /// Set by a cancel of a running job; the agent stops the engine when it sees it.
    pub cancel_requested: bool,
    /// Whether the queue message has been sent. A job left queued and not enqueued is re-sent by
    /// the sweeper.
    pub enqueued: bool,
    /// When its message was last sent (by the job server or the sweeper).
    pub enqueued_at: Option<EpochMillis>,
    /// How many times the sweeper sent its message again after it reached the dead-letter queue.
    pub redrives: u32,
    /// Until when the current attempt's worker holds the job; past it, the job may be claimed
    /// again.
    pub lease_until: Option<EpochMillis>,
    /// Expected render work (see [`crate::estimate`]).
    pub est_work: f64,
    pub priority: i64,
}

impl Job {
    /// A new queued job, not yet enqueued.
    pub fn new(id: JobId, tenant: &str, spec: JobSpec, now: EpochMillis) -> Self {
        let est_work = crate::estimate::work_units(&spec);
        let priority = spec.priority;
        Self {
            id,
            tenant: tenant.to_owned(),
            state: JobState::Queued,
            spec: Arc::new(spec),
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            attempts: 0,
            instance_id: None,
            message_id: None,
            progress: 0.0,
            error: None,
            output: None,
            cancel_requested: false,
            enqueued: false,
            enqueued_at: None,
            redrives: 0,
            lease_until: None,
            est_work,
            priority,
        }
    }
}

/// A queued or running job as the scaler and the sweeper see it (the active index's projection).
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveJob {
    pub id: JobId,
    pub state: JobState,
    pub created_at: EpochMillis,
    pub started_at: Option<EpochMillis>,
    pub est_work: f64,
    pub instance_id: Option<String>,
    pub enqueued: bool,
    pub enqueued_at: Option<EpochMillis>,
    pub lease_until: Option<EpochMillis>,
    pub attempts: u32,
    pub priority: i64,
}

impl From<&Job> for ActiveJob {
    fn from(j: &Job) -> Self {
        Self {
            id: j.id.clone(),
            state: j.state,
            created_at: j.created_at,
            started_at: j.started_at,
            est_work: j.est_work,
            instance_id: j.instance_id.clone(),
            enqueued: j.enqueued,
            enqueued_at: j.enqueued_at,
            lease_until: j.lease_until,
            attempts: j.attempts,
            priority: j.priority,
        }
    }
}

/// How an attempt ended, as the agent reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(JobOutput),
    Failed(JobError),
    Cancelled,
}

impl Outcome {
    pub fn state(&self) -> JobState {
        match self {
            Outcome::Succeeded(_) => JobState::Succeeded,
            Outcome::Failed(_) => JobState::Failed,
            Outcome::Cancelled => JobState::Cancelled,
        }
    }
}
