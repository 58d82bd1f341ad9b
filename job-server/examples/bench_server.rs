//! The job server on in-memory stores, for `scripts/bench-api`: it measures the submit path
//! (auth, parsing, validation, the job record, the enqueue) without the network to AWS.
//! Usage: bench_server ADDR; prints the API key on stdout once listening.

mod bench_common;

use axum::ServiceExt as _;
use job_server::app;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let (state, key) = bench_common::state().await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{key}");
    axum::serve(listener, app(state).into_make_service()).await?;
    Ok(())
}
