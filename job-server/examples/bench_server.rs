//! The job server on in-memory stores, for `scripts/bench-api`: it measures the submit path
//! (auth, parsing, validation, the job record, the enqueue) without the network to AWS.
//! Usage: bench_server ADDR; prints the API key on stdout once listening.

use std::sync::Arc;

use axum::ServiceExt as _;
use job_server::{AlwaysReady, AppState, Config, app};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{MemoryMedia, MemoryQueue, MemoryStore};
use renderfleet_core::ports::ApiKeys;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Jobs and messages the in-memory stores keep (the newest). A production server keeps none:
/// DynamoDB and SQS hold them, and the server's memory sees each job only while it answers. A
/// fake that kept every job would grow for the whole run; one that keeps many makes every request
/// free an old job's memory long out of cache and reuse it, a cost of the fake (about a tenth of
/// the server's CPU at 10,000; docs/PERFORMANCE.md) that the production server does not pay.
const KEEP: usize = 100;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let store = MemoryStore::with_job_limit(KEEP);
    let key = renderfleet_core::keys::generate("bench", now_ms());
    store.create_key(&key.record).await?;
    let state = AppState {
        ready: Arc::new(AlwaysReady),
        jobs: Arc::new(store.clone()),
        queue: Arc::new(MemoryQueue::with_limit(KEEP)),
        keys: Arc::new(store.clone()),
        assets: Arc::new(store),
        media: Arc::new(MemoryMedia::new()),
        config: Arc::new(Config::for_tests()),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", key.plaintext);
    axum::serve(listener, app(state).into_make_service()).await?;
    Ok(())
}
