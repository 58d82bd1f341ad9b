//! One middleware for what every request needs around it: a request id (the caller's, if it sent
//! a sane one, or a new one), a tracing span carrying it, one log line per request, the id on the
//! response, and the uniform JSON body with the id on every error. One layer instead of four:
//! the submit path is short enough that each layer's cost shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use renderfleet_core::api::{ErrorBody, ErrorResponse};
use tracing::Instrument;

use crate::REQUEST_ID;
use crate::error::generic_error_body;

/// A request id unique across tasks and restarts: a random prefix per process and a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!(
        "{prefix:08x}-{:012x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The caller's id when it is short and plain, so it can be quoted back and logged safely.
fn callers_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| v.to_owned())
}

pub async fn request_context(req: Request, next: Next) -> Response {
    let id = callers_id(&req).unwrap_or_else(new_request_id);
    let started = Instant::now();
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    let mut resp = if status.is_client_error() || status.is_server_error() {
        let (mut parts, _body) = resp.into_parts();
        let mut body = parts
            .extensions
            .remove::<ErrorBody>()
            .unwrap_or_else(|| generic_error_body(status));
        body.request_id = Some(id.clone());
        let bytes = serde_json::to_vec(&ErrorResponse { error: body }).expect("serializes");
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(bytes))
    } else {
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        )
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_header_safe() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(HeaderValue::from_str(&a).is_ok());
    }
}
