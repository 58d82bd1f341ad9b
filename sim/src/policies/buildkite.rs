//! P7: buildkite-agent-scaler on an ASG, polling the queue's scheduled and running jobs.

use crate::engine::{FleetKind, Policy, Victims, World};
use crate::trace::Millis;

/// How the fleet shrinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleIn {
    /// The recommended setup: DISABLE_SCALE_IN, and an agent idle this long exits and its
    /// instance terminates itself with a decrement (job-aware).
    AgentIdle { after: Millis },
    /// The scaler lowers the desired capacity and the ASG picks the victims, busy or not.
    Asg,
}

#[derive(Clone, Debug)]
pub struct Buildkite {
    /// Polling interval, ms. Default 10 s.
    pub interval: Millis,
    /// Agents per instance (the slots).
    pub per_instance: u32,
    /// Below this share of expected agents online, one more instance. Default 0.5.
    pub availability: f64,
    pub min: u32,
    pub max: u32,
    /// Cooldowns, ms. Default 0.
    pub out_cooldown: Millis,
    pub in_cooldown: Millis,
    pub scale_in: ScaleIn,
    last_out: Option<Millis>,
    last_in: Option<Millis>,
}

impl Buildkite {
    pub fn new(per_instance: u32, max: u32, scale_in: ScaleIn) -> Self {
        Self {
            interval: 10_000,
            per_instance: per_instance.max(1),
            availability: 0.5,
            min: 0,
            max,
            out_cooldown: 0,
            in_cooldown: 0,
            scale_in,
            last_out: None,
            last_in: None,
        }
    }
}

impl Policy for Buildkite {
    fn fleet(&self) -> FleetKind {
        FleetKind {
            idle_exit: match self.scale_in {
                ScaleIn::AgentIdle { after } => Some(after),
                ScaleIn::Asg => None,
            },
            ..FleetKind::asg(self.min)
        }
    }

    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        let now = w.now;
        let a = self.per_instance;
        let req = w.waiting() + w.running();
        let mut d = req.div_ceil(a);
        let (actual, desired) = (w.live(), w.desired());
        if req > 0 && actual == desired && actual > 0 {
            let online = (w.ready() * a) as f64;
            if online / ((a * actual) as f64) < self.availability {
                d = d.max(desired + 1);
            }
        }
        let d = d.clamp(self.min, self.max);
        let cooled =
            |last: Option<Millis>, cooldown: Millis| last.is_none_or(|t| now - t >= cooldown);
        if d > desired && cooled(self.last_out, self.out_cooldown) {
            w.set_desired(d, Victims::AsgDefault);
            self.last_out = Some(now);
        } else if d < desired
            && self.scale_in == ScaleIn::Asg
            && cooled(self.last_in, self.in_cooldown)
        {
            w.set_desired(d, Victims::AsgDefault);
            self.last_in = Some(now);
        }
        Some(now + self.interval)
    }
}
