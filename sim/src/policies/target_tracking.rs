//! P3a: EC2 Auto Scaling target tracking on backlog per instance (peers.md).

use crate::engine::{FleetKind, InstanceState, Policy, Victims, World};
use crate::trace::Millis;

#[derive(Clone, Debug)]
pub struct TargetTracking {
    /// Acceptable backlog per instance: acceptable latency / mean processing time per message
    /// of one instance (its slots share the work).
    pub target: f64,
    /// The metric period and the policy's evaluation interval, ms. Default 60 s.
    pub period: Millis,
    /// Datapoints above the target that fire the scale-out alarm. Default 3.
    pub high_n: usize,
    /// Datapoints below `low_ratio × target` that fire the scale-in alarm. Default 15.
    pub low_n: usize,
    /// UNCONFIRMED in peers.md (0.7–0.9 seen). Default 0.9.
    pub low_ratio: f64,
    /// Instance warm-up, ms: DefaultInstanceWarmup unset falls back to the 300 s cooldown.
    pub warmup: Millis,
    /// The group's minimum: 1, because the metric is undefined with no instance in service (the
    /// alarm would sit in INSUFFICIENT_DATA and never scale out from zero).
    pub min: u32,
    pub max: u32,
    /// CloudWatch publication lag, ms.
    pub lag: Millis,
    datapoints: Vec<Option<f64>>,
}

impl TargetTracking {
    pub fn new(target: f64, max: u32, lag: Millis) -> Self {
        Self {
            target,
            period: 60_000,
            high_n: 3,
            low_n: 15,
            low_ratio: 0.9,
            warmup: 300_000,
            min: 1,
            max,
            lag,
            datapoints: Vec::new(),
        }
    }

    /// Publishes every datapoint whose period ended at least `lag` ago: the queue's visible
    /// messages at the period's end over the average in-service instances during it.
    fn collect(&mut self, w: &World) {
        let p = self.period;
        loop {
            let k = self.datapoints.len() as i64;
            let end = (k + 1) * p;
            if end + self.lag > w.now {
                break;
            }
            let (s, e) = (w.sample_at(k * p), w.sample_at(end));
            let in_service = (e.ready_ms - s.ready_ms) / p as f64;
            self.datapoints
                .push((in_service > 0.0).then(|| e.waiting as f64 / in_service));
        }
    }

    fn all_last(&self, n: usize, f: impl Fn(f64) -> bool) -> bool {
        self.datapoints.len() >= n
            && self.datapoints[self.datapoints.len() - n..]
                .iter()
                .all(|d| d.is_some_and(&f))
    }
}

impl Policy for TargetTracking {
    fn fleet(&self) -> FleetKind {
        FleetKind::asg(self.min)
    }

    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        self.collect(w);
        let now = w.now;
        let warming = |i: &crate::engine::Instance| {
            i.state == InstanceState::Booting || (!i.initial && now < i.ready_at + self.warmup)
        };
        let any_warming = w.instances().any(warming);
        let metric = self.datapoints.last().copied().flatten();
        let desired = w.desired();
        if let Some(m) = metric {
            let t = self.target;
            if self.all_last(self.high_n, |v| v > t) {
                // Instances still warming are already part of `desired`.
                let base = w.instances().filter(|i| !warming(i)).count() as f64;
                let want = (base * m / t).ceil() as u32;
                let new = want.max(desired).min(self.max);
                if new > desired {
                    w.set_desired(new, Victims::AsgDefault);
                }
            } else if self.all_last(self.low_n, |v| v < self.low_ratio * t) && !any_warming {
                let want = desired as f64 * m / t;
                let remove = ((desired as f64 - want).floor() as u32).max(1);
                let new = desired.saturating_sub(remove).max(self.min);
                if new < desired {
                    w.set_desired(new, Victims::AsgDefault);
                }
            }
        }
        Some((now / self.period + 1) * self.period)
    }
}

/// A shorthand for tests and the docs: the target for an acceptable latency and a mean render
/// time, with `slots` jobs per instance.
pub fn backlog_target(acceptable_latency_secs: f64, mean_render_secs: f64, slots: u32) -> f64 {
    acceptable_latency_secs * slots.max(1) as f64 / mean_render_secs.max(1e-9)
}
