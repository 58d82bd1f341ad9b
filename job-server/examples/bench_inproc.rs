//! For `scripts/bench-api`: one request at a time through the whole job server in process (no
//! sockets, no kernel), and the same for the hello-world's router, so that a profiler or
//! callgrind sees only our code and the framework's. Usage: bench_inproc N [submit|hello];
//! prints the time per request of each.

mod bench_common;

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use job_server::app;
use tower::{Service, ServiceExt};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The body `scripts/bench/submit.lua` sends, read from the script so the two cannot drift.
fn body() -> &'static str {
    const SCRIPT: &str = include_str!("../../scripts/bench/submit.lua");
    SCRIPT
        .split_once("wrk.body = [[")
        .and_then(|(_, rest)| rest.split_once("]]"))
        .map(|(body, _)| body)
        .expect("submit.lua sets wrk.body")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let only = args.next();
    let (state, key) = bench_common::state().await?;
    let submit = app(state);
    let hello = axum::Router::new().route(
        "/v1/jobs",
        axum::routing::post(|| async { axum::Json(serde_json::json!({ "state": "queued" })) }),
    );
    let auth = format!("Bearer {key}");
    let body = body();
    let request = || {
        Request::post("/v1/jobs")
            .header("content-type", "application/json")
            .header("authorization", &auth)
            .header("content-length", body.len())
            .body(Body::from(body))
            .expect("a valid request")
    };
    if only.as_deref().is_none_or(|o| o == "submit") {
        run("submit", &submit, n, &request).await?;
    }
    if only.as_deref().is_none_or(|o| o == "hello") {
        run("hello", &hello, n, &request).await?;
    }
    Ok(())
}

async fn run<S>(
    name: &str,
    service: &S,
    n: usize,
    request: &impl Fn() -> Request<Body>,
) -> anyhow::Result<()>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    let started = Instant::now();
    for _ in 0..n {
        let resp = service.clone().oneshot(request()).await?;
        anyhow::ensure!(resp.status().is_success(), "{name}: {}", resp.status());
        axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{name}: {per:.2} us/request");
    Ok(())
}
