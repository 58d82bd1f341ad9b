//! The scaler's Lambda handler as a real process behind the Lambda Runtime API, against the local
//! stack: a real EventBridge scheduled event runs one tick for the current slot, scales the fleet
//! out for a waiting job and sends the next slot to the tick queue; that message, delivered as an
//! SQS event, runs the next slot once (a redelivery is dropped); a real Auto Scaling lifecycle
//! event runs one extra tick at once; a malformed event is a clear error and the function goes on
//! serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use renderctl::local::process;
use renderfleet_core::aws::SqsQueue;
use renderfleet_core::ports::{Fleet, JobSource, QueueDepth};
use renderfleet_e2e::runtime_api::{Outcome, RuntimeApi, lifecycle_event};
use renderfleet_e2e::{Stack, alive, bin_dir};
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
    // The stack's own scaler loop is stopped, so every tick and change is the handler's.
    let mut stack = Stack::start(&["--max-workers", "3", "--tick", "1s", "--boot-delay", "1s"])?;
    let loop_pid = stack.service_pids()[2];
    anyhow::ensure!(
        process::signal(&stack.recorded.scaler, Signal::SIGTERM),
        "the stack's scaler loop does not run"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(loop_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(!alive(loop_pid), "the stack's scaler loop did not stop");
    let api = RuntimeApi::start().await?;
    let spawned = Instant::now();
    let child = Command::new(bin_dir().join("scaler"))
        .envs(stack.service_env())
        .envs(api.function_env("renderfleet-local-scaler"))
        .envs([
            ("RENDERFLEET_MAX_WORKERS", "3"),
            // Slots of 3 s: the chained slot and its redelivery below must fall in one slot
            // (a redelivery arriving in a later slot that has not ticked yet rightly ticks it),
            // and on a loaded machine one tick and two invocations can outlast a 1 s slot.
            ("RENDERFLEET_TICK_SECS", "3"),
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
    assert_eq!(fleet.describe().await?.desired, 0, "nothing acted yet");

    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/renderfleet-local-scaler"],
        "detail": {}
    });
    let invoked = Instant::now();
    let out = api.invoke(scheduled, Duration::from_secs(10)).await?;
    let tick_secs = invoked.elapsed().as_secs_f64();
    let init = api
        .first_poll()
        .map(|t| t.duration_since(spawned).as_secs_f64() * 1000.0);
    let Outcome::Response(r) = out else {
        panic!("scheduled event failed: {out:?}");
    };
    assert_eq!(r["ticked"], true, "{r}");
    assert!(r["decision"]["desired"].as_u64().unwrap_or(0) >= 1, "{r}");
    assert!(
        fleet.describe().await?.desired >= 1,
        "the handler scaled out"
    );
    assert!(
        tick_secs < 5.0,
        "one tick, not a minute's worth: {tick_secs:.1} s"
    );

    // The tick asked for the next slot on the tick queue, delayed to its start (at most a slot).
    let ticks = SqsQueue::connect(&stack.sdk().await, &stack.names.tick_queue).await?;
    let c = ticks.counters().await?;
    assert_eq!(c.visible + c.delayed + c.in_flight, 1, "{c:?}");
    let mut next = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while next.is_empty() && Instant::now() < deadline {
        next = ticks.receive(1, Duration::from_secs(1)).await?;
    }
    let message = next.pop().expect("the next slot's message");
    let record = json!({
        "messageId": message.message_id, "receiptHandle": message.receipt,
        "body": message.body, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:renderfleet-local-scaler-ticks",
        "awsRegion": "us-east-1", "attributes": {}, "messageAttributes": {}
    });
    let out = api
        .invoke(
            json!({ "Records": [record.clone()] }),
            Duration::from_secs(10),
        )
        .await?;
    let Outcome::Response(r) = out else {
        panic!("tick-queue event failed: {out:?}");
    };
    assert_eq!(r[0]["ticked"], true, "the chained slot ticks: {r}");
    // Delivered again (SQS is at-least-once), the same slot is dropped.
    let out = api
        .invoke(json!({ "Records": [record] }), Duration::from_secs(10))
        .await?;
    let Outcome::Response(r) = out else {
        panic!("redelivered tick failed: {out:?}");
    };
    assert_eq!(r[0]["ticked"], false, "a slot runs once: {r}");
    ticks.delete(&message.receipt).await?;

    let lifecycle = lifecycle_event(&stack.names.asg, "i-0123456789abcdef0", true);
    let started = Instant::now();
    let out = api.invoke(lifecycle, Duration::from_secs(6)).await?;
    let Outcome::Response(r) = out else {
        panic!("lifecycle event failed: {out:?}");
    };
    assert!(
        r["decision"]["desired"].is_u64(),
        "an extra tick's decision: {r}"
    );
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
        "scaler handler: init {:.0} ms to the first poll (debug build), a scheduled tick in {:.0} ms",
        init.unwrap_or(f64::NAN),
        tick_secs * 1000.0
    );
    stack.stop()?;
    Ok(())
}
