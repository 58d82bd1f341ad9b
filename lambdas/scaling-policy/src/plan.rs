//! The plan behind a decision: waiting jobs, oldest first, onto the earliest free slots.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::Observation;

/// A time in seconds from now, ordered totally (NaN never occurs: inputs are clamped).
#[derive(Clone, Copy, Debug, PartialEq)]
struct At(f64);

impl Eq for At {}

impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for At {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn clean(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

/// What the plan found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Workers to launch now.
    pub launch: u32,
    /// Workers the work needs: busy ones plus those the waiting jobs need.
    pub workers_needed: u32,
    /// The longest projected wait of a waiting job, seconds (infinite if a job cannot be placed).
    pub max_wait_secs: f64,
}

/// Plans the waiting work onto the slots that exist, free up or boot, launching a worker (up to
/// `room`) for a job that would otherwise miss `target_secs` when the new worker would start it
/// sooner than the earliest slot, or when the job has already waited longer than a launch takes.
pub fn plan(
    obs: &Observation,
    slots: u32,
    boot_secs: f64,
    unseen: u32,
    target_secs: f64,
    room: u32,
) -> Plan {
    let mut free: BinaryHeap<Reverse<At>> = BinaryHeap::new();
    let ready_slots = obs.workers.len() as u32 * slots;
    let mut running: Vec<f64> = obs
        .running
        .iter()
        .map(|r| clean(r.remaining_secs))
        .collect();
    running.sort_by(f64::total_cmp);
    // More running jobs than ready slots (a stale heartbeat): the extra ones free no slot here.
    for r in running.iter().take(ready_slots as usize) {
        free.push(Reverse(At(*r)));
    }
    for _ in 0..ready_slots.saturating_sub(running.len() as u32) {
        free.push(Reverse(At(0.0)));
    }
    for b in &obs.booting {
        for _ in 0..slots {
            free.push(Reverse(At(clean(boot_secs - clean(b.age_secs)))));
        }
    }
    for _ in 0..unseen * slots {
        free.push(Reverse(At(boot_secs)));
    }

    let mut waiting: Vec<(f64, f64)> = obs
        .waiting
        .iter()
        .map(|w| (clean(w.age_secs), clean(w.est_secs)))
        .collect();
    waiting.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1)));
    let mut launch = 0u32;
    let mut max_wait = 0.0f64;
    for (age, est) in &waiting {
        let earliest = free
            .peek()
            .map(|Reverse(At(t))| *t)
            .unwrap_or(f64::INFINITY);
        let misses = age + earliest > target_secs;
        let launching_helps = earliest > boot_secs || *age > target_secs + boot_secs;
        if misses && launching_helps && launch < room {
            launch += 1;
            for _ in 0..slots {
                free.push(Reverse(At(boot_secs)));
            }
        }
        match free.pop() {
            Some(Reverse(At(start))) => {
                max_wait = max_wait.max(age + start);
                free.push(Reverse(At(start + est)));
            }
            None => max_wait = f64::INFINITY,
        }
    }
    let busy = obs.busy_workers();
    let for_waiting = (waiting.len() as u32).div_ceil(slots.max(1));
    let capacity = obs.instances() + unseen + launch;
    let workers_needed = (busy + for_waiting).min(capacity.max(busy));
    Plan {
        launch,
        workers_needed,
        max_wait_secs: max_wait,
    }
}
