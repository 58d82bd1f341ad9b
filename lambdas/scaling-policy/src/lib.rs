//! scaling-policy: renderfleet's scaling decision as one pure function.
//!
//! [`decide`] takes what the scaler observed, the configured policy, the policy's own history and
//! the time, and returns a [`Decision`]: the absolute desired capacity, why, and the history to
//! keep for the next tick. No I/O, no clock, no hidden state: the Lambda, the local schedule, the
//! simulator and the tests all call this same function and get the same answer for the same inputs.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// What the scaler saw this tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Jobs waiting for a worker.
    pub waiting_jobs: u32,
    /// Jobs being rendered.
    pub running_jobs: u32,
    /// The group's desired capacity before this decision.
    pub current_desired: u32,
    /// Instances in service.
    pub in_service: u32,
    /// Workers rendering at least one job (they hold scale-in protection).
    pub busy_workers: u32,
}

/// The policy's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Fewest workers, even when idle. Default 0.
    pub min_workers: u32,
    /// Most workers. Default 10.
    pub max_workers: u32,
    /// Jobs one worker renders at once. Default 1.
    pub jobs_per_worker: u32,
    /// Seconds without any work before the fleet goes to `min_workers`. Default 60.
    pub idle_window_secs: u64,
    /// Decide and report, but do not act. Default false.
    pub dry_run: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_workers: 0,
            max_workers: 10,
            jobs_per_worker: 1,
            idle_window_secs: 60,
            dry_run: false,
        }
    }
}

impl PolicyConfig {
    /// Checks the settings against each other; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_workers < self.min_workers {
            return Err(format!(
                "max_workers ({}) is below min_workers ({})",
                self.max_workers, self.min_workers
            ));
        }
        if self.jobs_per_worker == 0 {
            return Err("jobs_per_worker must be at least 1".into());
        }
        Ok(())
    }
}

/// What the policy remembers between ticks. The scaler stores it durably.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// The last time any job was waiting or running.
    pub last_busy_at: Option<Millis>,
}

/// Why the policy chose its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Capacity follows the work.
    FollowWork,
    /// No work, but the idle window has not passed yet.
    IdleHold,
    /// No work for the whole idle window.
    IdleDown,
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The absolute desired capacity, within `[min_workers, max_workers]`.
    pub desired: u32,
    pub reason: Reason,
    /// What the capacity would be without the min/max clamp.
    pub unclamped: u32,
    /// The history to pass to the next call.
    pub history: History,
}

/// Decides the desired capacity. Pure: the same inputs always give the same decision.
pub fn decide(obs: &Observation, cfg: &PolicyConfig, history: &History, now: Millis) -> Decision {
    let per = cfg.jobs_per_worker.max(1);
    let work = obs.waiting_jobs + obs.running_jobs;
    let mut next = history.clone();
    let (unclamped, reason) = if work > 0 {
        next.last_busy_at = Some(now);
        (work.div_ceil(per).max(obs.busy_workers), Reason::FollowWork)
    } else {
        let idle_for = history.last_busy_at.map(|t| now.saturating_sub(t));
        let window = (cfg.idle_window_secs * 1000) as Millis;
        match idle_for {
            Some(d) if d < window => (obs.current_desired.max(obs.busy_workers), Reason::IdleHold),
            _ => (obs.busy_workers, Reason::IdleDown),
        }
    };
    let desired = unclamped.clamp(cfg.min_workers, cfg.max_workers.max(cfg.min_workers));
    Decision {
        desired,
        reason,
        unclamped,
        history: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: u32, per: u32) -> PolicyConfig {
        PolicyConfig {
            max_workers: max,
            jobs_per_worker: per,
            idle_window_secs: 10,
            ..Default::default()
        }
    }

    #[test]
    fn follows_work_rounded_up_and_clamped() {
        let cases = [
            // waiting, running, per, max, expected
            (0, 0, 1, 4, 0),
            (1, 0, 1, 4, 1),
            (5, 1, 2, 4, 3),
            (12, 0, 1, 4, 4),
            (3, 0, 4, 4, 1),
        ];
        for (w, r, per, max, want) in cases {
            let obs = Observation {
                waiting_jobs: w,
                running_jobs: r,
                ..Default::default()
            };
            let d = decide(&obs, &cfg(max, per), &History::default(), 0);
            assert_eq!(
                d.desired, want,
                "waiting {w} running {r} per {per} max {max}"
            );
        }
    }

    #[test]
    fn holds_through_the_idle_window_then_goes_to_zero() {
        let c = cfg(4, 1);
        let busy = Observation {
            waiting_jobs: 2,
            ..Default::default()
        };
        let d = decide(&busy, &c, &History::default(), 1_000);
        assert_eq!(d.desired, 2);
        let idle = Observation {
            current_desired: 2,
            in_service: 2,
            ..Default::default()
        };
        let d2 = decide(&idle, &c, &d.history, 5_000);
        assert_eq!((d2.desired, d2.reason), (2, Reason::IdleHold));
        let d3 = decide(&idle, &c, &d2.history, 11_000);
        assert_eq!((d3.desired, d3.reason), (0, Reason::IdleDown));
    }

    #[test]
    fn never_below_busy_workers() {
        let obs = Observation {
            busy_workers: 3,
            current_desired: 3,
            ..Default::default()
        };
        let d = decide(&obs, &cfg(4, 1), &History::default(), 100_000);
        assert_eq!(d.desired, 3);
    }
}
