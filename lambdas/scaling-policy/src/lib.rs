//! scaling-policy: renderfleet's scaling decision as one pure function.
//!
//! [`decide`] takes what the scaler observed, the configured policy, the policy's own history and
//! the time, and returns a [`Decision`]: the absolute desired capacity, the idle workers to retire
//! (chosen, not left to the group), why, and the history to keep for the next tick. No I/O, no
//! clock, no hidden state: the Lambda, the local schedule, the simulator and the tests all call
//! this same function and get the same answer for the same inputs.
//!
//! The model: a job waits until a slot frees; slots free when running jobs end, when booting
//! workers become ready, or when a worker launched now becomes ready after the boot time. The
//! policy plans the waiting jobs, oldest first, onto the earliest slots, and launches a worker
//! only when a job would otherwise miss the wait target *and* a new worker would start it sooner
//! than waiting for a slot. Work is measured in expected render seconds, not in messages. Scale-in
//! retires only idle workers, the longest idle first, only after a stabilisation window, never
//! while a job waits, never below the busy workers; the fleet's last worker waits an idle window
//! before going to zero.

mod plan;

use serde::{Deserialize, Serialize};

pub use plan::{Plan, plan};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A job waiting for a slot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// Seconds since it was submitted (or last handed back to the queue).
    pub age_secs: f64,
    /// Expected render seconds.
    pub est_secs: f64,
}

/// A job rendering now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Running {
    /// Expected seconds until it ends.
    pub remaining_secs: f64,
}

/// An instance whose agent reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub id: String,
    /// Jobs it runs now.
    pub jobs: u32,
    /// Whether it holds scale-in protection (it does while busy).
    pub protected: bool,
    /// Seconds it has been idle, when idle.
    pub idle_secs: Option<f64>,
    /// Seconds since it was launched.
    pub age_secs: f64,
}

/// An instance launched whose agent does not report yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Booting {
    pub id: String,
    /// Seconds since it was launched.
    pub age_secs: f64,
}

/// What the scaler saw this tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub waiting: Vec<Waiting>,
    pub running: Vec<Running>,
    pub workers: Vec<Worker>,
    pub booting: Vec<Booting>,
    /// The group's desired capacity now. Capacity asked for but not yet visible as instances
    /// counts as booting from now.
    pub current_desired: u32,
    /// Measured seconds from launch to a ready agent; the configured default until measured.
    pub boot_secs: Option<f64>,
}

impl Observation {
    /// Workers rendering at least one job, or holding protection.
    pub fn busy_workers(&self) -> u32 {
        self.workers
            .iter()
            .filter(|w| w.jobs > 0 || w.protected)
            .count() as u32
    }

    /// Instances in the group, ready or booting.
    pub fn instances(&self) -> u32 {
        (self.workers.len() + self.booting.len()) as u32
    }
}

/// How much one new boot-time measurement weighs in the estimate.
const BOOT_EWMA_WEIGHT: f64 = 0.3;

/// The boot time to plan with after measuring one more launch (seconds): the first measurement
/// as it is, then an exponentially weighted average, so a slow launch moves the estimate and one
/// outlier does not own it. The scaler (and the simulator) keep the result between ticks and pass
/// it to [`decide`] as [`Observation::boot_secs`].
pub fn smoothed_boot_secs(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        None => sample,
        Some(b) => b + BOOT_EWMA_WEIGHT * (sample - b),
    }
}

/// The policy's settings. Every field has a default; the scaler reads them from its environment
/// (`RENDERFLEET_*`, see the scaler's `Config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Fewest workers, even when idle. Default 0.
    pub min_workers: u32,
    /// Most workers. Default 10.
    pub max_workers: u32,
    /// Jobs one worker renders at once. Default 1.
    pub slots_per_worker: u32,
    /// The wait SLO: seconds a job may wait for a slot before the policy launches a worker for
    /// it (when a new worker would start it sooner). Default 30.
    pub target_wait_secs: f64,
    /// Boot time assumed until one is measured, seconds. Default 60.
    pub default_boot_secs: f64,
    /// Seconds between ticks (the policy's reaction time). Default 10.
    pub tick_secs: f64,
    /// Stabilisation window: the fleet shrinks only to the largest need seen over this many
    /// seconds. Default 60.
    pub scale_in_window_secs: f64,
    /// Seconds a worker must have been idle before it is retired; default (`null`) is the boot
    /// time, so an idle worker costs at most what relaunching it would.
    pub worker_idle_secs: Option<f64>,
    /// Seconds without any work before the fleet's last worker goes (to zero). Default 60.
    pub idle_to_zero_secs: f64,
    /// Per-second billing's minimum: a worker younger than this costs the same kept as retired,
    /// so it is kept. Default 60.
    pub min_billed_secs: f64,
    /// Most workers launched in one decision. Default 50.
    pub max_step_up: u32,
    /// Most workers retired in one decision. Default 10.
    pub max_step_down: u32,
    /// Decide and report, but do not act. Default false.
    pub dry_run: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_workers: 0,
            max_workers: 10,
            slots_per_worker: 1,
            target_wait_secs: 30.0,
            default_boot_secs: 60.0,
            tick_secs: 10.0,
            scale_in_window_secs: 60.0,
            worker_idle_secs: None,
            idle_to_zero_secs: 60.0,
            min_billed_secs: 60.0,
            max_step_up: 50,
            max_step_down: 10,
            dry_run: false,
        }
    }
}

