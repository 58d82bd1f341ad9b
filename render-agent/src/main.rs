//! The render agent binary: init tracing, parse config, find its instance id, build clients once,
//! run until SIGTERM, drain, exit 0.

use std::sync::Arc;

use anyhow::Context;
use render_agent::config::EngineKind;
use render_agent::engine::Engine;
use render_agent::engine::external::ExternalEngine;
use render_agent::engine::ffmpeg::FfmpegEngine;
use render_agent::engine::mp4;
use render_agent::worker::{Deps, Prober};
use render_agent::{Config, NoMetadata, run};
use renderfleet_core::aws::{
    AsgFleet, CloudWatchMetrics, DynamoStore, ImdsWatch, S3Media, SqsQueue, SsmParameters,
};
use renderfleet_core::edge::{self, LogFormat};
use renderfleet_core::events;
use renderfleet_core::ports::TerminationNotice;
use tokio_util::sync::CancellationToken;

/// Checks a rendered file in-process ([`mp4::summary`]): an MP4 with a duration, a video track
/// and media data. Starting ffprobe for the same answer took a tenth of a short job's wall time.
struct Mp4Check;

#[async_trait::async_trait]
impl Prober for Mp4Check {
    async fn duration(&self, path: &std::path::Path) -> Result<f64, String> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || mp4::summary(&path))
            .await
            .map_err(|e| format!("the output check stopped: {e}"))?
            .map(|s| s.duration)
            .map_err(|e| e.to_string())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    edge::init_tracing(LogFormat::Json, "info");
    let cfg = Config::from_env().context("agent configuration")?;
    let sdk = renderfleet_core::aws::default_config("render-agent").await;
    let instance = match &cfg.instance_id {
        Some(id) => id.clone(),
        None => instance_id_from_imds()
            .await
            .context("asking the instance metadata service for the instance id")?,
    };
    let store = Arc::new(DynamoStore::new(&sdk, &cfg.names.table));
    let queue = Arc::new(
        SqsQueue::connect(&sdk, &cfg.names.queue)
            .await
            .context("finding the jobs queue")?,
    );
    let media = Arc::new(S3Media::new(&sdk, &cfg.names.bucket));
    let engine: Arc<dyn Engine> = match &cfg.engine {
        EngineKind::Ffmpeg => Arc::new(FfmpegEngine {
            ffmpeg: cfg.ffmpeg.clone(),
            ffprobe: cfg.ffprobe.clone(),
            font: cfg.font.clone(),
            max_output_bytes: cfg.max_output_bytes,
        }),
        EngineKind::External { command } => Arc::new(ExternalEngine {
            command: command.clone(),
            max_output_bytes: cfg.max_output_bytes,
        }),
    };
    let group = Arc::new(AsgFleet::new(&sdk, &cfg.names.asg));
    let notice: Arc<dyn TerminationNotice> = if cfg.watch_imds {
        Arc::new(ImdsWatch::new())
    } else {
        Arc::new(NoMetadata)
    };
    let deps = Deps {
        source: queue.clone(),
        queue,
        ledger: store.clone(),
        media,
        assets: store.clone(),
        lifecycle: group,
        health: store.clone(),
        gate: store,
        status: Arc::new(SsmParameters::new(&sdk, cfg.names.clone())),
        notice: notice.clone(),
        metrics: Arc::new(CloudWatchMetrics::new(&sdk, &cfg.names.env)),
        engine,
        prober: Arc::new(Mp4Check),
    };
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let why = edge::shutdown_signal().await;
        tracing::info!(event = events::AGENT_DRAINING, why, "{why}: draining");
        trigger.cancel();
    });
    if cfg.watch_imds {
        tokio::spawn(render_agent::watch_termination(notice, shutdown.clone()));
    }
    tracing::info!(instance = %instance, env = %cfg.names.env, "render agent starting");
    run(deps, cfg, instance, shutdown).await
}

/// The instance id from IMDSv2 (token first, as the launch template requires).
async fn instance_id_from_imds() -> anyhow::Result<String> {
    let client = aws_config::imds::Client::builder().build();
    Ok(client.get("/latest/meta-data/instance-id").await?.into())
}
