//! The scaler binary. Under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set) it serves
//! invocations; otherwise `scaler loop --interval 2s` ticks on a local schedule and `scaler tick`
//! ticks once and prints the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use lambda_runtime::{LambdaEvent, service_fn};
use renderfleet_core::aws::{AsgFleet, CloudWatchMetrics, DynamoStore, SqsQueue, SsmParameters};
use renderfleet_core::clock::now_ms;
use scaler::{Config, Deps, event, on_lifecycle, tick};
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
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// Tick once and print the report as JSON.
    Tick,
    /// Serve Lambda invocations (the default under the Lambda runtime).
    Lambda,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 2s or 500ms)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("unknown unit in {s:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_tracing(lambda);
    let config = Config::from_env().context("scaler configuration")?;
    let deps = build_deps(&config).await?;
    match cli.command {
        Some(Command::Lambda) => serve_lambda(deps, config).await,
        None if lambda => serve_lambda(deps, config).await,
        None => anyhow::bail!("not under the Lambda runtime: use `scaler loop` or `scaler tick`"),
        Some(Command::Tick) => {
            let report = tick(&deps, &config, now_ms()).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Some(Command::Loop { interval }) => run_loop(deps, config, interval).await,
    }
}

fn init_tracing(lambda: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RENDERFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true);
    if lambda {
        // CloudWatch Logs adds its own timestamps.
        builder.without_time().init();
    } else {
        builder.init();
    }
}

async fn build_deps(config: &Config) -> anyhow::Result<Deps> {
    let sdk = renderfleet_core::aws::default_config().await;
    let store = Arc::new(DynamoStore::new(&sdk, &config.names.table));
    let queue = SqsQueue::connect(&sdk, &config.names.queue)
        .await
        .with_context(|| format!("queue {}", config.names.queue))?;
    let fleet = Arc::new(AsgFleet::new(&sdk, &config.names.asg));
    let ssm = Arc::new(SsmParameters::new(&sdk, config.names.clone()));
    Ok(Deps {
        work: store.clone(),
        ledger: store.clone(),
        queue: Arc::new(queue),
        fleet,
        agents: ssm.clone(),
        launcher: ssm,
        memory: store,
        metrics: Arc::new(CloudWatchMetrics::new(&sdk, &config.names.env)),
    })
}

/// One invocation. EventBridge schedules run at most once a minute, so a scheduled invocation
/// ticks every `tick_secs` until shortly before the next one is due (reserved concurrency 1 keeps
/// invocations from overlapping); a lifecycle event ticks once at once, so the fleet re-plans
/// the moment an instance launches or leaves.
async fn invoke(
    deps: &Deps,
    config: &Config,
    payload: &Value,
    deadline: Instant,
) -> anyhow::Result<Value> {
    match event::classify(payload)? {
        event::Invocation::Lifecycle(ev) => {
            let report = on_lifecycle(deps, config, &ev, now_ms()).await?;
            Ok(serde_json::to_value(&report.decision)?)
        }
        event::Invocation::Tick => {
            let every = Duration::from_secs_f64(config.policy.tick_secs.max(1.0));
            // The last tick starts before the next scheduled invocation and the Lambda deadline.
            let until = (Instant::now() + Duration::from_secs(58)).min(deadline);
            let mut ticks = 0u32;
            let mut last = None;
            loop {
                let started = Instant::now();
                match tick(deps, config, now_ms()).await {
                    Ok(r) => last = Some(r.decision),
                    Err(e) if ticks > 0 => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "tick failed; the next one retries"
                        )
                    }
                    Err(e) => return Err(e),
                }
                ticks += 1;
                let next = started + every;
                if next >= until {
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
            }
            Ok(serde_json::json!({ "ticks": ticks, "last": last }))
        }
    }
}

async fn serve_lambda(deps: Deps, config: Config) -> anyhow::Result<()> {
    let deps = &deps;
    let config = &config;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        let left = ev
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        let deadline = Instant::now() + left.saturating_sub(Duration::from_secs(3));
        invoke(deps, config, &ev.payload, deadline)
            .await
            .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

async fn run_loop(deps: Deps, config: Config, interval: Duration) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(interval_ms = interval.as_millis() as u64, env = %config.names.env, "scaler loop started");
    loop {
        tokio::select! {
            _ = timer.tick() => {
                if let Err(e) = tick(&deps, &config, now_ms()).await {
                    tracing::warn!(error = format!("{e:#}"), "tick failed; the next one retries");
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("scaler loop stopped");
    Ok(())
}
