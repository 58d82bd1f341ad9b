//! The README's own paths, run as a newcomer runs them: the commands of its local-stack block
//! verbatim from the repository root, with the default settings (no `RENDERFLEET_*` variable, the
//! relative default state directory `.renderfleet`, the default ports), and `scripts/build-lambda`'s
//! path logic with and without `CARGO_TARGET_DIR`.
//!
//! The environment keeps only what the machine itself provides (`PATH`, `HOME`, the toolchain's
//! homes) and `CARGO_TARGET_DIR` when the runner has one: without it the scripts would rebuild the
//! whole workspace into the clone's `target/`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use renderfleet_e2e::{ffprobe, repo_root};

/// Variables a newcomer's shell has; everything else (every `RENDERFLEET_*`, the runner's
/// `CARGO_*`) is removed.
const KEPT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "CARGO_TARGET_DIR",
];

fn newcomer(program: &str, cwd: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(cwd).env_clear().stdin(Stdio::null());
    for k in KEPT {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c
}

/// Runs `line` (one shell command line of the README) in `cwd`, killing it after `timeout`.
fn run_line(line: &str, cwd: &Path, timeout: Duration) -> anyhow::Result<Output> {
    let child = newcomer("bash", cwd)
        .args(["-c", line])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {line:?}"))?;
    wait_with_timeout(child, timeout).with_context(|| format!("running {line:?}"))
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> anyhow::Result<Output> {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let out = child.wait_with_output()?;
            bail!(
                "did not finish within {} s:\n{}{}",
                timeout.as_secs(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The command lines of the README's "The local stack" block, comments stripped.
fn local_stack_block(readme: &str) -> anyhow::Result<Vec<String>> {
    let section = readme
        .split("## The local stack")
        .nth(1)
        .context("README has no 'The local stack' section")?;
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .context("the local-stack section has no sh block")?;
    Ok(block
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Runs `scripts/dev-down` when dropped, so a failing test leaves no stack behind.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        match run_line("scripts/dev-down", &self.0, Duration::from_secs(200)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("dev-down: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("dev-down: {e:#}"),
        }
    }
}

#[test]
fn the_readme_local_stack_block_renders_a_job_as_written() -> anyhow::Result<()> {
    let root = repo_root();
    let lines = local_stack_block(&std::fs::read_to_string(root.join("README.md"))?)?;
    ensure!(
        lines.first().map(String::as_str) == Some("scripts/dev-up")
            && lines.last().map(String::as_str) == Some("scripts/dev-down"),
        "the README's local-stack block changed shape: {lines:?}"
    );
    ensure!(
        !root.join(".renderfleet/stack.json").exists(),
        "a local stack is recorded in {}: stop it with scripts/dev-down before running this test",
        root.join(".renderfleet").display()
    );
    for port in [5055, 8787] {
        ensure!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is in use; the README's defaults need it free"
        );
    }
    let down = DownOnDrop(root.clone());
    let mut job_id: Option<String> = None;
    for line in &lines[..lines.len() - 1] {
        let line = match (&job_id, line.contains("<job id>")) {
            (Some(id), true) => line.replace("<job id>", id),
            (None, true) => bail!("{line:?} needs a job id, and no command before it printed one"),
            (_, false) => line.clone(),
        };
        let out = run_line(&line, &root, Duration::from_secs(600))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "{line:?} exited {}:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if line.contains(" submit ") {
            let id = stdout
                .lines()
                .find(|l| l.starts_with("job_"))
                .with_context(|| format!("{line:?} printed no job id: {stdout}"))?;
            job_id = Some(id.trim().to_owned());
        }
        if line.contains(" status ") {
            ensure!(
                stdout.contains("succeeded"),
                "status does not say succeeded: {stdout}"
            );
        }
    }
    let id = job_id.context("the block submitted no job")?;
    let video = root.join("out").join(format!("{id}.mp4"));
    let probe = ffprobe(&video)?;
    ensure!(
        probe.video_codec == "h264" && probe.duration > 1.0,
        "{probe:?}"
    );
    drop(down);
    ensure!(
        !root.join(".renderfleet/stack.json").exists(),
        "scripts/dev-down left the stack recorded"
    );
    std::fs::remove_file(&video)?;
    Ok(())
}

/// A stand-in for `cargo` that does what `cargo lambda build` does to the file system: writes the
/// zip under `--lambda-dir`, and records its arguments.
const FAKE_CARGO: &str = r#"#!/usr/bin/env bash
set -eu
echo "$*" >> "$FAKE_LOG"
dir=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--lambda-dir" ]; then dir="$2"; fi
  shift
done
mkdir -p "$dir/scaler"
printf 'zip of the scaler' > "$dir/scaler/bootstrap.zip"
"#;

fn build_lambda_in(copy: &Path, target_dir: Option<&Path>) -> anyhow::Result<Output> {
    let mut c = newcomer("bash", copy);
    c.env_remove("CARGO_TARGET_DIR")
        .arg(copy.join("scripts/build-lambda"))
        .env("FAKE_LOG", copy.join("cargo.log"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                copy.join("fake-bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    if let Some(t) = target_dir {
        c.env("CARGO_TARGET_DIR", t);
    }
    Ok(c.output()?)
}

#[test]
fn build_lambda_leaves_the_zip_where_terraform_reads_it_with_or_without_a_target_dir()
-> anyhow::Result<()> {
    let root = repo_root();
    let tmp = tempfile::tempdir()?;
    let copy = tmp.path().join("repo");
    std::fs::create_dir_all(copy.join("scripts"))?;
    for f in ["lib.sh", "build-lambda"] {
        std::fs::copy(root.join("scripts").join(f), copy.join("scripts").join(f))?;
    }
    // cargo-lambda counts as installed; cargo itself is the stand-in.
    std::fs::create_dir_all(copy.join(".venv/bin"))?;
    std::fs::create_dir_all(copy.join("fake-bin"))?;
    for (path, text) in [
        (copy.join(".venv/bin/cargo-lambda"), "#!/bin/sh\nexit 0\n"),
        (copy.join("fake-bin/cargo"), FAKE_CARGO),
    ] {
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let zip = copy.join("target/lambda/scaler/bootstrap.zip");

    // The user's default: no CARGO_TARGET_DIR, so cargo-lambda writes the zip in place.
    let out = build_lambda_in(&copy, None)?;
    ensure!(
        out.status.success(),
        "build-lambda without CARGO_TARGET_DIR exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(std::fs::read_to_string(&zip)? == "zip of the scaler");
    std::fs::remove_file(&zip)?;

    // A target dir elsewhere: the zip is copied to where Terraform reads it.
    let elsewhere = tmp.path().join("elsewhere");
    let out = build_lambda_in(&copy, Some(&elsewhere))?;
    ensure!(
        out.status.success(),
        "build-lambda with CARGO_TARGET_DIR exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(std::fs::read_to_string(&zip)? == "zip of the scaler");
    ensure!(elsewhere.join("lambda/scaler/bootstrap.zip").is_file());

    let log = std::fs::read_to_string(copy.join("cargo.log"))?;
    let calls: Vec<&str> = log.lines().collect();
    ensure!(calls.len() == 2, "{calls:?}");
    for call in calls {
        for part in [
            "lambda build",
            "--release",
            "--x86-64",
            "--bin scaler",
            "--output-format zip",
        ] {
            ensure!(
                call.contains(part),
                "cargo was called without {part}: {call}"
            );
        }
    }
    Ok(())
}
