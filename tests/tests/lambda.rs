//! The scaler's Lambda handler as a real process behind the Lambda Runtime API, against the local
//! stack: a real EventBridge scheduled event runs several ticks inside one invocation and scales
//! the fleet out for a waiting job; a real Auto Scaling lifecycle event runs a tick at once; a
//! malformed event is a clear error and the function goes on serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use renderfleet_core::ports::Fleet;
use renderfleet_e2e::runtime_api::{Outcome, RuntimeApi, lifecycle_event};
use renderfleet_e2e::{Stack, bin_dir};
use serde_json::json;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_serves_scheduled_and_lifecycle_events_and_refuses_garbage()
-> anyhow::Result<()> {
    // The stack's own scaler decides but does not act, so every change is the handler's.
    let mut stack = Stack::start(&[
        "--max-workers",
        "3",
        "--tick",
        "1s",
        "--boot-delay",
        "1s",
        "--service-env",
        "RENDERFLEET_DRY_RUN=true",
    ])?;
    let api = RuntimeApi::start().await?;
    let spawned = Instant::now();
    let child = Command::new(bin_dir().join("scaler"))
        .envs(stack.service_env())
        .envs(api.function_env("renderfleet-local-scaler"))
        .envs([
            ("RENDERFLEET_MAX_WORKERS", "3"),
            ("RENDERFLEET_TICK_SECS", "1"),
            ("RENDERFLEET_BOOT_SECS", "1.5"),
            ("RENDERFLEET_TARGET_WAIT_SECS", "3"),
            ("RENDERFLEET_MIN_BILLED_SECS", "0"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut child = Killed(child);

    let fleet = stack.fleet().await;
    let (status, body) = stack
        .post_job(&json!({
            "output": { "width": 128, "height": 72, "fps": 10 },
            "scenes": [ { "duration": 1, "background": { "color": "#000000" } } ]
        }))
        .await?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        fleet.describe().await?.desired,
        0,
        "the dry-run loop did not act"
    );

    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/renderfleet-local-scaler"],
        "detail": {}
    });
    // A deadline of 6 s: the handler ticks every second until shortly before it.
    let out = api.invoke(scheduled, Duration::from_secs(6)).await?;
    let init = api
        .first_poll()
        .map(|t| t.duration_since(spawned).as_secs_f64() * 1000.0);
    let Outcome::Response(r) = out else {
        panic!("scheduled event failed: {out:?}");
    };
    let ticks = r["ticks"].as_u64().unwrap_or(0);
    assert!(ticks >= 2, "ticks inside one invocation: {r}");
    assert!(r["last"]["desired"].as_u64().unwrap_or(0) >= 1, "{r}");
    assert!(
        fleet.describe().await?.desired >= 1,
        "the handler scaled out"
    );

    let lifecycle = lifecycle_event(&stack.names.asg, "i-0123456789abcdef0", true);
    let started = Instant::now();
    let out = api.invoke(lifecycle, Duration::from_secs(6)).await?;
    let Outcome::Response(r) = out else {
        panic!("lifecycle event failed: {out:?}");
    };
    assert!(r["desired"].is_u64(), "a decision: {r}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "one tick, not a minute's worth"
    );

    let out = api
        .invoke(
            json!({"source": "aws.s3", "detail-type": "Object Created"}),
            Duration::from_secs(5),
        )
        .await?;
    let Outcome::Error(e) = out else {
        panic!("a malformed event was accepted: {out:?}");
    };
    assert!(
        e.to_string().contains("unsupported event"),
        "the error says what arrived: {e}"
    );
    let out = api.invoke(json!("hello"), Duration::from_secs(5)).await?;
    assert!(matches!(out, Outcome::Error(_)), "{out:?}");
    assert!(
        child.0.try_wait()?.is_none(),
        "the function is still serving"
    );
    assert!(api.init_error().is_none());
    eprintln!(
        "scaler handler: init {:.0} ms to the first poll (debug build), {ticks} ticks in a 6 s invocation",
        init.unwrap_or(f64::NAN)
    );
    stack.stop()?;
    Ok(())
}
