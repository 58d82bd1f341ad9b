//! Ours: the very `scaling_policy::decide` the scaler Lambda calls, fed what the scaler would
//! observe and acted on the way `lambdas/scaler/src/tick.rs` acts.

use scaling_policy::{
    Action, Booting, History, Observation, PolicyConfig, Running, Waiting, Worker, actions, decide,
    smoothed_boot_secs,
};

use crate::engine::{FleetKind, InstanceState, Policy, Victims, World};
use crate::trace::{Millis, ms, secs};

#[derive(Debug)]
pub struct Renderfleet {
    cfg: PolicyConfig,
    history: History,
    boot_secs: Option<f64>,
    measured: Vec<bool>,
}

impl Renderfleet {
    pub fn new(cfg: PolicyConfig) -> Self {
        Self {
            cfg,
            history: History::default(),
            boot_secs: None,
            measured: Vec::new(),
        }
    }

    /// What the scaler would see: jobs from the jobs table (ages since submission, expected
    /// seconds: the trace's render time), instances and their agents' heartbeats.
    fn observe(&mut self, w: &World) -> Observation {
        let now = w.now;
        let mut obs = Observation {
            current_desired: w.desired(),
            ..Observation::default()
        };
        obs.waiting = w
            .waiting_jobs()
            .map(|(submitted, render)| Waiting {
                age_secs: secs(now - submitted),
                est_secs: secs(render),
            })
            .collect();
        for inst in w.instances() {
            let age_secs = secs(now - inst.launched);
            match inst.state {
                InstanceState::Booting => obs.booting.push(Booting {
                    id: inst.label.clone(),
                    age_secs,
                }),
                InstanceState::Ready => {
                    if self.measured.len() <= inst.id as usize {
                        self.measured.resize(inst.id as usize + 1, false);
                    }
                    if !self.measured[inst.id as usize] && !inst.initial {
                        self.measured[inst.id as usize] = true;
                        let sample = secs(inst.ready_at - inst.launched);
                        self.boot_secs = Some(smoothed_boot_secs(self.boot_secs, sample));
                    }
                    for &j in &inst.jobs {
                        let (started, render) = w.running_job(j);
                        obs.running.push(Running {
                            remaining_secs: secs(started + render - now).max(0.0),
                        });
                    }
                    obs.workers.push(Worker {
                        id: inst.label.clone(),
                        jobs: inst.jobs.len() as u32,
                        protected: inst.protected(&w.fleet),
                        idle_secs: inst.idle_since.map(|t| secs(now - t)),
                        age_secs,
                    });
                }
                InstanceState::Gone => {}
            }
        }
        obs.boot_secs = self.boot_secs;
        obs
    }
}

impl Policy for Renderfleet {
    fn fleet(&self) -> FleetKind {
        FleetKind {
            protect_busy: true,
            ..FleetKind::asg(self.cfg.min_workers)
        }
    }

    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        let obs = self.observe(w);
        let d = decide(&obs, &self.cfg, &self.history, w.now);
        for action in actions(&d, &self.cfg, w.desired(), w.ready()) {
            match action {
                Action::SetDesired(n) => {
                    w.set_desired(n, Victims::AsgDefault);
                }
                Action::Retire(labels) => {
                    for label in &labels {
                        let id = label
                            .strip_prefix("i-")
                            .and_then(|n| n.parse::<u32>().ok())
                            .expect("labels are i-NNNNNNN");
                        // A fresh look: a chosen worker that became busy is spared.
                        let inst = w.instance(id);
                        if inst.state == InstanceState::Ready && !inst.protected(&w.fleet) {
                            w.terminate(id, true);
                        }
                    }
                }
            }
        }
        self.history = d.history;
        Some(w.now + ms(self.cfg.tick_secs).max(1))
    }
}
