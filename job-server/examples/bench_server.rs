//! The job server on in-memory stores, for `scripts/bench-api`: it measures the submit path
//! (auth, parsing, validation, the job record, the enqueue) without the network to AWS.
//! Usage: bench_server ADDR; prints the API key on stdout once listening.

use std::sync::Arc;

use job_server::{AlwaysReady, AppState, Config, app};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{MemoryMedia, MemoryQueue, MemoryStore};
use renderfleet_core::ports::ApiKeys;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    // At most 10,000 jobs in memory: a production server holds none (DynamoDB does), so the run
    // measures the server rather than a map that grows for its whole length.
    let store = MemoryStore::with_job_limit(10_000);
    let key = renderfleet_core::keys::generate("bench", now_ms());
    store.create_key(&key.record).await?;
    let state = AppState {
        ready: Arc::new(AlwaysReady),
        jobs: Arc::new(store.clone()),
        queue: Arc::new(MemoryQueue::new()),
        keys: Arc::new(store.clone()),
        assets: Arc::new(store),
        media: Arc::new(MemoryMedia::new()),
        config: Arc::new(Config::for_tests()),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", key.plaintext);
    axum::serve(listener, app(state)).await?;
    Ok(())
}
