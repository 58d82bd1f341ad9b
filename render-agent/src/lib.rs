//! render-agent: the worker daemon of every render instance.
//!
//! Layout: [`config`] parses the environment once; [`engine`] is the seam to whatever renders
//! (ffmpeg planned from the spec, or an external renderer) with the pure ffmpeg planner in
//! `engine::plan`; [`worker`] is the loop (one [`worker::Agent::step`] at a time) with its lease
//! keeping, failure classification and drain; [`run`] ties them together with the health
//! reporter and the shutdown signal.

pub mod config;
pub mod engine;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use renderfleet_core::clock::now_ms;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use worker::{Agent, Deps, Shared, report_health};

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
                tracing::warn!(why, "termination notice: draining");
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
/// `unhealthy` until the check passes.
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
        deps.health.clone(),
        shared.clone(),
        cfg.clone(),
        instance.clone(),
        started_at,
        reporter_stop.clone(),
    ));

    loop {
        let check = self_check(&deps, &cfg).await;
        let ok = check.is_ok();
        shared.lock().unwrap_or_else(|p| p.into_inner()).engine_ok = ok;
        match check {
            Ok(()) => break,
            Err(e) => {
                tracing::error!(error = %e, "self-check failed; taking no work, retrying in 30 s")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    let hb = worker::heartbeat(&shared, &cfg, started_at, worker::disk_free(&cfg.work_dir));
    if let Err(e) = deps.health.report(&instance, &hb).await {
        tracing::warn!(error = %e, "could not write the first heartbeat");
    }
    tracing::info!(instance = %instance, slots = cfg.slots, "agent ready");
    if let Some(hook) = cfg
        .launch_hook
        .as_deref()
        .filter(|_| !shutdown.is_cancelled())
    {
        match deps.lifecycle.complete(hook, &instance, true).await {
            Ok(()) => tracing::info!(hook, "launch lifecycle action completed"),
            Err(e) => {
                tracing::warn!(hook, error = %e, "could not complete the launch lifecycle action; it times out instead")
            }
        }
    }

    let mut agent = Agent::new(deps.clone(), cfg.clone(), instance.clone(), shared.clone());
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match agent.step(&shutdown).await {
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
    reporter_stop.cancel();
    let _ = reporter.await;
    if let Err(e) = deps.health.withdraw(&instance).await {
        tracing::warn!(error = %e, "could not remove the heartbeat");
    }
    if let Some(hook) = &cfg.termination_hook {
        match deps.lifecycle.complete(hook, &instance, true).await {
            Ok(()) => tracing::info!(hook, "termination lifecycle action completed"),
            Err(e) => {
                tracing::warn!(hook, error = %e, "could not complete the termination lifecycle action; it times out instead")
            }
        }
    }
    tracing::info!("agent stopped");
    Ok(())
}

async fn self_check(deps: &Deps, cfg: &Config) -> Result<(), String> {
    let free = worker::disk_free(&cfg.work_dir);
    if free < cfg.min_free_disk {
        return Err(format!(
            "only {free} bytes free in {}",
            cfg.work_dir.display()
        ));
    }
    deps.engine.self_check(&cfg.work_dir).await
}
