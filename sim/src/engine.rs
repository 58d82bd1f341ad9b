//! The discrete-event core: a queue of jobs, a fleet of instances with slots, billing, and the
//! history that lagged metrics and plots read. A [`Policy`] wakes when it asks to, looks at the
//! [`World`] and acts through it the way its real counterpart acts on AWS.
//!
//! Time is integer milliseconds, so runs are exactly reproducible. Events at the same instant run
//! in a fixed order: capacity changes (jobs ending, instances ready), then arrivals, then idle
//! timeouts, then the policy.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::scenario::BootTime;
use crate::trace::{Job, Millis, ms};

/// What every policy shares: the fleet and the infrastructure around it.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// Jobs one worker renders at once. Default 1.
    pub slots: u32,
    /// Seconds from launch to a ready worker.
    pub boot: BootTime,
    /// The fleet's bound, applied to every policy in place of its own maximum. Default 1000.
    pub max_workers: u32,
    /// Seeds the boot times and the ASG's random victim choice.
    pub seed: u64,
    /// Seconds after a CloudWatch period ends before its datapoint can trigger an alarm
    /// (UNCONFIRMED in peers.md: 60 stated by AWS, 300 in third-party docs). Default 60.
    pub metric_lag_secs: f64,
    /// Seconds by which SQS's approximate counters lag the queue. Default 0.
    pub sqs_lag_secs: f64,
    /// Per-second billing's minimum per instance. Default 60.
    pub min_billed_secs: f64,
    /// The wait a user accepts, seconds: our policy's `target_wait_secs` and the acceptable
    /// latency of target tracking's backlog target. Default 30.
    pub target_wait_secs: f64,
    /// Seconds of simulated time after the last submission during which instances are still
    /// billed (policies scale in, or do not). Default 1800.
    pub drain_secs: f64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            slots: 1,
            boot: BootTime::Fixed { secs: 30.0 },
            max_workers: 1000,
            seed: 1,
            metric_lag_secs: 60.0,
            sqs_lag_secs: 0.0,
            min_billed_secs: 60.0,
            target_wait_secs: 30.0,
            drain_secs: 1800.0,
        }
    }
}

/// How a policy's fleet behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct FleetKind {
    /// An Auto Scaling group whose desired capacity the policy sets. When false, the policy
    /// launches and terminates instances itself and "desired" means the instances that exist.
    pub asg: bool,
    /// A busy worker holds scale-in protection, so the group never picks it as a victim.
    pub protect_busy: bool,
    /// A worker idle this long terminates itself and decrements the desired capacity.
    pub idle_exit: Option<Millis>,
    /// Instances in service at time 0 (a group whose minimum is above zero), already warm.
    pub initial: u32,
}

impl FleetKind {
    /// An Auto Scaling group the policy sizes, `initial` instances in service at time 0: no
    /// worker protects itself and none exits when idle.
    pub fn asg(initial: u32) -> Self {
        Self {
            asg: true,
            protect_busy: false,
            idle_exit: None,
            initial,
        }
    }
}

/// How the group chooses victims when its desired capacity drops below its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victims {
    /// EC2 Auto Scaling's default policy with one AZ and one launch template: the instance
    /// closest to its next billing hour, ties at random.
    AsgDefault,
    /// A ReplicaSet scaling down: pods not yet running first, then at random.
    PendingThenRandom,
}

/// A snapshot after every change, for lagged metrics and plots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub at: Millis,
    /// Jobs waiting (the queue's visible messages).
    pub waiting: u32,
    /// Jobs rendering (in-flight messages).
    pub running: u32,
    /// Instances in service (ready).
    pub ready: u32,
    pub booting: u32,
    pub desired: u32,
    /// Integral of `ready` from 0 to `at`, instance-milliseconds.
    #[serde(skip)]
    pub ready_ms: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobState {
    Pending,
    Waiting,
    Running { inst: u32 },
    Done,
}

#[derive(Clone, Debug)]
struct JobRun {
    job: Job,
    state: JobState,
    enqueued: Millis,
    started: Millis,
    /// Total time spent waiting, over every attempt.
    waited: Millis,
    attempt: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    Booting,
    Ready,
    Gone,
}