impl PolicyConfig {
    /// Checks the settings against each other; the error names the setting.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        let invalid =
            |setting: &'static str, message: String| Err(InvalidPolicy { setting, message });
        if self.max_workers < self.min_workers {
            return invalid(
                "max_workers",
                format!(
                    "max_workers ({}) is below min_workers ({})",
                    self.max_workers, self.min_workers
                ),
            );
        }
        if self.slots_per_worker == 0 {
            return invalid(
                "slots_per_worker",
                "slots_per_worker must be at least 1".into(),
            );
        }
        if self.max_step_up == 0 {
            return invalid("max_step_up", "max_step_up must be at least 1".into());
        }
        let non_negative = [
            ("target_wait_secs", self.target_wait_secs),
            ("default_boot_secs", self.default_boot_secs),
            ("tick_secs", self.tick_secs),
            ("scale_in_window_secs", self.scale_in_window_secs),
            ("idle_to_zero_secs", self.idle_to_zero_secs),
            ("min_billed_secs", self.min_billed_secs),
            ("worker_idle_secs", self.worker_idle_secs.unwrap_or(0.0)),
        ];
        for (name, v) in non_negative {
            if !v.is_finite() || v < 0.0 {
                return invalid(
                    name,
                    format!("{name} must be a number of seconds, at least 0, got {v}"),
                );
            }
        }
        Ok(())
    }
}

/// A policy setting out of range: which one (its field name), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPolicy {
    pub setting: &'static str,
    pub message: String,
}

impl std::fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidPolicy {}

/// One step of acting on a [`Decision`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set the group's absolute desired capacity.
    SetDesired(u32),
    /// Retire these idle workers (each after a fresh look confirms it is still idle).
    Retire(Vec<String>),
}

/// How a decision is acted on, given the group's desired capacity and the workers in service
/// now: retire the chosen workers, or else set the desired capacity when it changed or when more
/// workers serve than it (re-asserting an unchanged capacity is harmless, and lets the group
/// remove instances whose protection was released after it last shrank). Nothing in a dry run.
/// The scaler and the simulator both act through this.
pub fn actions(
    d: &Decision,
    cfg: &PolicyConfig,
    current_desired: u32,
    in_service: u32,
) -> Vec<Action> {
    if cfg.dry_run {
        return Vec::new();
    }
    if !d.retire.is_empty() {
        return vec![Action::Retire(d.retire.clone())];
    }
    if d.desired != current_desired || in_service > d.desired {
        return vec![Action::SetDesired(d.desired)];
    }
    Vec::new()
}

/// What the policy remembers between ticks. The scaler stores it durably.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// Workers needed at recent ticks, `(at, workers)`, within the stabilisation window.
    pub needs: Vec<(Millis, u32)>,
    /// The last time any job waited or ran.
    pub last_busy_at: Option<Millis>,
    pub last_scale_out_at: Option<Millis>,
    pub last_scale_in_at: Option<Millis>,
}

