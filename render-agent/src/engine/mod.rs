//! The engine seam: whatever renders a job, behind one trait. [`ffmpeg::FfmpegEngine`] plans an
//! ffmpeg command from the spec; [`external::ExternalEngine`] hands the spec to a proprietary
//! renderer. Both are a [`process::ProcessEngine`]: they say how to start and read their process,
//! and one implementation runs it for both with [`process::run`] (kill on drop, a wall-clock
//! limit, progress from stdout, and a stop signal) and turns its end into the render's result.

pub mod external;
pub mod ffmpeg;
pub mod mp4;
pub mod plan;
pub mod process;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use renderfleet_core::ids::AssetId;
use renderfleet_core::spec::JobSpec;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use plan::LocalAsset;

/// One render.
#[derive(Clone, Copy, Debug)]
pub struct RenderRequest<'a> {
    pub spec: &'a JobSpec,
    /// The job's private work directory (it holds the assets and receives the output).
    pub workdir: &'a Path,
    pub output: &'a Path,
    pub assets: &'a HashMap<AssetId, LocalAsset>,
    /// Wall-clock limit for the engine.
    pub timeout: Duration,
}

/// How a render failed. The variant decides what happens to the job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The job's input is unusable (corrupt media, a wrong asset, the engine says invalid):
    /// the job fails and is not retried.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The engine crashed or failed for reasons of its own: the job is retried elsewhere.
    #[error("engine failed: {0}")]
    Failed(String),
    /// The engine ran past its wall-clock limit: the job fails.
    #[error("the engine ran longer than its limit of {} s", .0.as_secs())]
    Timeout(Duration),
    /// The output grew past the cap: the job fails.
    #[error("the output is larger than {0} bytes")]
    OutputTooLarge(u64),
    /// Stopped on request (a cancel or a drain).
    #[error("stopped")]
    Stopped,
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// Renders `req` into `req.output`, sending progress (0..=1) on `progress`, until done, failed,
    /// timed out or `stop` fires. Kills its process in every case but success.
    async fn render(
        &self,
        req: RenderRequest<'_>,
        progress: &watch::Sender<f64>,
        stop: CancellationToken,
    ) -> Result<(), EngineError>;

    /// Checks the engine works, by rendering something tiny into `workdir`.
    async fn self_check(&self, workdir: &Path) -> Result<(), crate::Error>;
}
