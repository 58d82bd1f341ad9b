//! The REST API's wire types, shared by the job server (which writes them) and renderctl (which
//! reads them), so the two cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::{JobError, JobState};
use crate::spec::JobSpec;

/// A job as `GET /v1/jobs/{id}` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    /// 0..=1.
    pub progress: f64,
    /// Attempts started so far.
    pub attempts: u32,
    /// RFC 3339.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the job failed, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The rendered video, when the job succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputView>,
    /// Whether a cancel was requested while the job was running.
    #[serde(default)]
    pub cancel_requested: bool,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
    /// The spec as submitted (after defaults). Present on `GET /v1/jobs/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<JobSpec>,
}

/// A succeeded job's video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputView {
    /// A presigned GET link.
    pub url: String,
    /// When `url` stops working, RFC 3339.
    pub expires_at: String,
    pub size_bytes: u64,
    /// Seconds.
    pub duration: f64,
}

/// Every error response: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthorized`, `not_found`, `invalid_field`, ...
    pub code: String,
    /// What to fix, for people.
    pub message: String,
    /// The JSON path (or header, or query parameter) at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's id, to quote when asking for help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
