//! What both benchmark servers (`bench_server`, `bench_inproc`) run on: the job server's state on
//! in-memory stores, with one API key.

use std::sync::Arc;

use job_server::{AlwaysReady, AppState, Config};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{MemoryMedia, MemoryQueue, MemoryStore};
use renderfleet_core::ports::ApiKeys;

/// Jobs and messages the in-memory stores keep (the newest). A production server keeps none:
/// DynamoDB and SQS hold them, and the server's memory sees each job only while it answers. A
/// fake that kept every job would grow for the whole run; one that keeps many makes every request
/// free an old job's memory long out of cache and reuse it, a cost of the fake (about a tenth of
/// the server's CPU at 10,000; docs/PERFORMANCE.md) that the production server does not pay.
const KEEP: usize = 100;

/// The state, and the plaintext of an API key it accepts.
pub async fn state() -> anyhow::Result<(AppState, String)> {
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
    Ok((state, key.plaintext))
}