/// Why the policy chose its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Workers launched: jobs would miss the wait target and a new worker starts them sooner.
    ScaleOut,
    /// Capacity held: it meets the plan, or shrinking must wait (window, idle times, billing).
    Hold,
    /// Idle workers retired.
    ScaleIn,
    /// The last workers retired after the idle window.
    ToZero,
    /// Brought within `[min_workers, max_workers]`.
    Bounds,
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The absolute desired capacity, within `[min_workers, max_workers]` and never below the
    /// busy workers.
    pub desired: u32,
    /// Idle workers to retire, longest idle first. The desired capacity already excludes them.
    pub retire: Vec<String>,
    pub reason: Reason,
    /// Workers launched by this decision.
    pub launched: u32,
    /// Workers the plan needs now (busy, plus those the waiting work needs).
    pub needed: u32,
    /// The plan's longest projected wait of a waiting job, seconds.
    pub projected_max_wait_secs: f64,
    /// Expected render seconds waiting and running.
    pub backlog_secs: f64,
    /// The age of the oldest waiting job, seconds.
    pub oldest_wait_secs: f64,
    /// The boot time the plan used, seconds.
    pub boot_secs: f64,
    pub dry_run: bool,
    /// The history to pass to the next call.
    pub history: History,
}

fn secs_to_ms(s: f64) -> Millis {
    (s * 1000.0).round() as Millis
}

/// Decides the desired capacity. Pure: the same inputs always give the same decision.
///
/// The steps: plan the waiting work onto the capacity there is (booting and asked-for workers
/// included), remember the need, launch what the plan asks for or else retire idle workers down
/// to the window's largest need, and bring the result within bounds.
pub fn decide(obs: &Observation, cfg: &PolicyConfig, history: &History, now: Millis) -> Decision {
    let max = cfg.max_workers.max(cfg.min_workers);
    let boot_secs = planning_boot_secs(obs.boot_secs, cfg);
    let fleet = Fleet::of(obs);
    let room = max.saturating_sub(fleet.capacity).min(cfg.max_step_up);
    let slots = cfg.slots_per_worker.max(1);
    let p = plan(
        obs,
        slots,
        boot_secs,
        fleet.unseen,
        cfg.target_wait_secs,
        room,
    );
    let needed = fleet.busy.max(p.workers_needed);
    let mut next = remember_need(history, obs, fleet.busy, needed, cfg, now);
    let oldest_wait_secs = oldest_wait_secs(obs);

    let choice = if p.launch > 0 {
        next.last_scale_out_at = Some(now);
        Choice::scale_out(fleet.capacity + p.launch)
    } else if obs.waiting.is_empty() && oldest_wait_secs <= cfg.target_wait_secs {
        let choice = scale_in(obs, cfg, &next, &fleet, boot_secs, now);
        if !choice.retire.is_empty() {
            next.last_scale_in_at = Some(now);
        }
        choice
    } else {
        Choice::hold(fleet.capacity)
    };
    let Choice {
        desired,
        retire,
        reason,
    } = within_bounds(choice, cfg.min_workers, max, fleet.busy);

    Decision {
        desired,
        retire,
        reason,
        launched: desired.saturating_sub(fleet.capacity),
        needed,
        projected_max_wait_secs: p.max_wait_secs,
        backlog_secs: backlog_secs(obs),
        oldest_wait_secs,
        boot_secs,
        dry_run: cfg.dry_run,
        history: next,
    }
}

/// The boot time to plan with: the measured one when it is a time, else the configured default,
/// at most an hour.
fn planning_boot_secs(measured: Option<f64>, cfg: &PolicyConfig) -> f64 {
    measured
        .filter(|b| b.is_finite() && *b >= 0.0)
        .unwrap_or(cfg.default_boot_secs)
        .min(3600.0)
}

/// The fleet as the policy counts it.
struct Fleet {
    /// Workers rendering or protected.
    busy: u32,
    /// Capacity asked for but not yet visible as instances: it counts as booting from now.
    unseen: u32,
    /// Instances, ready or booting, plus the unseen ones.
    capacity: u32,
}

impl Fleet {
    fn of(obs: &Observation) -> Self {
        let instances = obs.instances();
        let unseen = obs.current_desired.saturating_sub(instances);
        Self {
            busy: obs.busy_workers(),
            unseen,
            capacity: instances + unseen,
        }
    }
}

/// The age of the oldest waiting job, seconds; 0 when none waits.
fn oldest_wait_secs(obs: &Observation) -> f64 {
    obs.waiting.iter().map(|w| w.age_secs).fold(0.0, f64::max)
}

/// Expected render seconds waiting and running.
fn backlog_secs(obs: &Observation) -> f64 {
    obs.waiting.iter().map(|w| w.est_secs.max(0.0)).sum::<f64>()
        + obs
            .running
            .iter()
            .map(|r| r.remaining_secs.max(0.0))
            .sum::<f64>()
}

