//! render-agent: the worker daemon of every render instance.
//!
//! Layout: [`config`] parses the environment once; [`engine`] is the seam to whatever renders
//! (ffmpeg planned from the spec, or an external renderer) with the pure ffmpeg planner in
//! `engine::plan`; [`worker`] is the loop (one [`worker::Agent::step`] at a time) with its lease
//! keeping, failure classification and drain; [`run`] ties them together with the health
//! reporter and the shutdown signal.

pub mod config;
pub mod engine;
pub mod error;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use renderfleet_core::clock::{EpochMillis, now_ms};
use renderfleet_core::events;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;
use worker::{Agent, Deps, Shared, report_health};

/// Instance metadata where there is none (the local stack, tests): no notice, no target state.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetadata;

#[async_trait::async_trait]
impl renderfleet_core::ports::TerminationNotice for NoMetadata {
    async fn pending(&self) -> renderfleet_core::Result<Option<String>> {
        Ok(None)
    }
    async fn target_state(&self) -> renderfleet_core::Result<Option<String>> {
        Ok(None)
    }
}

/// Drains the agent when the cloud announces this instance is going (polls every 5 s).
pub async fn watch_termination(
    notice: Arc<dyn renderfleet_core::ports::TerminationNotice>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.cancelled() => return,
        }
        match notice.pending().await {
            Ok(Some(why)) => {
                tracing::warn!(
                    event = events::AGENT_DRAINING,
                    why,
                    "termination notice: draining"
                );
                shutdown.cancel();
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "instance metadata unreadable"),
        }
    }
}

/// Runs the agent until `shutdown` fires, then drains and returns.
///
/// Before taking any job it checks itself (engine, a test render, free disk) and reports
/// `unhealthy` until the check passes; then it completes the launch lifecycle hook and serves. An instance
/// the group is preparing for its warm pool checks itself, completes that hook and takes no work;
/// one the group is terminating takes no work either.
pub async fn run(
    deps: Deps,
    cfg: Config,
    instance: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    std::fs::create_dir_all(&cfg.work_dir)?;
    let started_at = now_ms();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let reporter_stop = CancellationToken::new();
    let reporter = tokio::spawn(report_health(
        deps.clone(),
        shared.clone(),
        cfg.clone(),
        instance.clone(),
        started_at,
        reporter_stop.clone(),
    ));
    if get_ready(&deps, &cfg, &instance, &shared, started_at, &shutdown).await {
        serve(&deps, &cfg, &instance, &shared, &shutdown).await;
    } else {
        shutdown.cancelled().await;
    }
    reporter_stop.cancel();
    let _ = reporter.await;
    leave(&deps, &cfg, &instance).await;
    tracing::info!("agent stopped");
    Ok(())
}

/// Checks the agent until it passes, writes the first heartbeat and completes the launch hook;
/// `true` when the agent is to serve (the group puts the instance in service, or has it
/// already), `false` when it is not (terminating, or shutdown first).
async fn get_ready(
    deps: &Deps,
    cfg: &Arc<Config>,
    instance: &str,
    shared: &worker::SharedState,
    started_at: EpochMillis,
    shutdown: &CancellationToken,
) -> bool {
    let target = target_state(deps).await;
    check_until_ok(deps, cfg, shared, shutdown).await;
    let hb = worker::heartbeat(shared, cfg, started_at, worker::disk_free(&cfg.work_dir));
    if let Err(e) = deps.health.report(instance, &hb).await {
        tracing::warn!(error = %e, "could not write the first heartbeat");
    }
    let serving = match target.as_deref() {
        Some("Terminated" | "Warmed:Terminated") => {
            tracing::warn!("the group is terminating this instance; taking no work");
            false
        }
        Some(t) if t.starts_with("Warmed:") => {
            complete_launch_hook(deps, cfg, instance, shutdown).await;
            tracing::info!(
                target = t,
                "prepared for the warm pool; taking no work until the group puts this instance in service"
            );
            wait_for_target_in_service(deps, shutdown).await
        }
        _ => true,
    };
    // Serving starts as the hook completes: the group moves the instance to InService by itself
    // (Pending:Proceed, then InService), and nothing the agent does needs to wait for it.
    serving && {
        complete_launch_hook(deps, cfg, instance, shutdown).await;
        !shutdown.is_cancelled()
    }
}

