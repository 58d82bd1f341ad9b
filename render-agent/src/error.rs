//! Why the agent's checks fail: its self-check (the engine, a test render, free disk) and ffprobe.
//! How a render fails is [`crate::engine::EngineError`]: its variant decides the job's fate.
//!
//! The messages are what operators see (the heartbeat's `reason`, the health state, the logs), so
//! each says what is wrong in a few words, with the path or the tool's own last word.

use std::path::PathBuf;
use std::process::ExitStatus;

/// A failed check or probe.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The work directory's file system has less free space than the agent needs.
    #[error("only {free} bytes free in {}", .dir.display())]
    LowDisk { free: u64, dir: PathBuf },
    /// The font ffmpeg draws text with is not there.
    #[error("font {} is missing", .0.display())]
    FontMissing(PathBuf),
    /// A program the agent runs cannot be read.
    #[error("{}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A program the agent runs is not executable.
    #[error("{} is not executable", .0.display())]
    NotExecutable(PathBuf),
    /// A process could not be started, or was lost (the message says which, and why).
    #[error("{0}")]
    Spawn(String),
    /// The self-check's test render exited with a failure.
    #[error("test render exited with {status}: {}", .stderr.trim())]
    TestRenderFailed { status: ExitStatus, stderr: String },
    /// The self-check's test render ran past its limit.
    #[error("test render took longer than {} s", .0.as_secs())]
    TestRenderTimedOut(std::time::Duration),
    /// The self-check's test render was stopped.
    #[error("test render stopped")]
    TestRenderStopped,
    /// ffprobe could not be started.
    #[error("cannot run {}: {source}", .program.display())]
    ProbeSpawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// ffprobe ran past its limit.
    #[error("ffprobe took longer than {} s", .0.as_secs())]
    ProbeTimedOut(std::time::Duration),
    /// ffprobe cannot read the file: its last word on why.
    #[error("{0}")]
    Unprobeable(String),
    /// ffprobe's answer is not the JSON it should be.
    #[error("ffprobe output: {0}")]
    ProbeOutput(#[from] serde_json::Error),
}
