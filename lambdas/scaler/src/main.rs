//! The scaler binary. Under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set) it serves
//! invocations: each runs one tick (a scheduled slot from EventBridge or the tick queue, or an
//! extra tick for a lifecycle event) and, for a slot, asks the tick queue for the next one.
//! Otherwise `scaler loop --interval 2s` ticks on a local schedule and `scaler tick` ticks once
//! and prints the report. Every tick takes the same lease, so ticks never overlap.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lambda_runtime::{LambdaEvent, service_fn};
use renderfleet_core::aws::{AsgFleet, CloudWatchMetrics, DynamoStore, SqsQueue, SsmParameters};
use renderfleet_core::clock::now_ms;
use renderfleet_core::edge::{self, LogFormat};
use scaler::{Config, Deps, Ran, event, on_lifecycle, run_slot, slot_of};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "scaler",
    version,
    about = "renderfleet's scaler: observe, decide, set the desired capacity"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tick on a fixed schedule until SIGTERM or Ctrl-C (the local stack's stand-in for the
    /// EventBridge schedule).
    Loop {
        /// Time between ticks, e.g. 2s or 500ms.
        #[arg(long, default_value = "2s", value_parser = edge::parse_duration)]
        interval: Duration,
    },
    /// Tick once and print the report as JSON.
    Tick,
    /// Serve Lambda invocations (the default under the Lambda runtime).
    Lambda,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // Under Lambda, CloudWatch Logs adds its own timestamps.
    let format = if lambda {
        LogFormat::JsonUntimed
    } else {
        LogFormat::Json
    };
    edge::init_tracing(format, "info");
    let config = Config::from_env().context("scaler configuration")?;
    let serve = matches!(cli.command, Some(Command::Lambda)) || (lambda && cli.command.is_none());
    let deps = build_deps(&config, serve).await?;
    let holder = format!("scaler-{}", uuid::Uuid::new_v4());
    match cli.command {
        _ if serve => serve_lambda(deps, config, holder).await,
        None => anyhow::bail!("not under the Lambda runtime: use `scaler loop` or `scaler tick`"),
        Some(Command::Tick) => match run_slot(&deps, &config, None, &holder, &now_ms).await? {
            Ran::Ticked(report) => {
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(())
            }
            other => anyhow::bail!("no tick ran: {other:?} (another tick holds the lease)"),
        },
        Some(Command::Loop { interval }) => run_loop(deps, config, interval, holder).await,
        Some(Command::Lambda) => unreachable!("served above"),
    }
}

async fn build_deps(config: &Config, serve: bool) -> anyhow::Result<Deps> {
    let sdk = renderfleet_core::aws::default_config("scaler").await;
    let store = Arc::new(DynamoStore::new(&sdk, &config.names.table));
    let queue = SqsQueue::connect(&sdk, &config.names.queue)
        .await
        .with_context(|| format!("queue {}", config.names.queue))?;
    // Only the Lambda keeps its own schedule; the local loop is its own clock.
    let next: Option<Arc<dyn renderfleet_core::ports::TickQueue>> = if serve {
        let ticks = SqsQueue::connect(&sdk, &config.names.tick_queue)
            .await
            .with_context(|| format!("tick queue {}", config.names.tick_queue))?;
        Some(Arc::new(ticks))
    } else {
        None
    };
    let fleet = Arc::new(AsgFleet::new(&sdk, &config.names.asg));
    let ssm = Arc::new(SsmParameters::new(&sdk, config.names.clone()));
    Ok(Deps {
        work: store.clone(),
        ledger: store.clone(),
        queue: Arc::new(queue),
        fleet,
        agents: store.clone(),
        retirement: store.clone(),
        status: ssm.clone(),
        launcher: ssm,
        lease: store.clone(),
        next,
        memory: store,
        metrics: Arc::new(CloudWatchMetrics::new(&sdk, &config.names.env)),
        last_health: Default::default(),
    })
}

/// One invocation: scheduled slots (EventBridge's minute, or the tick queue's messages) tick
/// through the lease; a lifecycle event is handled, then ticks once extra. The result says what
/// ran; a tick-queue message is never failed back to SQS (a redelivery would only duplicate a
/// slot the chain already moved past), while a failed scheduled or lifecycle tick is an error so
/// Lambda's retry runs it again.
async fn invoke(
    deps: &Deps,
    config: &Config,
    holder: &str,
    payload: &Value,
) -> Result<Value, scaler::Error> {
    match event::classify(payload)? {
        event::Invocation::Lifecycle(ev) => {
            on_lifecycle(deps, config, &ev).await;
            let ran = run_slot(deps, config, None, holder, &now_ms).await?;
            Ok(summary(&ran))
        }
        event::Invocation::Tick => {
            let slot = slot_of(config, now_ms());
            let ran = run_slot(deps, config, Some(slot), holder, &now_ms).await?;
            Ok(summary(&ran))
        }
        event::Invocation::Slots(slots) => {
            let mut out = Vec::new();
            for slot in slots {
                match run_slot(deps, config, slot, holder, &now_ms).await {
                    Ok(ran) => out.push(summary(&ran)),
                    Err(e) => {
                        tracing::warn!(error = %e, slot, "tick failed; the next slot retries");
                        out.push(serde_json::json!({ "error": e.to_string() }));
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn summary(ran: &Ran) -> Value {
    match ran {
        Ran::Ticked(r) => serde_json::json!({ "ticked": true, "decision": r.decision }),
        Ran::Duplicate => serde_json::json!({ "ticked": false, "why": "slot already ran" }),
        Ran::Busy => serde_json::json!({ "ticked": false, "why": "another tick holds the lease" }),
    }
}

/// Serves invocations. A failure fails the invocation with an error type that says whether a
/// retry can help: `Retryable` (throttling, a timeout: Lambda's retry may succeed) or `Permanent`
/// (a missing table, a bad setting, an event we do not handle: fix the cause).
async fn serve_lambda(deps: Deps, config: Config, holder: String) -> anyhow::Result<()> {
    let deps = &deps;
    let config = &config;
    let holder = holder.as_str();
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        invoke(deps, config, holder, &ev.payload)
            .await
            .map_err(|e| {
                let error_type = if e.is_retryable() {
                    "Retryable"
                } else {
                    "Permanent"
                };
                if !e.is_retryable() {
                    tracing::error!(error = %e, "invocation failed; a retry would not help");
                }
                lambda_runtime::Diagnostic {
                    error_type: error_type.into(),
                    error_message: e.to_string(),
                }
            })
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

async fn run_loop(
    deps: Deps,
    config: Config,
    interval: Duration,
    holder: String,
) -> anyhow::Result<()> {
    let mut stop = std::pin::pin!(edge::shutdown_signal());
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(interval_ms = interval.as_millis() as u64, env = %config.names.env, "scaler loop started");
    loop {
        tokio::select! {
            _ = timer.tick() => {
                // An extra tick each time: the loop's interval, not the policy's slots, is the
                // local clock; the lease still keeps two loops from overlapping.
                match run_slot(&deps, &config, None, &holder, &now_ms).await {
                    Ok(Ran::Ticked(_)) => {}
                    Ok(other) => tracing::debug!(?other, "no tick"),
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "tick failed; the next one retries"),
                }
            }
            _ = &mut stop => break,
        }
    }
    tracing::info!("scaler loop stopped");
    Ok(())
}