/// `history` with this tick in it: when the fleet was last busy, and `needed` among the needs
/// of the stabilisation window (older ones forgotten).
fn remember_need(
    history: &History,
    obs: &Observation,
    busy: u32,
    needed: u32,
    cfg: &PolicyConfig,
    now: Millis,
) -> History {
    let mut next = history.clone();
    if !obs.waiting.is_empty() || !obs.running.is_empty() || busy > 0 {
        next.last_busy_at = Some(now);
    }
    let window = secs_to_ms(cfg.scale_in_window_secs);
    next.needs.retain(|(at, _)| now - *at < window);
    next.needs.push((now, needed));
    next
}

/// A desired capacity with the workers to retire for it, and why.
struct Choice {
    desired: u32,
    retire: Vec<String>,
    reason: Reason,
}

impl Choice {
    fn hold(capacity: u32) -> Self {
        Self {
            desired: capacity,
            retire: Vec::new(),
            reason: Reason::Hold,
        }
    }

    fn scale_out(desired: u32) -> Self {
        Self {
            desired,
            retire: Vec::new(),
            reason: Reason::ScaleOut,
        }
    }
}

/// Retires idle workers down to the largest need of the window (never below `min_workers` or
/// the busy workers); the fleet's last worker only once the fleet has idled the idle window.
fn scale_in(
    obs: &Observation,
    cfg: &PolicyConfig,
    next: &History,
    fleet: &Fleet,
    boot_secs: f64,
    now: Millis,
) -> Choice {
    // The needs hold this tick's own, so their largest is at least what is needed now.
    let window_need = next.needs.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let floor = window_need.max(cfg.min_workers).max(fleet.busy);
    let fleet_idle_secs = next.last_busy_at.map(|t| (now - t) as f64 / 1000.0);
    let fleet_idle_long_enough = fleet_idle_secs.is_none_or(|s| s >= cfg.idle_to_zero_secs);
    let mut removable = fleet.capacity.saturating_sub(floor).min(cfg.max_step_down) as usize;
    if fleet.capacity.saturating_sub(removable as u32) == 0 && !fleet_idle_long_enough {
        removable = removable.saturating_sub(1);
    }
    let idle_needed = cfg.worker_idle_secs.unwrap_or(boot_secs);
    let retire: Vec<String> = retirable(obs, cfg, idle_needed)
        .into_iter()
        .take(removable)
        .map(|w| w.id.clone())
        .collect();
    if retire.is_empty() {
        return Choice::hold(fleet.capacity);
    }
    let desired = fleet.capacity - retire.len() as u32;
    let reason = if desired == 0 {
        Reason::ToZero
    } else {
        Reason::ScaleIn
    };
    Choice {
        desired,
        retire,
        reason,
    }
}

/// Workers that may be retired, longest idle first: idle, unprotected, idle at least
/// `idle_needed` seconds and older than the billing minimum.
fn retirable<'a>(obs: &'a Observation, cfg: &PolicyConfig, idle_needed: f64) -> Vec<&'a Worker> {
    let mut candidates: Vec<&Worker> = obs
        .workers
        .iter()
        .filter(|w| w.jobs == 0 && !w.protected)
        .filter(|w| w.idle_secs.is_some_and(|s| s >= idle_needed))
        .filter(|w| w.age_secs >= cfg.min_billed_secs)
        .collect();
    candidates.sort_by(|a, b| {
        b.idle_secs
            .unwrap_or(0.0)
            .total_cmp(&a.idle_secs.unwrap_or(0.0))
            .then_with(|| a.id.cmp(&b.id))
    });
    candidates
}

/// `choice` within `[min, max]` and never below the busy workers, in our code (the group would
/// accept anything). Raised to the floor, it keeps enough of the chosen victims.
fn within_bounds(choice: Choice, min: u32, max: u32, busy: u32) -> Choice {
    let Choice {
        desired,
        mut retire,
        mut reason,
    } = choice;
    let bounded = desired.clamp(min, max).max(busy);
    if bounded == desired {
        return Choice {
            desired,
            retire,
            reason,
        };
    }
    if bounded > desired {
        let keep = (bounded - desired) as usize;
        retire.truncate(retire.len().saturating_sub(keep));
    }
    if retire.is_empty() && reason != Reason::ScaleOut {
        reason = Reason::Bounds;
    }
    Choice {
        desired: bounded,
        retire,
        reason,
    }
}

#[cfg(test)]
mod tests;
