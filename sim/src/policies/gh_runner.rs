//! P1: philips-labs terraform-aws-github-runner, event-driven, one instance per queued job,
//! non-ephemeral runners scaled down by a schedule.

use std::collections::{BTreeSet, VecDeque};

use crate::engine::{FleetKind, InstanceState, Policy, World};
use crate::trace::Millis;

#[derive(Clone, Debug)]
pub struct GhRunner {
    /// Delay before the scale-up message is visible, ms. Default 30 s.
    pub delay: Millis,
    /// Messages per scale-up invocation. Default 10.
    pub batch: usize,
    /// `runners_maximum_count`: the fleet's bound (the module's default is 3).
    pub max: u32,
    /// Scale-down schedule, ms. Default 300 s.
    pub scale_down_every: Millis,
    /// Minimum running time before an idle runner may go, ms. Default 300 s (Linux).
    pub min_run: Millis,
    /// A booting instance without a runner after this long is an orphan, ms. Default 300 s.
    pub boot_time: Millis,
    /// Idle runners kept. Default 0.
    pub idle_count: u32,
    pending: VecDeque<(Millis, u32)>,
    next_scale_down: Millis,
    orphans: BTreeSet<u32>,
}

impl GhRunner {
    /// `scale_down_every`: the schedule, ms (the module's default is 300 s).
    pub fn new(max: u32, scale_down_every: Millis) -> Self {
        Self {
            delay: 30_000,
            batch: 10,
            max,
            scale_down_every,
            min_run: 300_000,
            boot_time: 300_000,
            idle_count: 0,
            pending: VecDeque::new(),
            next_scale_down: scale_down_every,
            orphans: BTreeSet::new(),
        }
    }

    fn scale_up(&mut self, w: &mut World) {
        while self.pending.front().is_some_and(|(at, _)| *at <= w.now) {
            let mut n = 0;
            for _ in 0..self.batch {
                match self.pending.front() {
                    Some((at, job)) if *at <= w.now => {
                        // QUEUED_CHECK: only jobs still queued get a runner.
                        n += u32::from(w.is_waiting(*job));
                        self.pending.pop_front();
                    }
                    _ => break,
                }
            }
            let new = n.min(self.max.saturating_sub(w.live()));
            w.launch(new);
        }
    }

    fn scale_down(&mut self, w: &mut World) {
        let now = w.now;
        for id in std::mem::take(&mut self.orphans) {
            if w.instance(id).state == InstanceState::Booting {
                w.terminate(id, false);
            }
        }
        let mut keep = self.idle_count;
        // Newest to oldest: the oldest are evicted first when some are kept.
        let ids: Vec<u32> = w.instances().map(|i| i.id).rev().collect();
        for id in ids {
            let i = w.instance(id);
            match i.state {
                InstanceState::Ready if now > i.launched + self.min_run => {
                    if keep > 0 {
                        keep -= 1;
                    } else if i.jobs.is_empty() {
                        w.terminate(id, false);
                    }
                }
                InstanceState::Booting if now > i.launched + self.boot_time => {
                    self.orphans.insert(id);
                }
                _ => {}
            }
        }
    }
}

impl Policy for GhRunner {
    fn fleet(&self) -> FleetKind {
        FleetKind::default()
    }

    fn submitted(&mut self, w: &World, job: u32) -> Option<Millis> {
        let at = w.now + self.delay;
        self.pending.push_back((at, job));
        Some(at)
    }

    fn wake(&mut self, w: &mut World) -> Option<Millis> {
        self.scale_up(w);
        if w.now >= self.next_scale_down {
            self.scale_down(w);
            self.next_scale_down += self.scale_down_every;
        }
        let next_msg = self.pending.front().map(|(at, _)| *at);
        Some(next_msg.map_or(self.next_scale_down, |m| m.min(self.next_scale_down)))
    }
}
