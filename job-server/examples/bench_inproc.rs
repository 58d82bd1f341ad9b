//! For `scripts/bench-api`: one request at a time through the whole job server in process (no
//! sockets, no kernel), and the same for the hello-world's router, so that a profiler or
//! callgrind sees only our code and the framework's. Usage: bench_inproc N [submit|hello];
//! prints the time per request of each.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use job_server::{AlwaysReady, AppState, Config, app};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{MemoryMedia, MemoryQueue, MemoryStore};
use renderfleet_core::ports::ApiKeys;
use tower::{Service, ServiceExt};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The body `scripts/bench/submit.lua` sends.
const BODY: &str = r##"{"output":{"width":1280,"height":720,"fps":30},"scenes":[{"duration":3,"background":{"color":"#0b1d3a"},"texts":[{"text":"Spring Campaign","x":0.5,"y":0.4,"size":0.08,"color":"#ffffff"},{"text":"renderfleet","y":0.6,"size":0.05}],"transition":{"kind":"fade","duration":0.5}}],"priority":5,"metadata":{"campaign":"spring"}}"##;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let only = args.next();
    // As bench_server: the stores keep the newest 100 jobs and messages.
    let store = MemoryStore::with_job_limit(100);
    let key = renderfleet_core::keys::generate("bench", now_ms());
    store.create_key(&key.record).await?;
    let state = AppState {
        ready: Arc::new(AlwaysReady),
        jobs: Arc::new(store.clone()),
        queue: Arc::new(MemoryQueue::with_limit(100)),
        keys: Arc::new(store.clone()),
        assets: Arc::new(store),
        media: Arc::new(MemoryMedia::new()),
        config: Arc::new(Config::for_tests()),
    };
    let submit = app(state);
    let hello = axum::Router::new().route(
        "/v1/jobs",
        axum::routing::post(|| async { axum::Json(serde_json::json!({ "state": "queued" })) }),
    );
    let auth = format!("Bearer {}", key.plaintext);
    let request = || {
        Request::post("/v1/jobs")
            .header("content-type", "application/json")
            .header("authorization", &auth)
            .header("content-length", BODY.len())
            .body(Body::from(BODY))
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
