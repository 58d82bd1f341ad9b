//! An external renderer behind the same seam (a proprietary engine, say).
//!
//! Contract (docs/ENGINE.md): the agent runs `COMMAND SPEC_JSON OUTPUT` in the job's work
//! directory, with no shell and stdin closed. `SPEC_JSON` is the job spec v1 with one more member,
//! `"assets"`, mapping each referenced asset id to its downloaded file. The engine writes the video
//! to `OUTPUT`, may print `progress <0..1>` lines on stdout, and exits 0 on success, 2 when the
//! input is invalid (not retried), anything else on failure (retried on another worker).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use async_trait::async_trait;

use super::plan::EngineCommand;
use super::process::{OutputRule, ProcessEngine};
use super::{EngineError, RenderRequest};
use crate::Error;

/// The exit code that means "the input is invalid".
pub const EXIT_INVALID_INPUT: i32 = 2;

#[derive(Clone, Debug)]
pub struct ExternalEngine {
    pub command: PathBuf,
    pub max_output_bytes: u64,
}

/// Parses a `progress <fraction>` line.
pub fn parse_progress(line: &str) -> Option<f64> {
    let v: f64 = line.strip_prefix("progress")?.trim().parse().ok()?;
    v.is_finite().then(|| v.clamp(0.0, 1.0))
}

#[async_trait]
impl ProcessEngine for ExternalEngine {
    /// `COMMAND SPEC_JSON OUTPUT`, with the spec and its assets' files written to `spec.json`.
    async fn command(&self, req: RenderRequest<'_>) -> Result<EngineCommand, EngineError> {
        let mut doc =
            serde_json::to_value(req.spec).map_err(|e| EngineError::Failed(e.to_string()))?;
        let assets: serde_json::Map<String, serde_json::Value> = req
            .assets
            .iter()
            .map(|(id, a)| {
                (
                    id.to_string(),
                    serde_json::Value::String(a.path.display().to_string()),
                )
            })
            .collect();
        doc["assets"] = serde_json::Value::Object(assets);
        let spec_path = req.workdir.join("spec.json");
        Ok(EngineCommand {
            program: self.command.clone(),
            args: vec![
                spec_path.display().to_string(),
                req.output.display().to_string(),
            ],
            files: vec![(spec_path, doc.to_string())],
            duration: 0.0,
        })
    }

    fn progress(&self, _cmd: &EngineCommand, line: &str) -> Option<f64> {
        parse_progress(line)
    }

    fn output_rule(&self) -> OutputRule {
        OutputRule::at_most("the engine exited 0", self.max_output_bytes)
    }

    fn exit_error(&self, status: ExitStatus, _stderr_tail: &str, last_line: String) -> EngineError {
        if status.code() == Some(EXIT_INVALID_INPUT) {
            EngineError::InvalidInput(last_line)
        } else {
            EngineError::Failed(format!("engine exited with {status}: {last_line}"))
        }
    }

    async fn self_check(&self, _workdir: &Path) -> Result<(), Error> {
        let meta = std::fs::metadata(&self.command).map_err(|source| Error::Unreadable {
            path: self.command.clone(),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(Error::NotExecutable(self.command.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_progress;

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress("progress 0.5"), Some(0.5));
        assert_eq!(parse_progress("progress 7"), Some(1.0));
        assert_eq!(parse_progress("progress NaN"), None);
        assert_eq!(parse_progress("frame=12"), None);
    }
}
