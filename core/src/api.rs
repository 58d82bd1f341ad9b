//! The REST API's wire types, shared by the job server (which writes them) and renderctl (which
//! reads them), so the two cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::{JobError, JobState};
use crate::spec::{JobSpec, SpecError};

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

/// `GET /v1/jobs`: one page of the caller's jobs, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/jobs/batch`: up to 10 job specs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[cfg_attr(feature = "openapi", schema(max_items = 10, min_items = 1))]
    pub jobs: Vec<JobSpec>,
}

/// The answer to a batch: one result per submitted spec, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

/// One spec's result: `status` 202 with the job, or 422 with the error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    pub index: usize,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `POST /v1/assets`: declare an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssetRequest {
    /// `image/png`, `image/jpeg`, `video/mp4`, `audio/mpeg` or `audio/wav`.
    pub content_type: String,
    /// Exact size of the file to upload, in bytes.
    pub size_bytes: u64,
}

/// The answer to `POST /v1/assets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssetCreated {
    pub id: String,
    /// A presigned PUT link: send the file with this `Content-Type` and exactly `size_bytes` bytes.
    pub upload_url: String,
    pub expires_at: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// An asset as `GET /v1/assets/{id}` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssetView {
    pub id: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub created_at: String,
    /// Whether the file has been uploaded.
    pub uploaded: bool,
}

/// The largest upload accepted per content type, in bytes; `None` for a type not accepted.
pub fn asset_size_limit(content_type: &str) -> Option<u64> {
    const MIB: u64 = 1024 * 1024;
    match content_type {
        "image/png" | "image/jpeg" => Some(25 * MIB),
        "video/mp4" => Some(2048 * MIB),
        "audio/mpeg" | "audio/wav" => Some(200 * MIB),
        _ => None,
    }
}

/// Content types accepted for upload.
pub const ASSET_CONTENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "video/mp4",
    "audio/mpeg",
    "audio/wav",
];

/// A request body that does not deserialize, as the API reports it: `malformed_json` (and no
/// field) when it is not JSON at all, else `invalid_field` at `field`. serde's trailing " at line
/// L column C" is dropped: the field says where.
pub fn json_error(err: &serde_json::Error, field: impl Into<String>) -> SpecError {
    let malformed = err.is_syntax() || err.is_eof();
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    SpecError {
        code: if malformed {
            "malformed_json"
        } else {
            "invalid_field"
        },
        field: if malformed {
            String::new()
        } else {
            field.into()
        },
        message,
    }
}