/// One EC2 instance (or pod on its own node).
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: u32,
    /// The name the policy uses, e.g. `i-0000042`.
    pub label: String,
    pub launched: Millis,
    /// When it became ready (its scheduled time while booting).
    pub ready_at: Millis,
    pub state: InstanceState,
    /// Jobs it renders now (indices into the trace).
    pub jobs: Vec<u32>,
    /// Since when it has had no job, when ready and idle.
    pub idle_since: Option<Millis>,
    /// Whether it was in service at time 0 (never warming).
    pub initial: bool,
    ended: Option<Millis>,
}

impl Instance {
    pub fn protected(&self, fleet: &FleetKind) -> bool {
        fleet.protect_busy && !self.jobs.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Finish { job: u32, attempt: u32 },
    Ready { inst: u32 },
    Arrive { job: u32 },
    IdleExit { inst: u32, since: Millis },
    Wake,
}

impl What {
    fn rank(&self) -> u8 {
        match self {
            What::Finish { .. } | What::Ready { .. } => 0,
            What::Arrive { .. } => 1,
            What::IdleExit { .. } => 2,
            What::Wake => 3,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Event {
    at: Millis,
    seq: u64,
    what: What,
}

impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.what.rank(), self.seq).cmp(&(o.at, o.what.rank(), o.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// A waiting job's place: priority first, then the oldest submission.
type QueueKey = (i32, Reverse<Millis>, Reverse<u32>);

/// The simulated world a policy observes and acts on.
#[derive(Debug)]
pub struct World {
    pub now: Millis,
    pub setup: Setup,
    pub fleet: FleetKind,
    jobs: Vec<JobRun>,
    queue: BinaryHeap<QueueKey>,
    instances: Vec<Instance>,
    live: BTreeSet<u32>,
    /// Ready instances with a free slot.
    free: BTreeSet<u32>,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
    desired: u32,
    running: u32,
    ready: u32,
    booting: u32,
    done: usize,
    ready_ms: f64,
    history: Vec<Sample>,
    boot_rng: StdRng,
    victim_rng: StdRng,
    /// Jobs stopped because their instance was terminated.
    pub interrupted: u64,
    /// Calls that changed the fleet (launch, set desired, terminate).
    pub actions: u64,
}

/// A scaling policy in the simulator.
pub trait Policy {
    /// The fleet this policy drives.
    fn fleet(&self) -> FleetKind;
    /// Called at time 0 and whenever the policy asked; returns when to wake next.
    fn wake(&mut self, w: &mut World) -> Option<Millis>;
    /// Called when a job is submitted; may ask for an earlier wake.
    fn submitted(&mut self, _w: &World, _job: u32) -> Option<Millis> {
        None
    }
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Jobs finished.
    pub jobs: usize,
    /// Jobs still unfinished when the run gave up (a policy that never serves them).
    pub unfinished: usize,
    /// Completions the engine processed: equal to `jobs` unless a job finished twice.
    #[serde(skip)]
    pub completions: usize,
    /// Each finished job's total wait, seconds, in trace order.
    #[serde(skip)]
    pub waits: Vec<f64>,
    /// Billed instance-seconds: per instance, its life from launch, at least the minimum.
    pub instance_secs: f64,
    /// Render seconds of the finished jobs.
    pub render_secs: f64,
    pub interrupted: u64,
    pub actions: u64,
    pub launched: usize,
    /// When the run stopped, seconds.
    pub end_secs: f64,
    #[serde(skip)]
    pub history: Vec<Sample>,
}

/// A run that cannot finish gives up this long after its horizon: a policy that keeps
/// interrupting a long job may never let it end.
const GIVE_UP_AFTER: Millis = 2 * 86_400_000;

impl World {
    pub fn new(setup: Setup, jobs: &[Job], fleet: FleetKind) -> Self {
        let runs = jobs
            .iter()
            .map(|j| JobRun {
                job: j.clone(),
                state: JobState::Pending,
                enqueued: 0,
                started: 0,
                waited: 0,
                attempt: 0,
            })
            .collect();
        let seed = setup.seed;
        let mut w = Self {
            now: 0,
            setup,
            fleet,
            jobs: runs,
            queue: BinaryHeap::new(),
            instances: Vec::new(),
            live: BTreeSet::new(),
            free: BTreeSet::new(),
            events: BinaryHeap::new(),
            seq: 0,
            desired: 0,
            running: 0,
            ready: 0,
            booting: 0,
            done: 0,
            ready_ms: 0.0,
            history: vec![Sample::default()],
            boot_rng: StdRng::seed_from_u64(seed ^ 0xB007),
            victim_rng: StdRng::seed_from_u64(seed ^ 0x71C7),
            interrupted: 0,
            actions: 0,
        };
        for (i, j) in jobs.iter().enumerate() {
            w.push(j.submitted, What::Arrive { job: i as u32 });
        }
        for _ in 0..fleet.initial {
            let id = w.new_instance();
            let inst = &mut w.instances[id as usize];
            inst.initial = true;
            inst.state = InstanceState::Ready;
            inst.ready_at = 0;
            inst.idle_since = Some(0);
            w.booting -= 1;
            w.ready += 1;
            w.free.insert(id);
            w.desired += 1;
            w.arm_idle_exit(id);
        }
        w.record();
        w
    }

    fn push(&mut self, at: Millis, what: What) {
        self.seq += 1;
        self.events.push(Reverse(Event {
            at,
            seq: self.seq,
            what,
        }));
    }

    fn advance(&mut self, to: Millis) {
        if to > self.now {
            self.ready_ms += self.ready as f64 * (to - self.now) as f64;
            self.now = to;
        }
    }

    fn record(&mut self) {
        let desired = self.desired();
        let s = Sample {
            at: self.now,
            waiting: self.waiting(),
            running: self.running,
            ready: self.ready,
            booting: self.booting,
            desired,
            ready_ms: self.ready_ms,
        };
        let last = self
            .history
            .last_mut()
            .expect("history starts with a sample");
        let same = |a: &Sample| {
            (a.waiting, a.running, a.ready, a.booting, a.desired)
                == (s.waiting, s.running, s.ready, s.booting, s.desired)
        };
        if last.at == s.at {
            *last = s;
        } else if !same(last) {
            self.history.push(s);
        }
    }

    // ---- what policies observe ----

    /// The world as it was at `at` (before now: lagged metrics).
    pub fn sample_at(&self, at: Millis) -> Sample {
        let i = self.history.partition_point(|s| s.at <= at);
        if i == 0 {
            return Sample::default();
        }
        let s = self.history[i - 1];
        Sample {
            ready_ms: s.ready_ms + s.ready as f64 * (at - s.at) as f64,
            at,
            ..s
        }
    }

    /// Jobs waiting now.
    pub fn waiting(&self) -> u32 {
        self.queue.len() as u32
    }

    /// Jobs rendering now.
    pub fn running(&self) -> u32 {
        self.running
    }

    /// Instances in service.
    pub fn ready(&self) -> u32 {
        self.ready
    }

    /// Instances launched and not terminated.
    pub fn live(&self) -> u32 {
        self.live.len() as u32
    }

    /// The group's desired capacity (the instances that exist, for a fleet without a group).
    pub fn desired(&self) -> u32 {
        if self.fleet.asg {
            self.desired
        } else {
            self.live()
        }
    }

    /// Instances launched and not terminated, oldest first.
    pub fn instances(&self) -> impl DoubleEndedIterator<Item = &Instance> {
        self.live.iter().map(|&i| &self.instances[i as usize])
    }

    pub fn instance(&self, id: u32) -> &Instance {
        &self.instances[id as usize]
    }

    /// Waiting jobs as `(submitted, render)`, in no particular order.
    pub fn waiting_jobs(&self) -> impl Iterator<Item = (Millis, Millis)> + '_ {
        self.queue.iter().map(|(_, _, Reverse(j))| {
            let r = &self.jobs[*j as usize];
            (r.job.submitted, r.job.render)
        })
    }

    /// A running job's `(started, render)`.
    pub fn running_job(&self, job: u32) -> (Millis, Millis) {
        let r = &self.jobs[job as usize];
        (r.started, r.job.render)
    }

    /// Whether a job is waiting for a slot.
    pub fn is_waiting(&self, job: u32) -> bool {
        self.jobs[job as usize].state == JobState::Waiting
    }

    // ---- what policies do ----

    fn new_instance(&mut self) -> u32 {
        let id = self.instances.len() as u32;
        let boot = ms(self.setup.boot.sample(&mut self.boot_rng));
        self.instances.push(Instance {
            id,
            label: format!("i-{id:07}"),
            launched: self.now,
            ready_at: self.now + boot,
            state: InstanceState::Booting,
            jobs: Vec::new(),
            idle_since: None,
            initial: false,
            ended: None,
        });
        self.live.insert(id);
        self.booting += 1;
        self.push(self.now + boot, What::Ready { inst: id });
        id
    }

    /// Launches `n` instances outside any group (one fleet request).
    pub fn launch(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            self.new_instance();
        }
        self.actions += 1;
    }

    /// Sets the group's desired capacity: launches the missing instances, or terminates the
    /// surplus the group chooses by `victims`, never a protected one. Returns whether anything
    /// changed.
    pub fn set_desired(&mut self, n: u32, victims: Victims) -> bool {
        let live = self.live();
        let changed = n != self.desired;
        self.desired = n;
        let mut removed = 0;
        if live < n {
            for _ in live..n {
                self.new_instance();
            }
        } else if live > n {
            let fleet = self.fleet;
            let mut cands: Vec<u32> = self
                .instances()
                .filter(|i| !i.protected(&fleet))
                .map(|i| i.id)
                .collect();
            cands.shuffle(&mut self.victim_rng);
            let now = self.now;
            match victims {
                Victims::AsgDefault => cands.sort_by_key(|&i| {
                    // Closest to the next billing hour: the most of the hour used.
                    Reverse((now - self.instances[i as usize].launched) % 3_600_000)
                }),
                Victims::PendingThenRandom => {
                    cands.sort_by_key(|&i| self.instances[i as usize].state == InstanceState::Ready)
                }
            }
            for id in cands.into_iter().take((live - n) as usize) {
                self.terminate_inner(id);
                removed += 1;
            }
            self.dispatch();
        }
        if changed || removed > 0 {
            self.actions += 1;
        }
        changed || removed > 0
    }

    /// Terminates one instance (interrupting its jobs), decrementing the desired capacity when
    /// asked. Returns false if it was already gone.
    pub fn terminate(&mut self, id: u32, decrement: bool) -> bool {
        if !self.live.contains(&id) {
            return false;
        }
        self.terminate_inner(id);
        self.dispatch();
        if decrement {
            self.desired = self.desired.saturating_sub(1);
        }
        self.actions += 1;
        true
    }

    fn terminate_inner(&mut self, id: u32) {
        let now = self.now;
        let inst = &mut self.instances[id as usize];
        match inst.state {
            InstanceState::Booting => self.booting -= 1,
            InstanceState::Ready => self.ready -= 1,
            InstanceState::Gone => return,
        }
        inst.state = InstanceState::Gone;
        inst.ended = Some(now);
        inst.idle_since = None;
        let jobs = std::mem::take(&mut inst.jobs);
        self.live.remove(&id);
        self.free.remove(&id);
        for j in jobs {
            // The message reappears in the queue; the job starts again from the beginning.
            self.interrupted += 1;
            self.running -= 1;
            let r = &mut self.jobs[j as usize];
            r.attempt += 1;
            r.state = JobState::Waiting;
            r.enqueued = now;
            self.queue
                .push((r.job.priority, Reverse(r.job.submitted), Reverse(j)));
        }
    }

    fn arm_idle_exit(&mut self, id: u32) {
        if let (Some(after), Some(since)) =
            (self.fleet.idle_exit, self.instances[id as usize].idle_since)
        {
            self.push(since + after, What::IdleExit { inst: id, since });
        }
    }

    /// Starts waiting jobs on free slots: the best-placed job on the oldest free instance (the
    /// agents poll the same queue; the oldest taking work first keeps newer ones idle and
    /// retirable, for every policy alike).
    fn dispatch(&mut self) {
        let slots = self.setup.slots.max(1) as usize;
        while let Some(&id) = self.free.first() {
            let Some((_, _, Reverse(j))) = self.queue.pop() else {
                break;
            };
            let now = self.now;
            let run = &mut self.jobs[j as usize];
            run.state = JobState::Running { inst: id };
            run.started = now;
            run.waited += now - run.enqueued;
            let at = now + run.job.render;
            let attempt = run.attempt;
            let inst = &mut self.instances[id as usize];
            inst.jobs.push(j);
            inst.idle_since = None;
            if inst.jobs.len() >= slots {
                self.free.remove(&id);
            }
            self.running += 1;
            self.push(at, What::Finish { job: j, attempt });
        }
    }

    fn handle(&mut self, what: What) {
        match what {
            What::Arrive { job } => {
                let r = &mut self.jobs[job as usize];
                r.state = JobState::Waiting;
                r.enqueued = self.now;
                self.queue
                    .push((r.job.priority, Reverse(r.job.submitted), Reverse(job)));
                self.dispatch();
            }
            What::Finish { job, attempt } => {
                let r = &mut self.jobs[job as usize];
                let JobState::Running { inst } = r.state else {
                    return;
                };
                if r.attempt != attempt {
                    return;
                }
                r.state = JobState::Done;
                self.done += 1;
                self.running -= 1;
                let i = &mut self.instances[inst as usize];
                i.jobs.retain(|&x| x != job);
                if i.jobs.is_empty() {
                    i.idle_since = Some(self.now);
                }
                self.free.insert(inst);
                self.arm_idle_exit(inst);
                self.dispatch();
            }
            What::Ready { inst } => {
                let i = &mut self.instances[inst as usize];
                if i.state != InstanceState::Booting {
                    return;
                }
                i.state = InstanceState::Ready;
                i.idle_since = Some(self.now);
                self.booting -= 1;
                self.ready += 1;
                self.free.insert(inst);
                self.arm_idle_exit(inst);
                self.dispatch();
            }
            What::IdleExit { inst, since } => {
                let i = &self.instances[inst as usize];
                if i.state == InstanceState::Ready && i.idle_since == Some(since) {
                    self.terminate(inst, true);
                }
            }
            What::Wake => {}
        }
    }

    fn outcome(self) -> Outcome {
        let end = self.now;
        let min_billed = ms(self.setup.min_billed_secs);
        let instance_secs = self
            .instances
            .iter()
            .map(|i| (i.ended.unwrap_or(end) - i.launched).max(min_billed) as f64 / 1000.0)
            .sum();
        let finished: Vec<&JobRun> = self
            .jobs
            .iter()
            .filter(|r| r.state == JobState::Done)
            .collect();
        Outcome {
            jobs: finished.len(),
            unfinished: self.jobs.len() - finished.len(),
            completions: self.done,
            waits: finished.iter().map(|r| r.waited as f64 / 1000.0).collect(),
            instance_secs,
            render_secs: finished.iter().map(|r| r.job.render as f64 / 1000.0).sum(),
            interrupted: self.interrupted,
            actions: self.actions,
            launched: self.instances.iter().filter(|i| !i.initial).count(),
            end_secs: end as f64 / 1000.0,
            history: self.history,
        }
    }
}

/// Runs one policy over the jobs. The run lasts until the last submission plus the drain time,
/// and longer if jobs are still unfinished then; instances are billed until it ends.
pub fn run(setup: &Setup, jobs: &[Job], policy: &mut dyn Policy) -> Outcome {
    let mut w = World::new(setup.clone(), jobs, policy.fleet());
    let last = jobs.iter().map(|j| j.submitted).max().unwrap_or(0);
    let horizon = last + ms(setup.drain_secs);
    let mut wake_at = Some(0);
    w.push(0, What::Wake);
    while let Some(Reverse(ev)) = w.events.pop() {
        let all_done = w.done == w.jobs.len();
        if ev.at > horizon && all_done || ev.at > horizon + GIVE_UP_AFTER {
            break;
        }
        w.advance(ev.at);
        let mut next = None;
        match ev.what {
            What::Wake if wake_at == Some(ev.at) => {
                wake_at = None;
                next = policy.wake(&mut w);
            }
            What::Arrive { job } => {
                w.handle(ev.what);
                next = policy.submitted(&w, job);
            }
            what => w.handle(what),
        }
        if let Some(t) = next {
            let t = t.max(w.now);
            if wake_at.is_none_or(|p| t < p) {
                wake_at = Some(t);
                w.push(t, What::Wake);
            }
        }
        w.record();
        if w.done == w.jobs.len() && w.now >= horizon {
            break;
        }
    }
    if w.now < horizon {
        w.advance(horizon);
    }
    w.outcome()
}

#[cfg(test)]
mod tests;
