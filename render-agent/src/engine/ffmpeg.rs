//! The ffmpeg engine: probe the inputs, plan the command, run it, check the output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;
use renderfleet_core::ids::AssetId;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::plan::{EngineCommand, LocalAsset, PlanContext, plan};
use super::process::{Ended, OutputRule, ProcessEngine, run};
use super::{EngineError, RenderRequest};
use crate::Error;

#[derive(Clone, Debug)]
pub struct FfmpegEngine {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub font: PathBuf,
    pub max_output_bytes: u64,
}

/// What ffprobe says about a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaInfo {
    pub duration: f64,
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    /// The first stream of a kind (`"video"`, `"audio"`).
    pub fn stream(&self, codec_type: &str) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.codec_type == codec_type)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StreamInfo {
    pub codec_type: String,
    #[serde(default)]
    pub codec_name: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub pix_fmt: Option<String>,
}

#[derive(Deserialize)]
struct ProbeOut {
    #[serde(default)]
    streams: Vec<StreamInfo>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    #[serde(default)]
    duration: Option<String>,
}

/// The ffprobe command whose answer [`read_probe`] reads: the streams and the duration of `path`,
/// as JSON, reading local files only, stdin closed.
pub fn probe_command(ffprobe: &Path, path: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(ffprobe);
    cmd.args([
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-show_entries",
    ])
    .arg("stream=codec_type,codec_name,width,height,pix_fmt:format=duration")
    .args(["-of", "json"])
    .arg(path)
    .stdin(std::process::Stdio::null());
    cmd
}

/// Reads what a run of [`probe_command`] said. A failed run is an error with ffprobe's last word
/// on why; a missing duration reads as 0.
pub fn read_probe(out: &std::process::Output) -> Result<MediaInfo, Error> {
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Unprobeable(
            err.lines()
                .last()
                .unwrap_or("unreadable media")
                .trim()
                .to_owned(),
        ));
    }
    let parsed: ProbeOut = serde_json::from_slice(&out.stdout)?;
    let duration = parsed
        .format
        .and_then(|f| f.duration)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    Ok(MediaInfo {
        duration,
        streams: parsed.streams,
    })
}

/// Probes `path` with ffprobe, reading local files only. An unreadable file is an error saying why.
pub async fn probe(ffprobe: &Path, path: &Path) -> Result<MediaInfo, Error> {
    let mut cmd = tokio::process::Command::from(probe_command(ffprobe, path));
    let out = cmd.kill_on_drop(true).output();
    let limit = Duration::from_secs(60);
    let out = tokio::time::timeout(limit, out)
        .await
        .map_err(|_| Error::ProbeTimedOut(limit))?
        .map_err(|source| Error::ProbeSpawn {
            program: ffprobe.to_owned(),
            source,
        })?;
    read_probe(&out)
}

/// ffmpeg messages that mean the input, not the machine, is at fault.
const INPUT_ERRORS: &[&str] = &[
    "Invalid data found when processing input",
    "moov atom not found",
    "could not find codec parameters",
    "does not contain any stream",
    "Invalid argument",
    "Error while decoding",
    "No such file or directory",
    "Protocol not on whitelist",
];

impl FfmpegEngine {
    /// Checks each asset is media ffprobe can read, with the kind of stream it is used for.
    async fn check_assets(&self, assets: &HashMap<AssetId, LocalAsset>) -> Result<(), EngineError> {
        for (id, asset) in assets {
            let info = probe(&self.ffprobe, &asset.path).await.map_err(|e| {
                EngineError::InvalidInput(format!("asset {id} is not readable media: {e}"))
            })?;
            let wanted = if asset.content_type.starts_with("audio/") {
                "audio"
            } else {
                "video"
            };
            if !info.streams.iter().any(|s| s.codec_type == wanted) {
                return Err(EngineError::InvalidInput(format!(
                    "asset {id} has no {wanted} stream"
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ProcessEngine for FfmpegEngine {
    /// Probes the assets, then plans the command from the spec.
    async fn command(&self, req: RenderRequest<'_>) -> Result<EngineCommand, EngineError> {
        self.check_assets(req.assets).await?;
        let ctx = PlanContext {
            ffmpeg: &self.ffmpeg,
            font: &self.font,
            max_output_bytes: self.max_output_bytes,
        };
        plan(&req, &ctx).map_err(|e| EngineError::InvalidInput(e.to_string()))
    }

    /// `-progress pipe:1` reports `out_time_us=`: the part of the video written so far.
    fn progress(&self, cmd: &EngineCommand, line: &str) -> Option<f64> {
        let total = cmd.duration.max(0.001);
        line.strip_prefix("out_time_us=")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|us| (us / 1e6 / total).clamp(0.0, 1.0))
    }

    /// `-fs` stops ffmpeg writing at the cap: an output that reaches it is cut short.
    fn output_rule(&self) -> OutputRule {
        OutputRule::below("ffmpeg succeeded", self.max_output_bytes)
    }

    /// Killed is the machine's fault (retried); a known input error is the job's (failed).
    fn exit_error(&self, status: ExitStatus, stderr_tail: &str, last: String) -> EngineError {
        if status.code().is_none() {
            EngineError::Failed(format!("ffmpeg was killed ({status}): {last}"))
        } else if INPUT_ERRORS.iter().any(|p| stderr_tail.contains(p)) {
            EngineError::InvalidInput(format!("ffmpeg: {last}"))
        } else {
            EngineError::Failed(format!("ffmpeg exited with {status}: {last}"))
        }
    }

    async fn self_check(&self, workdir: &Path) -> Result<(), Error> {
        if !self.font.is_file() {
            return Err(Error::FontMissing(self.font.clone()));
        }
        let out = workdir.join("self-check.mp4");
        let args: Vec<String> = [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=32x32:r=1:d=1",
            "-frames:v",
            "1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from)
        .into_iter()
        .chain([out.display().to_string()])
        .collect();
        let limit = Duration::from_secs(30);
        let ended = run(
            &self.ffmpeg,
            &args,
            workdir,
            limit,
            CancellationToken::new(),
            |_| {},
        )
        .await;
        let _ = tokio::fs::remove_file(&out).await;
        match ended {
            Ended::Exited { status, .. } if status.success() => Ok(()),
            Ended::Exited {
                status,
                stderr_tail,
            } => Err(Error::TestRenderFailed {
                status,
                stderr: stderr_tail,
            }),
            Ended::TimedOut => Err(Error::TestRenderTimedOut(limit)),
            Ended::Stopped => Err(Error::TestRenderStopped),
            Ended::SpawnFailed(e) => Err(Error::Spawn(e)),
        }
    }
}
