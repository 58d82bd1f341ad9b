//! One middleware for what every request needs around it: a request id (the caller's, if it sent
//! a sane one, or a new one), the deadline (503 after it), a tracing span carrying the id, one log
//! line per request, the id on the response, and the uniform JSON body with the id on every
//! error. One layer instead of five:
//! the submit path is short enough that each layer's cost shows.

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renderfleet_core::api::{ErrorBody, ErrorResponse};
use renderfleet_core::events;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::REQUEST_ID;
use crate::error::generic_error_body;

/// A request id unique across tasks and restarts: a random prefix per process and a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(rand::random::<u32>);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(21);
    push_hex(&mut id, u64::from(prefix), 8);
    id.push('-');
    push_hex(&mut id, count, 12);
    id
}

/// Appends the low `digits` hex digits of `v`, zero-padded (what `{:0digits$x}` writes, without
/// the formatting machinery: this runs on every request).
fn push_hex(out: &mut String, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        let nibble = (v >> (4 * i)) & 0xf;
        out.push(char::from_digit(nibble as u32, 16).expect("a nibble is a hex digit"));
    }
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

/// Answers 503 once `limit` has passed since `started`, if `fut` has not answered by then.
///
/// The timer is armed only when the first poll does not finish the request: a request served
/// from memory (health checks, a cache hit) pays for no timer and no wakeup of the runtime's
/// driver, which a timer registered on an idle wheel costs.
async fn within(
    limit: Duration,
    started: Instant,
    fut: impl Future<Output = Response>,
) -> Response {
    let mut fut = pin!(fut);
    if let Poll::Ready(resp) = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return resp;
    }
    let deadline = tokio::time::Instant::from_std(started + limit);
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(resp) => resp,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Wraps a service (the whole router, once: not each route) in [`RequestContext`].
#[derive(Clone, Copy, Debug)]
pub struct RequestContextLayer {
    /// The per-request deadline.
    pub limit: Duration,
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext {
            inner,
            limit: self.limit,
        }
    }
}

/// The middleware's service: see the module's documentation.
#[derive(Clone, Debug)]
pub struct RequestContext<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<Request> for RequestContext<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The instance that was polled ready serves this request; its clone waits for the next.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(handle(inner, self.limit, req))
    }
}

async fn handle<S, B>(mut inner: S, limit: Duration, req: Request) -> Result<Response, Infallible>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let id = callers_id(&req).unwrap_or_else(new_request_id);
    let started = Instant::now();
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
    let resp = within(limit, started, async move {
        match inner.call(req).await {
            Ok(resp) => resp.map(Body::new),
            Err(never) => match never {},
        }
    })
    .instrument(span.clone())
    .await;
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
    span.in_scope(|| {
        tracing::info!(
            event = events::HTTP_REQUEST,
            status = status.as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        )
    });
    if let Ok(v) = HeaderValue::try_from(id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_answers_503_only_for_a_request_that_outlives_it() {
        let limit = Duration::from_millis(50);
        let ready = within(limit, Instant::now(), async {
            StatusCode::OK.into_response()
        })
        .await;
        assert_eq!(ready.status(), StatusCode::OK);
        let slow = within(limit, Instant::now(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            StatusCode::ACCEPTED.into_response()
        })
        .await;
        assert_eq!(slow.status(), StatusCode::ACCEPTED);
        let asked = Instant::now();
        let hung = within(limit, asked, std::future::pending()).await;
        assert_eq!(hung.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(asked.elapsed() >= limit);
    }

    #[test]
    fn hex_is_zero_padded_like_format() {
        for (v, digits) in [
            (0u64, 8),
            (0xdead_beef, 8),
            (42, 12),
            (0xffff_ffff_ffff, 12),
        ] {
            let mut s = String::new();
            push_hex(&mut s, v, digits);
            assert_eq!(s, format!("{v:0width$x}", width = digits as usize));
        }
    }

    #[test]
    fn generated_ids_are_unique_and_header_safe() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(HeaderValue::from_str(&a).is_ok());
    }
}
