//! The fleet supervisor: the emulator's instances are only records, so for each instance of the
//! worker group that is launching or in service it starts a real `render-agent` process bound to
//! that instance id (an agent on EC2 starts while its instance is still Pending, held by the launch
//! hook until its self-check passes: the AWS-rules mode emulates that),
//! after a simulated boot delay; when the group drops an instance it sends SIGTERM to that agent
//! and waits for it to exit, as EC2 would on termination. An agent that dies while its instance is
//! in service is restarted after two seconds, as the agent's systemd unit does on a worker.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use renderfleet_core::ports::{Fleet, Lifecycle};

use super::process::{self, Recorded};
use super::stack::{AgentTable, agents_file, logs_dir, write_atomic};

/// Settings of `dev supervise`.
#[derive(Clone, Debug)]
pub struct SupervisorOptions {
    pub state_dir: PathBuf,
    pub agent_bin: PathBuf,
    pub boot_delay: Duration,
    pub slots: u32,
    pub poll: Duration,
    /// How long a stopping agent may take before SIGKILL (its drain grace and a margin).
    pub stop_timeout: Duration,
}

const RESTART_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Slot {
    /// When the agent may (re)start.
    start_at: Instant,
    child: Option<Child>,
    /// When SIGTERM was sent, once the instance left the group.
    stopping_since: Option<Instant>,
}

/// Runs until SIGTERM, then stops every agent and returns.
pub async fn run(opts: SupervisorOptions, fleet: &dyn Fleet) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    let agent_logs = logs_dir(&opts.state_dir).join("agents");
    std::fs::create_dir_all(&agent_logs)?;
    write_table(&opts, &slots)?;
    tracing::info!(
        boot_delay_ms = opts.boot_delay.as_millis() as u64,
        "fleet supervisor started"
    );
    let mut timer = tokio::time::interval(opts.poll);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = term.recv() => break,
        }
        let in_service: HashSet<String> = match fleet.describe().await {
            Ok(state) => state
                .instances
                .into_iter()
                .filter(|i| matches!(i.lifecycle, Lifecycle::InService | Lifecycle::Pending))
                .map(|i| i.id)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot describe the worker group; keeping agents as they are");
                continue;
            }
        };
        let now = Instant::now();
        for id in &in_service {
            slots.entry(id.clone()).or_insert_with(|| {
                tracing::info!(instance = %id, "instance in service; booting");
                Slot {
                    start_at: now + opts.boot_delay,
                    child: None,
                    stopping_since: None,
                }
            });
        }
        for (id, slot) in slots.iter_mut() {
            let wanted = in_service.contains(id);
            if let Some(child) = slot.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                slot.child = None;
                if wanted && slot.stopping_since.is_none() {
                    tracing::warn!(instance = %id, %status, "agent exited while its instance is in service; restarting");
                    slot.start_at = now + RESTART_DELAY;
                } else {
                    tracing::info!(instance = %id, %status, "agent stopped");
                }
            }
            if !wanted {
                if let Some(child) = slot.child.as_mut() {
                    match slot.stopping_since {
                        None => {
                            tracing::info!(instance = %id, pid = child.id(), "instance left the group; sending SIGTERM");
                            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
                            slot.stopping_since = Some(now);
                        }
                        Some(since) if now.duration_since(since) > opts.stop_timeout => {
                            tracing::warn!(instance = %id, "agent did not stop in time; killing it");
                            let _ = child.kill();
                        }
                        Some(_) => {}
                    }
                }
                continue;
            }
            if slot.child.is_none() && now >= slot.start_at {
                match spawn_agent(&opts, id, &agent_logs) {
                    Ok(child) => {
                        tracing::info!(instance = %id, pid = child.id(), "agent started");
                        slot.child = Some(child);
                    }
                    Err(e) => {
                        tracing::error!(instance = %id, error = format!("{e:#}"), "cannot start agent");
                        slot.start_at = now + RESTART_DELAY;
                    }
                }
            }
        }
        slots.retain(|id, slot| in_service.contains(id) || slot.child.is_some());
        write_table(&opts, &slots)?;
    }
    shutdown(&opts, &mut slots)?;
    Ok(())
}

fn spawn_agent(
    opts: &SupervisorOptions,
    id: &str,
    logs: &std::path::Path,
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{id}.log")))?;
    let work = opts.state_dir.join("work").join(id);
    std::fs::create_dir_all(&work)?;
    Command::new(&opts.agent_bin)
        .env("RENDERFLEET_INSTANCE_ID", id)
        .env("RENDERFLEET_SLOTS", opts.slots.to_string())
        .env("RENDERFLEET_WORK_DIR", &work)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", opts.agent_bin.display()))
}

fn write_table(opts: &SupervisorOptions, slots: &BTreeMap<String, Slot>) -> anyhow::Result<()> {
    let program = process::file_name(&opts.agent_bin);
    let table = AgentTable {
        agents: slots
            .iter()
            .filter_map(|(id, s)| {
                s.child.as_ref().map(|c| {
                    (
                        id.clone(),
                        Recorded {
                            pid: c.id(),
                            program: program.clone(),
                        },
                    )
                })
            })
            .collect(),
    };
    write_atomic(
        &agents_file(&opts.state_dir),
        &serde_json::to_string_pretty(&table)?,
    )
}

fn shutdown(opts: &SupervisorOptions, slots: &mut BTreeMap<String, Slot>) -> anyhow::Result<()> {
    tracing::info!(
        agents = slots.values().filter(|s| s.child.is_some()).count(),
        "stopping every agent"
    );
    for slot in slots.values_mut() {
        if let Some(c) = slot.child.as_ref() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + opts.stop_timeout;
    for slot in slots.values_mut() {
        if let Some(child) = slot.child.as_mut() {
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        slot.child = None;
    }
    write_table(opts, slots)?;
    tracing::info!("fleet supervisor stopped");
    Ok(())
}
