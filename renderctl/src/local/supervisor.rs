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
use nix::sys::signal::Signal;
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

impl Slot {
    /// Notes an agent that exited; one that exited while its instance is still wanted, and not
    /// asked to stop, is started again after [`RESTART_DELAY`].
    fn reap(&mut self, id: &str, wanted: bool, now: Instant) {
        let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) else {
            return;
        };
        self.child = None;
        if wanted && self.stopping_since.is_none() {
            tracing::warn!(instance = %id, %status, "agent exited while its instance is in service; restarting");
            self.start_at = now + RESTART_DELAY;
        } else {
            tracing::info!(instance = %id, %status, "agent stopped");
        }
    }

    /// The instance left the group: SIGTERM to its agent, as EC2 sends on termination, then
    /// SIGKILL once `stop_timeout` has passed.
    fn stop(&mut self, id: &str, now: Instant, stop_timeout: Duration) {
        let Some(child) = self.child.as_ref() else {
            return;
        };
        match self.stopping_since {
            None => {
                tracing::info!(instance = %id, pid = child.id(), "instance left the group; sending SIGTERM");
                process::signal_child(child, Signal::SIGTERM);
                self.stopping_since = Some(now);
            }
            Some(since) if now.duration_since(since) > stop_timeout => {
                tracing::warn!(instance = %id, "agent did not stop in time; killing it");
                process::signal_child(child, Signal::SIGKILL);
            }
            Some(_) => {}
        }
    }
}

/// The agents of the instances the group has, by instance id.
#[derive(Debug)]
struct Supervisor {
    opts: SupervisorOptions,
    agent_logs: PathBuf,
    slots: BTreeMap<String, Slot>,
}

/// Runs until SIGTERM, then stops every agent and returns.
pub async fn run(opts: SupervisorOptions, fleet: &dyn Fleet) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut timer = tokio::time::interval(opts.poll);
    let mut supervisor = Supervisor::new(opts)?;
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = term.recv() => break,
        }
        let Some(wanted) = wanted_instances(fleet).await else {
            continue;
        };
        supervisor.reconcile(&wanted, Instant::now());
        supervisor.write_table()?;
    }
    supervisor.shutdown()
}

/// The instances that should run an agent: launching or in service. `None` when the group cannot
/// be described (the agents are then kept as they are).
async fn wanted_instances(fleet: &dyn Fleet) -> Option<HashSet<String>> {
    match fleet.describe().await {
        Ok(state) => Some(
            state
                .instances
                .into_iter()
                .filter(|i| matches!(i.lifecycle, Lifecycle::InService | Lifecycle::Pending))
                .map(|i| i.id)
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot describe the worker group; keeping agents as they are");
            None
        }
    }
}

impl Supervisor {
    fn new(opts: SupervisorOptions) -> anyhow::Result<Self> {
        let agent_logs = logs_dir(&opts.state_dir).join("agents");
        std::fs::create_dir_all(&agent_logs)?;
        let supervisor = Self {
            opts,
            agent_logs,
            slots: BTreeMap::new(),
        };
        supervisor.write_table()?;
        tracing::info!(
            boot_delay_ms = supervisor.opts.boot_delay.as_millis() as u64,
            "fleet supervisor started"
        );
        Ok(supervisor)
    }

    /// One poll: boots agents for new instances, reaps and restarts exited ones, stops those whose
    /// instance left, and forgets instances that are gone with their agent.
    fn reconcile(&mut self, wanted: &HashSet<String>, now: Instant) {
        for id in wanted {
            self.slots.entry(id.clone()).or_insert_with(|| {
                tracing::info!(instance = %id, "instance in service; booting");
                Slot {
                    start_at: now + self.opts.boot_delay,
                    child: None,
                    stopping_since: None,
                }
            });
        }
        for (id, slot) in self.slots.iter_mut() {
            let in_group = wanted.contains(id);
            slot.reap(id, in_group, now);
            if !in_group {
                slot.stop(id, now, self.opts.stop_timeout);
            } else if slot.child.is_none() && now >= slot.start_at {
                match spawn_agent(&self.opts, id, &self.agent_logs) {
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
        self.slots
            .retain(|id, slot| wanted.contains(id) || slot.child.is_some());
    }

    fn write_table(&self) -> anyhow::Result<()> {
        let program = process::file_name(&self.opts.agent_bin);
        let agents = self
            .slots
            .iter()
            .filter_map(|(id, s)| {
                let pid = s.child.as_ref()?.id();
                let program = program.clone();
                Some((id.clone(), Recorded { pid, program }))
            })
            .collect();
        write_atomic(
            &agents_file(&self.opts.state_dir),
            &serde_json::to_string_pretty(&AgentTable { agents })?,
        )
    }

    /// SIGTERM to every agent at once, SIGKILL to those still running after `stop_timeout`.
    fn shutdown(mut self) -> anyhow::Result<()> {
        let children = self.slots.values_mut().filter_map(|s| s.child.as_mut());
        let children: Vec<&mut Child> = children.collect();
        tracing::info!(agents = children.len(), "stopping every agent");
        process::stop_children(children, self.opts.stop_timeout);
        for slot in self.slots.values_mut() {
            slot.child = None;
        }
        self.write_table()?;
        tracing::info!("fleet supervisor stopped");
        Ok(())
    }
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
