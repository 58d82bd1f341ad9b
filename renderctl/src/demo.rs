//! `renderctl demo`: a burst of real renders on the local stack, with the fleet scaling out and
//! back in live, and a summary at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use renderfleet_core::api::JobView;
use renderfleet_core::aws::AsgFleet;
use renderfleet_core::clock::parse_rfc3339;
use renderfleet_core::job::JobState;
use renderfleet_core::names::ResourceNames;
use renderfleet_core::ports::Fleet;

use crate::client::Api;
use crate::local::stack::{Stack, read_agents};

/// Settings of the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub examples: PathBuf,
    pub out: PathBuf,
    /// How many times to submit the whole set of examples.
    pub rounds: u32,
    pub timeout: Duration,
}

/// The demo's figures.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub jobs: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub wait_p50: f64,
    pub wait_p95: f64,
    pub peak_workers: u32,
    pub worker_seconds: f64,
    pub back_to_zero: bool,
    pub elapsed: Duration,
}

/// The q-quantile (0..=1) of `v` by the nearest-rank method.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

struct Tracked {
    name: String,
    view: JobView,
}

pub async fn run(stack: &Stack, state_dir: &Path, opts: &DemoOptions) -> anyhow::Result<Summary> {
    let api = Api::new(&stack.api_url, &stack.api_key)?;
    let sdk = renderfleet_core::aws::emulator_config(&stack.endpoint, &stack.region).await;
    let names = ResourceNames::for_env(&stack.env).map_err(anyhow::Error::msg)?;
    let fleet = AsgFleet::new(&sdk, &names.asg);

    let mut examples: Vec<PathBuf> = std::fs::read_dir(&opts.examples)
        .with_context(|| format!("reading {}", opts.examples.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    examples.sort();
    if examples.is_empty() {
        bail!("no examples/*.json to submit");
    }
    let started = Instant::now();
    let mut jobs = Vec::new();
    println!(
        "==> submitting {} jobs ({} examples x {} rounds)",
        examples.len() * opts.rounds as usize,
        examples.len(),
        opts.rounds
    );
    for round in 0..opts.rounds {
        for path in &examples {
            let body =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let name = if opts.rounds > 1 {
                format!("{stem}-{round}")
            } else {
                stem
            };
            let view = api
                .submit(&body, None)
                .await
                .with_context(|| format!("submitting {}", path.display()))?;
            jobs.push(Tracked { name, view });
        }
    }

    let mut peak = 0u32;
    let mut worker_seconds = 0.0;
    let mut last = Instant::now();
    let deadline = started + opts.timeout;
    println!("==> rendering; the fleet scales out from zero");
    loop {
        for t in jobs.iter_mut().filter(|t| !t.view.state.is_terminal()) {
            t.view = api.get(&t.view.id).await?;
        }
        let fleet_state = fleet.describe().await?;
        let agents = read_agents(state_dir).agents.len() as u32;
        let now = Instant::now();
        worker_seconds += agents as f64 * now.duration_since(last).as_secs_f64();
        last = now;
        peak = peak.max(agents);
        let count = |s: JobState| jobs.iter().filter(|t| t.view.state == s).count();
        let done = jobs.iter().filter(|t| t.view.state.is_terminal()).count();
        println!(
            "  t={:>4.0}s  jobs: {:>2} queued {:>2} running {:>2} done  |  workers: desired {:>2}  in service {:>2}  agents {:>2}",
            started.elapsed().as_secs_f64(),
            count(JobState::Queued),
            count(JobState::Running),
            done,
            fleet_state.desired,
            fleet_state.in_service().count(),
            agents,
        );
        if done == jobs.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("jobs still unfinished after {} s", opts.timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    println!("==> downloading outputs to {}", opts.out.display());
    std::fs::create_dir_all(&opts.out)?;
    for t in &jobs {
        if let Some(out) = &t.view.output {
            let path = opts.out.join(format!("{}.mp4", t.name));
            let n = api.download(&out.url, &path).await?;
            println!(
                "  {:<28} {:>9} bytes  {:>5.2} s  {}",
                t.name,
                n,
                out.duration,
                path.display()
            );
        } else if let Some(e) = &t.view.error {
            println!("  {:<28} FAILED: {} ({})", t.name, e.message, e.code);
        }
    }

    println!("==> waiting for the fleet to scale back to zero");
    let mut back_to_zero = false;
    loop {
        let state = fleet.describe().await?;
        let agents = read_agents(state_dir).agents.len() as u32;
        let now = Instant::now();
        worker_seconds += agents as f64 * now.duration_since(last).as_secs_f64();
        last = now;
        println!(
            "  t={:>4.0}s  workers: desired {:>2}  in service {:>2}  agents {:>2}",
            started.elapsed().as_secs_f64(),
            state.desired,
            state.in_service().count(),
            agents
        );
        if state.desired == 0 && state.in_service().count() == 0 && agents == 0 {
            back_to_zero = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let waits: Vec<f64> = jobs
        .iter()
        .filter_map(|t| {
            let c = parse_rfc3339(&t.view.created_at)?;
            let s = parse_rfc3339(t.view.started_at.as_deref()?)?;
            Some((s - c) as f64 / 1000.0)
        })
        .collect();
    Ok(Summary {
        jobs: jobs.len(),
        succeeded: jobs
            .iter()
            .filter(|t| t.view.state == JobState::Succeeded)
            .count(),
        failed: jobs
            .iter()
            .filter(|t| t.view.state != JobState::Succeeded)
            .count(),
        wait_p50: quantile(&waits, 0.5),
        wait_p95: quantile(&waits, 0.95),
        peak_workers: peak,
        worker_seconds,
        back_to_zero,
        elapsed: started.elapsed(),
    })
}

impl Summary {
    pub fn print(&self) {
        println!();
        println!("==> summary");
        println!("  jobs              {}", self.jobs);
        println!("  succeeded         {}", self.succeeded);
        println!("  failed            {}", self.failed);
        println!(
            "  wait p50          {:.1} s (submit to start)",
            self.wait_p50
        );
        println!("  wait p95          {:.1} s", self.wait_p95);
        println!("  peak workers      {}", self.peak_workers);
        println!("  worker-seconds    {:.0}", self.worker_seconds);
        println!(
            "  back to zero      {}",
            if self.back_to_zero { "yes" } else { "no" }
        );
        println!("  elapsed           {:.0} s", self.elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 10.0);
        assert_eq!(quantile(&v, 0.95), 19.0);
        assert_eq!(quantile(&v, 1.0), 20.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
