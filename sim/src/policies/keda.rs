//! P2a: a KEDA ScaledObject on the SQS queue driving an HPA, one long-lived puller per replica,
//! each replica on its own instance (a node per pod, booting like an EC2 instance).

use std::collections::VecDeque;

use crate::engine::{FleetKind, Policy, Victims, World};
use crate::trace::Millis;

#[derive(Clone, Debug)]
pub struct Keda {
    /// KEDA's polling interval, ms. Default 30 s.
    pub poll: Millis,
    /// The HPA's sync period, ms. Default 15 s.
    pub sync: Millis,
    /// Cooldown before scaling to zero, ms. Default 300 s.
    pub cooldown: Millis,
    /// `queueLength`: messages one replica handles (KEDA's docs: set it to what one pod
    /// processes at once, here the slots per worker; KEDA's own default is 5).
    pub target: f64,
    /// Activation threshold. Default 0.
    pub activation: f64,
    pub min: u32,
    pub max: u32,
    /// HPA tolerance. Default 0.1.
    pub tolerance: f64,
    /// HPA scale-down stabilisation window, ms. Default 300 s.
    pub down_window: Millis,
    /// How stale the SQS counters are, ms.
    pub lag: Millis,
    replicas: u32,
    last_active: Option<Millis>,
    recs: VecDeque<(Millis, u32)>,
}

impl Keda {
    pub fn new(target: f64, max: u32, lag: Millis) -> Self {
        Self {
            poll: 30_000,
            sync: 15_000,
            cooldown: 300_000,
            target,
            activation: 0.0,
            min: 0,
            max,
            tolerance: 0.1,
            down_window: 300_000,
            lag,
            replicas: 0,
            last_active: None,
            recs: VecDeque::new(),
        }
    }
}

impl Policy for Keda {
    fn fleet(&self) -> FleetKind {
        FleetKind::asg(self.min)
    }

    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        let now = w.now;
        // scaleOnInFlight: visible + in flight.
        let s = w.sample_at(now - self.lag);
        let q = (s.waiting + s.running) as f64;
        if now % self.poll == 0 {
            if q > self.activation || self.min > 0 {
                self.last_active = Some(now);
                if self.replicas == 0 {
                    self.replicas = self.min.max(1);
                }
            } else if self.replicas > 0
                && self.min == 0
                && self.last_active.is_none_or(|t| now > t + self.cooldown)
            {
                self.replicas = 0;
            }
        }
        if now % self.sync == 0 && self.replicas > 0 {
            let r = self.replicas;
            let ratio = q / (self.target * r as f64);
            let proposal = if (1.0 - ratio).abs() <= self.tolerance {
                r
            } else {
                (q / self.target).ceil() as u32
            };
            self.recs.push_back((now, proposal));
            while self
                .recs
                .front()
                .is_some_and(|(at, _)| now - at >= self.down_window)
            {
                self.recs.pop_front();
            }
            let stable = self.recs.iter().map(|(_, p)| *p).max().unwrap_or(proposal);
            let up_limit = (2 * r).max(4);
            self.replicas = stable.clamp(self.min.max(1), self.max.min(up_limit).max(1));
        }
        if self.replicas != w.desired() {
            w.set_desired(self.replicas, Victims::PendingThenRandom);
        }
        let step = gcd(self.poll, self.sync);
        Some((now / step + 1) * step)
    }
}

fn gcd(a: Millis, b: Millis) -> Millis {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}
