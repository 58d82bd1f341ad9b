//! Benchmarks the scaler's Lambda bootstrap (not a test): starts a local stack, then ROUNDS times
//! spawns the given bootstrap fresh under the Lambda Runtime API emulator and measures the cold
//! init (spawn to the first poll for an event), the duration of one tick (a lifecycle event,
//! which ticks once, against the stack) and the peak resident memory (VmHWM). Prints medians.
//!
//! `cargo run --release -p renderfleet-e2e --example bench_lambda -- <bootstrap> [rounds]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use renderfleet_e2e::Stack;
use renderfleet_e2e::runtime_api::{Outcome, RuntimeApi, lifecycle_event};

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .expect("usage: bench_lambda <bootstrap> [rounds]");
    let rounds: usize = args.next().map_or(Ok(10), |r| r.parse())?;
    let mut stack = Stack::start(&[
        "--max-workers",
        "0",
        "--service-env",
        "RENDERFLEET_DRY_RUN=true",
    ])?;
    let event = lifecycle_event(&stack.names.asg, "i-0123456789abcdef0", false);
    let (mut inits, mut firsts, mut warms, mut rss) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let api = RuntimeApi::start().await?;
        let spawned = Instant::now();
        let mut child = Command::new(&bootstrap)
            .envs(stack.service_env())
            .envs(api.function_env("renderfleet-local-scaler"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        while api.first_poll().is_none() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        inits.push(
            api.first_poll()
                .unwrap()
                .duration_since(spawned)
                .as_secs_f64()
                * 1e3,
        );
        for i in 0..3 {
            let t = Instant::now();
            let out = api.invoke(event.clone(), Duration::from_secs(10)).await?;
            anyhow::ensure!(matches!(out, Outcome::Response(_)), "tick failed: {out:?}");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if i == 0 {
                firsts.push(ms)
            } else {
                warms.push(ms)
            }
        }
        rss.push(peak_rss_kib(child.id()).unwrap_or(0) as f64 / 1024.0);
        child.kill()?;
        child.wait()?;
    }
    println!("| scaler bootstrap ({rounds} cold starts) | median |");
    println!("|---|---|");
    println!(
        "| init: spawn to first poll for an event | {:.1} ms |",
        median(inits)
    );
    println!(
        "| first tick after a cold start (SDK connections opened) | {:.1} ms |",
        median(firsts)
    );
    println!("| tick on a warm function | {:.1} ms |", median(warms));
    println!(
        "| peak resident memory (VmHWM) after three ticks | {:.1} MiB |",
        median(rss)
    );
    stack.stop()?;
    Ok(())
}
