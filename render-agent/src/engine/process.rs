//! Running an engine process: no shell, stdin closed, killed on drop, with a wall-clock limit,
//! progress parsed from stdout and the tail of stderr kept for error messages.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

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
