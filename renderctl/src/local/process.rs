//! Processes of the local stack: started detached with their output in a log file, recorded by
//! pid, and stopped by pid only, after checking the pid still belongs to the program we started
//! (pids are reused).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process the stack started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub pid: u32,
    /// The program's file name, checked against `/proc/<pid>/cmdline` before any signal.
    pub program: String,
}

/// Starts `program` in its own process group (so a Ctrl-C in the terminal that ran `dev up`
/// does not reach it), with stdin closed and stdout and stderr appended to `log`.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
) -> anyhow::Result<Recorded> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(Recorded {
        pid: child.id(),
        program: file_name(program),
    })
}

pub fn file_name(program: &Path) -> String {
    program
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether `pid` runs (zombies do not count).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `rec.pid` is alive and still runs `rec.program`.
pub fn is_ours(rec: &Recorded) -> bool {
    if !is_alive(rec.pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", rec.pid)) else {
        return false;
    };
    cmdline
        .split(|b| *b == 0)
        .take(2)
        .any(|arg| String::from_utf8_lossy(arg).contains(rec.program.as_str()))
}

/// Sends `signal` to `rec` if it is still ours.
pub fn signal(rec: &Recorded, signal: Signal) -> bool {
    is_ours(rec) && send(rec.pid, signal)
}

/// Sends `signal` to a child of this process. Its pid cannot have been reused: a child that
/// exited keeps it, as a zombie, until it is reaped.
pub fn signal_child(child: &Child, signal: Signal) -> bool {
    send(child.id(), signal)
}

fn send(pid: u32, signal: Signal) -> bool {
    i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), signal).is_ok())
}

/// Stops `rec`: SIGTERM, then SIGKILL if it has not exited within `grace`. Returns whether it had
/// to be killed.
pub fn stop(rec: &Recorded, grace: Duration) -> bool {
    if !signal(rec, Signal::SIGTERM) {
        return false;
    }
    if wait_gone(rec.pid, grace) {
        return false;
    }
    signal(rec, Signal::SIGKILL);
    wait_gone(rec.pid, Duration::from_secs(5));
    true
}

/// Stops children of this process together: SIGTERM to each, then SIGKILL to those still running
/// after `grace`; reaps every one. Returns how many had to be killed.
pub fn stop_children<'a>(
    children: impl IntoIterator<Item = &'a mut Child>,
    grace: Duration,
) -> usize {
    let mut children: Vec<&mut Child> = children.into_iter().collect();
    for child in &children {
        signal_child(child, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut killed = 0;
    for child in &mut children {
        if !wait_until(deadline, || {
            matches!(child.try_wait(), Ok(Some(_)) | Err(_))
        }) {
            signal_child(child, Signal::SIGKILL);
            killed += 1;
        }
        let _ = child.wait();
    }
    killed
}

/// Waits until `pid` is gone, up to `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    wait_until(Instant::now() + timeout, || !is_alive(pid))
}

/// Checks `done` every 50 ms until it holds or `deadline` passes; returns whether it held.
fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (there is a short window in which another process could take it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_checks_and_stops_a_process_by_pid() {
        let dir = tempfile_dir();
        let log = dir.join("sleep.log");
        let rec = spawn_detached(Path::new("/bin/sleep"), &["30".into()], &[], &log).unwrap();
        // Between fork and exec the child still shows the parent's command line.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_ours(&rec) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_ours(&rec));
        let other = Recorded {
            pid: rec.pid,
            program: "definitely-not-sleep".into(),
        };
        assert!(
            !is_ours(&other),
            "a pid running another program is not ours"
        );
        assert!(!signal(&other, Signal::SIGTERM));
        assert!(!stop(&rec, Duration::from_secs(5)));
        // The child is ours to reap; once reaped or a zombie it no longer counts as alive.
        assert!(wait_gone(rec.pid, Duration::from_secs(5)));
    }

    #[test]
    fn stops_children_together_and_kills_those_that_ignore_sigterm() {
        let mut polite = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let mut stubborn = Command::new("/bin/sh")
            .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
            .spawn()
            .unwrap();
        // The shell must have set its trap before the SIGTERM arrives.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let killed = stop_children([&mut polite, &mut stubborn], Duration::from_secs(1));
        assert_eq!(killed, 1, "only the shell ignoring SIGTERM is killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(polite.try_wait().unwrap().is_some());
        assert!(stubborn.try_wait().unwrap().is_some());
        assert!(!is_alive(polite.id()) && !is_alive(stubborn.id()));
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("renderctl-proc-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