/// Takes work, one [`Agent::step`] at a time (backing off after a failed one), until shutdown;
/// then drains.
async fn serve(
    deps: &Deps,
    cfg: &Arc<Config>,
    instance: &str,
    shared: &worker::SharedState,
    shutdown: &CancellationToken,
) {
    tracing::info!(instance = %instance, slots = cfg.slots, "agent ready");
    let mut agent = Agent::new(
        deps.clone(),
        cfg.clone(),
        instance.to_owned(),
        shared.clone(),
    );
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match agent.step(shutdown).await {
            Ok(_) => backoff = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "step failed; backing off");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    agent.drain().await;
}

/// Withdraws the heartbeat and completes the termination hook, when one is configured.
async fn leave(deps: &Deps, cfg: &Config, instance: &str) {
    if let Err(e) = deps.health.withdraw(instance).await {
        tracing::warn!(error = %e, "could not remove the heartbeat");
    }
    if let Some(hook) = &cfg.termination_hook {
        match deps.lifecycle.complete(hook, instance, true).await {
            Ok(()) => tracing::info!(hook, "termination lifecycle action completed"),
            Err(e) => {
                tracing::warn!(hook, error = %e, "could not complete the termination lifecycle action; it times out instead")
            }
        }
    }
}

/// The group's target state for this instance; `None` when it cannot tell (no instance metadata,
/// as on the local stack).
async fn target_state(deps: &Deps) -> Option<String> {
    match deps.notice.target_state().await {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "target lifecycle state unreadable");
            None
        }
    }
}

/// Runs the self-check until it passes (every 30 s) or shutdown.
async fn check_until_ok(
    deps: &Deps,
    cfg: &Config,
    shared: &worker::SharedState,
    shutdown: &CancellationToken,
) {
    loop {
        let check = self_check(deps, cfg).await;
        {
            let mut s = worker::lock(shared);
            s.engine_ok = check.is_ok();
            s.checked = true;
            s.check_error = check.as_ref().err().map(ToString::to_string);
        }
        match check {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "self-check failed; taking no work, retrying in 30 s")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Completes the launch hook (CONTINUE), when one is configured.
async fn complete_launch_hook(
    deps: &Deps,
    cfg: &Config,
    instance: &str,
    shutdown: &CancellationToken,
) {
    let Some(hook) = cfg.launch_hook.as_deref() else {
        return;
    };
    if shutdown.is_cancelled() {
        return;
    }
    // Retried while it is throttled (a fleet launched at once completes its hooks together,
    // against Auto Scaling's one shared rate): a hook left to time out abandons the instance.
    let mut delay = Duration::from_millis(500);
    loop {
        match deps.lifecycle.complete(hook, instance, true).await {
            Ok(()) => {
                tracing::info!(hook, "launch lifecycle action completed");
                return;
            }
            Err(e) if e.is_retryable() => {
                let wait = delay.mul_f64(0.5 + rand::random::<f64>());
                tracing::warn!(hook, error = %e, retry_in_ms = wait.as_millis() as u64, "could not complete the launch lifecycle action yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                tracing::warn!(hook, error = %e, "could not complete the launch lifecycle action; it times out instead");
                return;
            }
        }
    }
}

/// Polls the instance's target state until the group means it to serve (`true`), or shutdown.
async fn wait_for_target_in_service(deps: &Deps, shutdown: &CancellationToken) -> bool {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.cancelled() => return false,
        }
        if target_state(deps).await.as_deref() == Some("InService") {
            return true;
        }
    }
}

async fn self_check(deps: &Deps, cfg: &Config) -> Result<(), Error> {
    let free = worker::disk_free(&cfg.work_dir);
    if free < cfg.min_free_disk {
        return Err(Error::LowDisk {
            free,
            dir: cfg.work_dir.clone(),
        });
    }
    deps.engine.self_check(&cfg.work_dir).await
}
