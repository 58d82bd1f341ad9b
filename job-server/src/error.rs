//! The one error type of the handlers. Client errors say what to fix and where; internal errors
//! are logged with their cause chain and answered with a generic body and the request id. Every
//! error response, ours or a layer's (timeout, panic, unknown route), has the same JSON shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renderfleet_core::api::{ErrorBody, ErrorResponse};
use renderfleet_core::spec::SpecError;

use crate::views::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(SpecError),
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// A dependency of readiness does not answer.
    #[error("not ready: {0} does not answer")]
    NotReady(String),
    /// A dependency failed transiently; the client may retry.
    #[error("the service is briefly unavailable; retry with the same Idempotency-Key")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid(SpecError {
            code,
            field: field.into(),
            message: message.into(),
        })
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Invalid(e) => (
                // A body that is not JSON at all is a bad request; JSON that breaks a rule is
                // unprocessable.
                if e.code == "malformed_json" {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                e.code,
                (!e.field.is_empty()).then(|| e.field.clone()),
            ),
            ApiError::BadRequest { code, field, .. } => {
                (StatusCode::BAD_REQUEST, code, field.clone())
            }
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                Some("content-type".into()),
            ),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", None),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

impl From<renderfleet_core::Error> for ApiError {
    fn from(e: renderfleet_core::Error) -> Self {
        if e.is_retryable() {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

fn json_response(status: StatusCode, body: ErrorBody) -> Response {
    let mut resp = (
        status,
        Json(ErrorResponse {
            error: body.clone(),
        }),
    )
        .into_response();
    resp.extensions_mut().insert(body);
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "dependency unavailable")
            }
            _ => {}
        }
        let mut resp = json_response(
            status,
            ErrorBody {
                code: code.to_owned(),
                message: self.to_string(),
                field,
                request_id: None,
            },
        );
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The generic body for an error response that a layer produced without one.
pub fn generic_error_body(status: StatusCode) -> ErrorBody {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method")
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => (
            "unavailable",
            "the request took too long; retry with the same Idempotency-Key",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        s if s.is_client_error() => ("bad_request", "the request was not understood"),
        _ => ("internal", "internal error"),
    };
    ErrorBody {
        code: code.into(),
        message: message.into(),
        field: None,
        request_id: None,
    }
}

/// The response to a handler that panicked: logged, answered generically.
#[derive(Clone, Copy, Debug)]
pub struct PanicResponse;

impl tower_http::catch_panic::ResponseForPanic for PanicResponse {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(&mut self, err: Box<dyn std::any::Any + Send + 'static>) -> Response {
        let what = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| err.downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        tracing::error!(panic = what, "handler panicked");
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            generic_error_body(StatusCode::INTERNAL_SERVER_ERROR),
        )
    }
}
