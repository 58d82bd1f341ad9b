//! The job server binary: init tracing, parse config, build clients once, serve until SIGTERM,
//! then drain requests in flight for a bounded time. A sweeper runs alongside.

use std::sync::Arc;

use anyhow::Context;
use axum::ServiceExt as _;
use job_server::sweeper::{self, SweepDeps};
use job_server::{AppState, Config, Readiness, app};
use renderfleet_core::aws::{DynamoStore, S3Media, SqsQueue};
use renderfleet_core::edge::{self, LogFormat};
use renderfleet_core::ports::{JobSource, QueueDepth};
use tokio_util::sync::CancellationToken;

/// Ready when the jobs table and the queue answer.
struct Dependencies {
    table: Arc<DynamoStore>,
    queue: Arc<SqsQueue>,
}

#[async_trait::async_trait]
impl Readiness for Dependencies {
    async fn check(&self) -> Result<(), String> {
        let (t, q) = tokio::join!(self.table.ping(), self.queue.counters());
        t.map_err(|e| format!("the jobs table ({e})"))?;
        q.map_err(|e| format!("the jobs queue ({e})"))?;
        Ok(())
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    edge::init_tracing(LogFormat::Json, "info");
    let config = Config::from_env().context("job server configuration")?;
    let (state, sweep) = connect(&config).await?;
    let stop = CancellationToken::new();
    let sweeper = tokio::spawn(sweeper::run(sweep, config.sweep.clone(), stop.clone()));
    serve(state, &config, stop).await?;
    let _ = sweeper.await;
    tracing::info!("job server stopped");
    Ok(())
}

/// The clients, built once: the API's state and the sweeper's.
async fn connect(config: &Config) -> anyhow::Result<(AppState, SweepDeps)> {
    let sdk = renderfleet_core::aws::default_config("job-server").await;
    let store = Arc::new(DynamoStore::new(&sdk, &config.names.table));
    let queue = Arc::new(
        SqsQueue::connect(&sdk, &config.names.queue)
            .await
            .context("finding the jobs queue")?,
    );
    // The dead-letter queue is drained by the sweeper; a server that cannot find it still
    // serves, and says so.
    let dead_letters: Option<Arc<dyn JobSource>> = match SqsQueue::connect(&sdk, &config.names.dlq)
        .await
    {
        Ok(q) => Some(Arc::new(q)),
        Err(e) => {
            tracing::error!(queue = %config.names.dlq, error = %e, "cannot find the dead-letter queue; its messages are not settled");
            None
        }
    };
    let state = AppState {
        ready: Arc::new(Dependencies {
            table: store.clone(),
            queue: queue.clone(),
        }),
        jobs: store.clone(),
        queue: queue.clone(),
        keys: store.clone(),
        assets: store.clone(),
        media: Arc::new(S3Media::new(&sdk, &config.names.bucket)),
        config: Arc::new(config.clone()),
    };
    let sweep = SweepDeps {
        work: store.clone(),
        jobs: store,
        queue,
        dead_letters,
    };
    Ok((state, sweep))
}

/// Serves until SIGTERM, then stops the sweeper and drains requests in flight for a bounded time.
async fn serve(state: AppState, config: &Config, stop: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(addr = %config.listen, env = %config.names.env, "job server listening");
    let drain = config.drain;
    let graceful = stop.clone();
    let server = axum::serve(listener, app(state).into_make_service())
        .with_graceful_shutdown(async move { graceful.cancelled().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        res = &mut server => return res.context("serving"),
        _ = edge::shutdown_signal() => {}
    }
    tracing::info!(
        drain_secs = drain.as_secs(),
        "shutting down; draining requests in flight"
    );
    stop.cancel();
    match tokio::time::timeout(drain, server).await {
        Ok(res) => res.context("serving"),
        Err(_) => {
            tracing::warn!("drain timed out; exiting with requests in flight");
            Ok(())
        }
    }
}
