//! `renderctl demo`: a burst of real renders on the local stack, with the fleet scaling out and
//! back in live, and a summary at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use renderfleet_core::api::JobView;
use renderfleet_core::aws::AsgFleet;
use renderfleet_core::clock::parse_rfc3339;
use renderfleet_core::job::JobState;
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

/// Agent-seconds, integrated between samples of how many agents run.
#[derive(Debug)]
struct Meter {
    worker_seconds: f64,
    last: Instant,
}

impl Meter {
    fn add(&mut self, agents: u32) {
        let now = Instant::now();
        self.worker_seconds += agents as f64 * now.duration_since(self.last).as_secs_f64();
        self.last = now;
    }
}

/// The demo's steps: submit, follow the renders, download, and wait for the fleet to go back to
/// zero.
pub async fn run(stack: &Stack, state_dir: &Path, opts: &DemoOptions) -> anyhow::Result<Summary> {
    let api = Api::new(&stack.api_url, &stack.api_key)?;
    let sdk = renderfleet_core::aws::emulator_config(&stack.endpoint, &stack.region).await;
    let fleet = AsgFleet::new(&sdk, stack.resource_names()?.asg);
    let examples = examples(&opts.examples)?;
    let started = Instant::now();
    let mut jobs = submit_all(&api, &examples, opts.rounds).await?;
    let mut meter = Meter {
        worker_seconds: 0.0,
        last: Instant::now(),
    };
    let deadline = started + opts.timeout;
    let watch = Watch {
        fleet: &fleet,
        state_dir,
        started,
        deadline,
    };
    let peak_workers = watch.renders(&api, &mut jobs, &mut meter, opts).await?;
    download_outputs(&api, &jobs, &opts.out).await?;
    let back_to_zero = watch.back_to_zero(&mut meter).await?;
    let count = |f: fn(JobState) -> bool| jobs.iter().filter(|t| f(t.view.state)).count();
    let waits: Vec<f64> = jobs.iter().filter_map(|t| wait_secs(&t.view)).collect();
    Ok(Summary {
        jobs: jobs.len(),
        succeeded: count(|s| s == JobState::Succeeded),
        failed: count(|s| s != JobState::Succeeded),
        wait_p50: quantile(&waits, 0.5),
        wait_p95: quantile(&waits, 0.95),
        peak_workers,
        worker_seconds: meter.worker_seconds,
        back_to_zero,
        elapsed: started.elapsed(),
    })
}

/// The example specs in `dir`, in name order.
fn examples(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    examples.sort();
    if examples.is_empty() {
        bail!("no examples/*.json to submit");
    }
    Ok(examples)
}

async fn submit_all(api: &Api, examples: &[PathBuf], rounds: u32) -> anyhow::Result<Vec<Tracked>> {
    println!(
        "==> submitting {} jobs ({} examples x {} rounds)",
        examples.len() * rounds as usize,
        examples.len(),
        rounds
    );
    let mut jobs = Vec::new();
    for round in 0..rounds {
        for path in examples {
            let body =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let name = if rounds > 1 {
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
    Ok(jobs)
}

/// Seconds from submit to start, once the job started.
fn wait_secs(view: &JobView) -> Option<f64> {
    let c = parse_rfc3339(&view.created_at)?;
    let s = parse_rfc3339(view.started_at.as_deref()?)?;
    Some((s - c) as f64 / 1000.0)
}

/// What the demo watches while it waits: the worker group and the supervisor's agents.
struct Watch<'a> {
    fleet: &'a AsgFleet,
    state_dir: &'a Path,
    started: Instant,
    deadline: Instant,
}

impl Watch<'_> {
    /// Follows the jobs until every one is terminal, a line a second; returns the peak of agents.
    async fn renders(
        &self,
        api: &Api,
        jobs: &mut [Tracked],
        meter: &mut Meter,
        opts: &DemoOptions,
    ) -> anyhow::Result<u32> {
        let mut peak = 0u32;
        println!("==> rendering; the fleet scales out from zero");
        loop {
            for t in jobs.iter_mut().filter(|t| !t.view.state.is_terminal()) {
                t.view = api.get(&t.view.id).await?;
            }
            let fleet_state = self.fleet.describe().await?;
            let agents = read_agents(self.state_dir).agents.len() as u32;
            meter.add(agents);
            peak = peak.max(agents);
            let count = |s: JobState| jobs.iter().filter(|t| t.view.state == s).count();
            let done = jobs.iter().filter(|t| t.view.state.is_terminal()).count();
            println!(
                "  t={:>4.0}s  jobs: {:>2} queued {:>2} running {:>2} done  |  workers: desired {:>2}  in service {:>2}  agents {:>2}",
                self.started.elapsed().as_secs_f64(),
                count(JobState::Queued),
                count(JobState::Running),
                done,
                fleet_state.desired,
                fleet_state.in_service().count(),
                agents,
            );
            if done == jobs.len() {
                return Ok(peak);
            }
            if Instant::now() > self.deadline {
                bail!("jobs still unfinished after {} s", opts.timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits, a line a second, until the group and the agents are back to zero or the deadline
    /// passes; returns whether they got there.
    async fn back_to_zero(&self, meter: &mut Meter) -> anyhow::Result<bool> {
        println!("==> waiting for the fleet to scale back to zero");
        loop {
            let state = self.fleet.describe().await?;
            let agents = read_agents(self.state_dir).agents.len() as u32;
            meter.add(agents);
            println!(
                "  t={:>4.0}s  workers: desired {:>2}  in service {:>2}  agents {:>2}",
                self.started.elapsed().as_secs_f64(),
                state.desired,
                state.in_service().count(),
                agents
            );
            if state.desired == 0 && state.in_service().count() == 0 && agents == 0 {
                return Ok(true);
            }
            if Instant::now() > self.deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn download_outputs(api: &Api, jobs: &[Tracked], out: &Path) -> anyhow::Result<()> {
    println!("==> downloading outputs to {}", out.display());
    std::fs::create_dir_all(out)?;
    for t in jobs {
        if let Some(o) = &t.view.output {
            let path = out.join(format!("{}.mp4", t.name));
            let n = api.download(&o.url, &path).await?;
            println!(
                "  {:<28} {:>9} bytes  {:>5.2} s  {}",
                t.name,
                n,
                o.duration,
                path.display()
            );
        } else if let Some(e) = &t.view.error {
            println!("  {:<28} FAILED: {} ({})", t.name, e.message, e.code);
        }
    }
    Ok(())
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
