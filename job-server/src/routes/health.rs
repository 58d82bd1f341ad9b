//! Liveness and readiness.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Shared;
use crate::error::ApiError;
use crate::views::Json;

/// `GET /healthz`: the process answers. Touches no dependency, so a slow table never gets a
/// healthy task killed.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process answers", body = Object)))]
pub(crate) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the jobs table and the queue answer; 503 names what does not.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "The jobs table and the queue answer", body = Object),
    (status = 503, description = "A dependency does not answer", body = renderfleet_core::api::ErrorResponse),
))]
pub(crate) async fn readyz(State(state): State<Shared>) -> Result<Response, ApiError> {
    state.ready.check().await.map_err(ApiError::NotReady)?;
    Ok(Json(json!({ "status": "ready" })).into_response())
}
