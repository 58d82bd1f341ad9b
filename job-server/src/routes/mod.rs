//! Handlers, grouped per resource.

pub mod assets;
pub mod health;
pub mod jobs;
pub mod openapi;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use renderfleet_core::api::ErrorResponse;

use crate::error::ApiError;

/// The failures every authenticated route may answer, for the OpenAPI document (the handlers
/// answer them through [`ApiError`]).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Failures {
    #[response(status = 401, description = "Missing or unknown API key")]
    Unauthorized(ErrorResponse),
    #[response(
        status = 500,
        description = "Internal error (answered generically, with the request id)"
    )]
    Internal(ErrorResponse),
    #[response(
        status = 503,
        description = "A dependency is briefly unavailable; retry"
    )]
    Unavailable(ErrorResponse),
}

/// The failures of a route that reads a JSON body, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum BodyFailures {
    #[response(
        status = 400,
        description = "The body is not JSON, or a header is malformed"
    )]
    Malformed(ErrorResponse),
    #[response(status = 413, description = "The body is larger than 256 KiB")]
    TooLarge(ErrorResponse),
    #[response(status = 415, description = "The body is not application/json")]
    NotJson(ErrorResponse),
    #[response(
        status = 422,
        description = "The spec breaks a rule; `field` names where"
    )]
    Invalid(ErrorResponse),
}

/// Largest request body accepted, checked before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

pub async fn method_not_allowed() -> axum::http::StatusCode {
    axum::http::StatusCode::METHOD_NOT_ALLOWED
}

/// A JSON request body: `Content-Type: application/json` (415 otherwise) of at most
/// [`MAX_BODY_BYTES`] (413 otherwise, before anything is parsed).
#[derive(Debug)]
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(ApiError::TooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::TooLarge {
                limit: MAX_BODY_BYTES,
            })?;
        Ok(JsonBody(bytes))
    }
}
