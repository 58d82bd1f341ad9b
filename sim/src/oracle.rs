//! The oracle: the cheapest fleet that starts every job the moment it is submitted, computed
//! offline with the whole future known.
//!
//! With zero waits, `n(t)` jobs render at `t` and at least `k(t) = ⌈n(t)/slots⌉` instances must
//! be ready. Any fleet costs at least `∫ready dt + boot × launches`, and with `ready(t) ≥ k(t)`
//! that minimum splits by level: level ℓ must be covered wherever `k(t) ≥ ℓ`, one instance per
//! covered stretch, and a gap between two stretches is kept running when it is shorter than a
//! boot (cheaper than relaunching) and relaunched otherwise. Summing the levels gives the least
//! instance-seconds of any zero-wait fleet, exactly (the 60 s minimum is left out, which only
//! lowers the bound). A policy that lets jobs wait may spend less; it cannot spend less than the
//! render seconds over the slots.

use serde::Serialize;

use crate::engine::Sample;
use crate::trace::{Job, Millis, ms};

/// What the oracle costs.
#[derive(Clone, Debug, Serialize)]
pub struct Oracle {
    pub jobs: usize,
    /// Instance-seconds of the cheapest zero-wait fleet.
    pub instance_secs: f64,
    pub render_secs: f64,
    /// Instances it launches.
    pub launches: u64,
    /// Its fleet over time (ready, booting, desired); nothing waits.
    #[serde(skip)]
    pub history: Vec<Sample>,
}

/// Computes the oracle for `jobs` on workers of `slots`, each booting in `boot_secs` (for a
/// distribution, pass its shortest boot so the bound holds).
pub fn oracle(jobs: &[Job], slots: u32, boot_secs: f64) -> Oracle {
    let slots = slots.max(1) as i64;
    let boot = ms(boot_secs.max(0.0));
    let mut edges: Vec<(Millis, i64)> = Vec::with_capacity(jobs.len() * 2);
    for j in jobs {
        edges.push((j.submitted, 1));
        edges.push((j.submitted + j.render, -1));
    }
    edges.sort_unstable();
    // Per level: when its current stretch began, and when it last ended (None while covered).
    let mut levels: Vec<(Millis, Option<Millis>)> = Vec::new();
    let mut stretches: Vec<(Millis, Millis)> = Vec::new();
    let (mut n, mut k) = (0i64, 0usize);
    let mut i = 0;
    while i < edges.len() {
        let t = edges[i].0;
        while i < edges.len() && edges[i].0 == t {
            n += edges[i].1;
            i += 1;
        }
        let next = (n.max(0) as usize).div_ceil(slots as usize);
        for level in levels.iter_mut().take(next).skip(k) {
            if let Some(end) = level.1 {
                if t - end < boot {
                    // Keeping this instance through the gap is cheaper than a new boot.
                    level.1 = None;
                } else {
                    stretches.push((level.0, end));
                    *level = (t, None);
                }
            }
        }
        while levels.len() < next {
            levels.push((t, None));
        }
        for level in levels.iter_mut().take(k).skip(next) {
            level.1 = Some(t);
        }
        k = next;
    }
    for (start, end) in levels {
        stretches.push((start, end.unwrap_or(start)));
    }
    let launches = stretches.len() as u64;
    let covered: Millis = stretches.iter().map(|(s, e)| e - s).sum();
    let instance_secs = (covered + boot * launches as Millis) as f64 / 1000.0;
    let render_secs = jobs.iter().map(|j| j.render as f64 / 1000.0).sum();
    Oracle {
        jobs: jobs.len(),
        instance_secs,
        render_secs,
        launches,
        history: fleet_history(&stretches, boot),
    }
}

fn fleet_history(stretches: &[(Millis, Millis)], boot: Millis) -> Vec<Sample> {
    // (at, ready delta, booting delta)
    let mut ev: Vec<(Millis, i64, i64)> = Vec::with_capacity(stretches.len() * 3);
    for &(s, e) in stretches {
        ev.push((s - boot, 0, 1));
        ev.push((s, 1, -1));
        ev.push((e, -1, 0));
    }
    ev.sort_unstable();
    let mut out = vec![Sample::default()];
    let (mut ready, mut booting) = (0i64, 0i64);
    for (at, r, b) in ev {
        ready += r;
        booting += b;
        let s = Sample {
            at: at.max(0),
            ready: ready as u32,
            booting: booting as u32,
            desired: (ready + booting) as u32,
            ..Sample::default()
        };
        match out.last_mut() {
            Some(last) if last.at == s.at => *last = s,
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(at: f64, render: f64) -> Job {
        Job {
            submitted: ms(at),
            render: ms(render),
            priority: 0,
        }
    }

    #[test]
    fn one_job_costs_its_render_and_one_boot() {
        let o = oracle(&[job(100.0, 60.0)], 1, 30.0);
        assert_eq!(o.instance_secs, 90.0);
        assert_eq!(o.launches, 1);
    }

    #[test]
    fn short_gaps_are_kept_long_gaps_relaunch() {
        // Gap of 20 s < boot 30: one instance, 10 + 20 + 10 + boot.
        let o = oracle(&[job(0.0, 10.0), job(30.0, 10.0)], 1, 30.0);
        assert_eq!((o.instance_secs, o.launches), (70.0, 1));
        // Gap of 50 s > boot: two launches, 2 × (10 + 30).
        let o = oracle(&[job(0.0, 10.0), job(60.0, 10.0)], 1, 30.0);
        assert_eq!((o.instance_secs, o.launches), (80.0, 2));
    }

    #[test]
    fn overlapping_jobs_need_levels_and_slots_share_them() {
        // 0–100 and 50–150: level 1 covers 0–150, level 2 covers 50–100.
        let jobs = [job(0.0, 100.0), job(50.0, 100.0)];
        let o = oracle(&jobs, 1, 10.0);
        assert_eq!((o.instance_secs, o.launches), (150.0 + 50.0 + 20.0, 2));
        let o = oracle(&jobs, 2, 10.0);
        assert_eq!((o.instance_secs, o.launches), (160.0, 1));
        let peak = o.history.iter().map(|s| s.ready).max();
        assert_eq!(peak, Some(1));
    }
}
