//! Running an engine process: no shell, stdin closed, killed on drop, with a wall-clock limit,
//! progress parsed from stdout and the tail of stderr kept for error messages.
//!
//! [`ProcessEngine`] is what an engine that renders by running one process says about it (the
//! command, its progress lines, its output cap, its failed exits); every such engine is an
//! [`Engine`] that runs it the same way.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::plan::EngineCommand;
use super::{Engine, EngineError, RenderRequest};
use crate::Error;

/// An engine that renders by running one process: it plans the command and reads the process;
/// its [`Engine`] implementation writes the command's files, runs it with [`run`], passes its
/// progress on, checks the output and turns a failed exit into an [`EngineError`].
#[async_trait]
pub trait ProcessEngine: Send + Sync {
    /// The command that renders `req`, with the files to write before it runs.
    async fn command(&self, req: RenderRequest<'_>) -> Result<EngineCommand, EngineError>;

    /// The fraction done (0..=1) a line of the process's stdout reports, if it reports one.
    fn progress(&self, cmd: &EngineCommand, line: &str) -> Option<f64>;

    /// What an exit 0 must leave behind.
    fn output_rule(&self) -> OutputRule;

    /// What a failed exit means, from its status, the tail of stderr and the last line of it
    /// that is not blank.
    fn exit_error(&self, status: ExitStatus, stderr_tail: &str, last_line: String) -> EngineError;

    /// Checks the engine works (see [`Engine::self_check`]).
    async fn self_check(&self, workdir: &Path) -> Result<(), Error>;
}

/// What an engine's exit 0 must leave behind: an output file within the engine's cap.
#[derive(Clone, Copy, Debug)]
pub struct OutputRule {
    /// What succeeded, for the error when there is no output (`"ffmpeg succeeded"`).
    pub succeeded: &'static str,
    pub max_bytes: u64,
    /// Whether an output of exactly `max_bytes` is over the cap.
    pub cap_inclusive: bool,
}

impl OutputRule {
    /// An output of up to `max_bytes`.
    pub fn at_most(succeeded: &'static str, max_bytes: u64) -> Self {
        Self {
            succeeded,
            max_bytes,
            cap_inclusive: false,
        }
    }

    /// An output smaller than `max_bytes` (an engine that stops writing at its cap, as ffmpeg
    /// does at `-fs`, leaves an output cut short when it reaches it).
    pub fn below(succeeded: &'static str, max_bytes: u64) -> Self {
        Self {
            succeeded,
            max_bytes,
            cap_inclusive: true,
        }
    }
}

#[async_trait]
impl<T: ProcessEngine> Engine for T {
    async fn render(
        &self,
        req: RenderRequest<'_>,
        progress: &watch::Sender<f64>,
        stop: CancellationToken,
    ) -> Result<(), EngineError> {
        let cmd = self.command(req).await?;
        write_files(&cmd.files).await?;
        let ended = run(
            &cmd.program,
            &cmd.args,
            req.workdir,
            req.timeout,
            stop,
            |line| {
                if let Some(p) = self.progress(&cmd, line) {
                    progress.send_replace(p);
                }
            },
        )
        .await;
        match ended {
            Ended::Exited { status, .. } if status.success() => {
                check_output(req.output, self.output_rule()).await?;
                progress.send_replace(1.0);
                Ok(())
            }
            Ended::Exited {
                status,
                stderr_tail,
            } => {
                let last = last_line(&stderr_tail);
                Err(self.exit_error(status, &stderr_tail, last))
            }
            Ended::TimedOut => Err(EngineError::Timeout(req.timeout)),
            Ended::Stopped => Err(EngineError::Stopped),
            Ended::SpawnFailed(e) => Err(EngineError::Failed(e)),
        }
    }

    async fn self_check(&self, workdir: &Path) -> Result<(), Error> {
        ProcessEngine::self_check(self, workdir).await
    }
}

/// Writes a command's files into the work directory.
async fn write_files(files: &[(PathBuf, String)]) -> Result<(), EngineError> {
    for (path, text) in files {
        tokio::fs::write(path, text)
            .await
            .map_err(|e| EngineError::Failed(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Checks the output an exit 0 left behind against `rule`.
async fn check_output(output: &Path, rule: OutputRule) -> Result<(), EngineError> {
    let size = tokio::fs::metadata(output)
        .await
        .map(|m| m.len())
        .map_err(|e| EngineError::Failed(format!("{} but wrote no output: {e}", rule.succeeded)))?;
    let over = if rule.cap_inclusive {
        size >= rule.max_bytes
    } else {
        size > rule.max_bytes
    };
    if over {
        return Err(EngineError::OutputTooLarge(rule.max_bytes));
    }
    Ok(())
}

/// The last line of `stderr_tail` that is not blank, trimmed (empty when there is none).
fn last_line(stderr_tail: &str) -> String {
    stderr_tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// How a process run ended.
#[derive(Debug)]
pub enum Ended {
    Exited {
        status: ExitStatus,
        stderr_tail: String,
    },
    TimedOut,
    Stopped,
    SpawnFailed(String),
}

/// Keeps the last `STDERR_TAIL` bytes of stderr.
const STDERR_TAIL: usize = 4096;

/// Runs `program args` in `cwd`, calling `on_line` for each stdout line.
pub async fn run(
    program: &Path,
    args: &[String],
    cwd: &Path,
    timeout: Duration,
    stop: CancellationToken,
    mut on_line: impl FnMut(&str),
) -> Ended {
    let mut child = match Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Ended::SpawnFailed(format!("{}: {e}", program.display())),
    };
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_task = tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    let mut lines = BufReader::new(stdout).lines();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut stdout_open = true;
    let ended = loop {
        tokio::select! {
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(l)) => on_line(&l),
                _ => stdout_open = false,
            },
            status = child.wait(), if !stdout_open => match status {
                Ok(status) => break Some(status),
                Err(e) => break { tracing::warn!(error = %e, "waiting for the engine failed"); None },
            },
            _ = &mut deadline => {
                let _ = child.kill().await;
                stderr_task.abort();
                return Ended::TimedOut;
            }
            _ = stop.cancelled() => {
                let _ = child.kill().await;
                stderr_task.abort();
                return Ended::Stopped;
            }
        }
    };
    let stderr_tail = stderr_task.await.unwrap_or_default();
    match ended {
        Some(status) => Ended::Exited {
            status,
            stderr_tail,
        },
        None => Ended::SpawnFailed("lost track of the engine process".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_lines_exit_and_stderr() {
        let mut lines = Vec::new();
        let ended = run(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo one; echo two; echo oops >&2; exit 3".into(),
            ],
            Path::new("/"),
            Duration::from_secs(10),
            CancellationToken::new(),
            |l| lines.push(l.to_owned()),
        )
        .await;
        assert_eq!(lines, ["one", "two"]);
        match ended {
            Ended::Exited {
                status,
                stderr_tail,
            } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr_tail.trim(), "oops");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn times_out_and_stops() {
        let t = run(
            Path::new("/bin/sleep"),
            &["30".into()],
            Path::new("/"),
            Duration::from_millis(200),
            CancellationToken::new(),
            |_| {},
        )
        .await;
        assert!(matches!(t, Ended::TimedOut));
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            s2.cancel();
        });
        let s = run(
            Path::new("/bin/sleep"),
            &["30".into()],
            Path::new("/"),
            Duration::from_secs(30),
            stop,
            |_| {},
        )
        .await;
        assert!(matches!(s, Ended::Stopped));
    }
}
