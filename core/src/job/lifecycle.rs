//! Every move a job can make, in one table: from which states, to which, under which guard, and
//! who may make it. [`apply`] is the one pure implementation of the table; the in-memory store
//! locks and applies, the DynamoDB store builds its condition expressions from the same rules
//! ([`Rule::condition`]), and the contract tests run every transition from every state against
//! both stores and compare with [`apply`].
//!
//! ```text
//! queued  --claim-------------> running   (agent; nobody holds it)
//! running --claim-------------> running   (agent; the holder's lease lapsed: a takeover)
//! running --heartbeat---------> running   (agent; its attempt: progress, lease, cancel check)
//! running --finish------------> succeeded | failed | cancelled   (agent; its attempt)
//! running --release-----------> queued    (agent, scaler; that attempt: another worker renders)
//! queued  --cancel------------> cancelled (API)
//! running --request_cancel----> running   (API; the agent sees the flag and ends it cancelled)
//! queued | lapsed running --fail_unfinished--> failed   (sweeper; dead-lettered, out of retries)
//! queued  --redrive-----------> queued    (sweeper; its message sent again from the DLQ)
//! any     --mark_enqueued-----> same      (API, sweeper; bookkeeping of the message send)
//! ```

use crate::clock::EpochMillis;
use crate::job::{Job, JobError, JobState, Outcome};
use crate::ports::Lease;

use JobState::{Cancelled, Failed, Queued, Running, Succeeded};

/// Who makes a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The job server, on a client's request.
    Api,
    /// The render agent running (or about to run) the job.
    Agent,
    /// The job server's sweeper (dead letters, unanswered messages).
    Sweeper,
    /// The scaler, handing back the jobs of a worker it replaces.
    Scaler,
}

/// The condition a move needs besides the job's state being one of the rule's `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The job exists; any state.
    Exists,
    /// The state alone.
    State,
    /// Nobody holds the job: queued, or running with its lease lapsed before `now`.
    Unheld,
    /// Running under the caller's attempt and instance: a stale worker can never write over a
    /// newer attempt.
    CurrentAttempt,
}

/// The moves, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    MarkEnqueued,
    Redrive,
    Cancel,
    RequestCancel,
    Claim,
    Heartbeat,
    Finish,
    Release,
    FailUnfinished,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub transition: Transition,
    pub name: &'static str,
    /// The states the move starts from.
    pub from: &'static [JobState],
    /// The states it may end in; empty when the state does not change.
    pub to: &'static [JobState],
    pub guard: Guard,
    pub who: &'static [Actor],
}

const ANY: &[JobState] = &JobState::ALL;
const FINAL: &[JobState] = &[Succeeded, Failed, Cancelled];

/// The table.
pub const RULES: [Rule; 9] = [
    Rule {
        transition: Transition::MarkEnqueued,
        name: "mark_enqueued",
        from: ANY,
        to: &[],
        guard: Guard::Exists,
        who: &[Actor::Api, Actor::Sweeper],
    },
    Rule {
        transition: Transition::Redrive,
        name: "redrive",
        from: &[Queued],
        to: &[],
        guard: Guard::State,
        who: &[Actor::Sweeper],
    },
    Rule {
        transition: Transition::Cancel,
        name: "cancel",
        from: &[Queued],
        to: &[Cancelled],
        guard: Guard::State,
        who: &[Actor::Api],
    },
    Rule {
        transition: Transition::RequestCancel,
        name: "request_cancel",
        from: &[Running],
        to: &[],
        guard: Guard::State,
        who: &[Actor::Api],
    },
    Rule {
        transition: Transition::Claim,
        name: "claim",
        from: &[Queued, Running],
        to: &[Running],
        guard: Guard::Unheld,
        who: &[Actor::Agent],
    },
    Rule {
        transition: Transition::Heartbeat,
        name: "heartbeat",
        from: &[Running],
        to: &[],
        guard: Guard::CurrentAttempt,
        who: &[Actor::Agent],
    },
    Rule {
        transition: Transition::Finish,
        name: "finish",
        from: &[Running],
        to: FINAL,
        guard: Guard::CurrentAttempt,
        who: &[Actor::Agent],
    },
    Rule {
        transition: Transition::Release,
        name: "release",
        from: &[Running],
        to: &[Queued],
        guard: Guard::CurrentAttempt,
        who: &[Actor::Agent, Actor::Scaler],
    },
    Rule {
        transition: Transition::FailUnfinished,
        name: "fail_unfinished",
        from: &[Queued, Running],
        to: &[Failed],
        guard: Guard::Unheld,
        who: &[Actor::Sweeper],
    },
];

impl Transition {
    pub fn rule(self) -> &'static Rule {
        RULES
            .iter()
            .find(|r| r.transition == self)
            .expect("every transition has a rule")
    }
}

/// The placeholder of a state's name in a DynamoDB expression (`:queued`, ...).
pub fn state_placeholder(state: JobState) -> String {
    format!(":{}", state.as_str())
}

impl Rule {
    /// The rule's guard as a DynamoDB condition expression. It names the state attribute `#st`,
    /// each `from` state by [`state_placeholder`], the caller's time `:now`, attempt `:a` and
    /// instance `:inst`; [`Rule::placeholders`] lists what it uses.
    pub fn condition(&self) -> String {
        let is = |s: &JobState| format!("#st = {}", state_placeholder(*s));
        match self.guard {
            Guard::Exists => "attribute_exists(pk)".to_owned(),
            Guard::State => self.from.iter().map(is).collect::<Vec<_>>().join(" OR "),
            Guard::Unheld => format!(
                "{} OR ({} AND lease_until < :now)",
                is(&Queued),
                is(&Running)
            ),
            Guard::CurrentAttempt => {
                format!("{} AND attempts = :a AND instance_id = :inst", is(&Running))
            }
        }
    }

    /// The states whose placeholders [`Rule::condition`] uses.
    pub fn condition_states(&self) -> &'static [JobState] {
        match self.guard {
            Guard::Exists => &[],
            _ => self.from,
        }
    }
}

/// A move with what it carries.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    MarkEnqueued {
        now: EpochMillis,
    },
    Redrive {
        now: EpochMillis,
    },
    Cancel {
        now: EpochMillis,
    },
    RequestCancel {
        now: EpochMillis,
    },
    Claim(&'a Lease),
    Heartbeat {
        attempt: u32,
        instance: &'a str,
        progress: f64,
        lease_until: Option<EpochMillis>,
    },
    Finish {
        attempt: u32,
        instance: &'a str,
        outcome: &'a Outcome,
        now: EpochMillis,
    },
    Release {
        attempt: u32,
        instance: &'a str,
        now: EpochMillis,
    },
    FailUnfinished {
        error: &'a JobError,
        now: EpochMillis,
    },
}

/// Why [`apply`] refused a move: the job's state or attempt did not meet the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{transition} is not allowed for a job that is {state}")]
pub struct Refused {
    pub transition: &'static str,
    pub state: JobState,
}

impl Change<'_> {
    pub fn transition(&self) -> Transition {
        match self {
            Change::MarkEnqueued { .. } => Transition::MarkEnqueued,
            Change::Redrive { .. } => Transition::Redrive,
            Change::Cancel { .. } => Transition::Cancel,
            Change::RequestCancel { .. } => Transition::RequestCancel,
            Change::Claim(_) => Transition::Claim,
            Change::Heartbeat { .. } => Transition::Heartbeat,
            Change::Finish { .. } => Transition::Finish,
            Change::Release { .. } => Transition::Release,
            Change::FailUnfinished { .. } => Transition::FailUnfinished,
        }
    }

    /// The state the move ends in, when it changes the state.
    pub fn target(&self) -> Option<JobState> {
        match self {
            Change::Finish { outcome, .. } => Some(outcome.state()),
            other => other.transition().rule().to.first().copied(),
        }
    }

    /// The caller's time, for guards that compare with a lease.
    pub fn now(&self) -> Option<EpochMillis> {
        match *self {
            Change::MarkEnqueued { now }
            | Change::Redrive { now }
            | Change::Cancel { now }
            | Change::RequestCancel { now }
            | Change::Finish { now, .. }
            | Change::Release { now, .. }
            | Change::FailUnfinished { now, .. } => Some(now),
            Change::Claim(lease) => Some(lease.now),
            Change::Heartbeat { .. } => None,
        }
    }

    /// The caller's attempt and instance, for [`Guard::CurrentAttempt`].
    pub fn attempt(&self) -> Option<(u32, &str)> {
        match *self {
            Change::Heartbeat {
                attempt, instance, ..
            }
            | Change::Finish {
                attempt, instance, ..
            }
            | Change::Release {
                attempt, instance, ..
            } => Some((attempt, instance)),
            _ => None,
        }
    }
}

/// Whether the table allows `change` for `job` as it is now.
pub fn allows(job: &Job, change: &Change<'_>) -> bool {
    let rule = change.transition().rule();
    if !rule.from.contains(&job.state) {
        return false;
    }
    match rule.guard {
        Guard::Exists | Guard::State => true,
        Guard::Unheld => {
            job.state == Queued
                || change
                    .now()
                    .is_some_and(|now| job.lease_until.is_some_and(|l| l < now))
        }
        Guard::CurrentAttempt => change.attempt().is_some_and(|(attempt, instance)| {
            job.attempts == attempt && job.instance_id.as_deref() == Some(instance)
        }),
    }
}

/// Makes the move on `job`, or refuses it and leaves `job` as it was.
pub fn apply(job: &mut Job, change: &Change<'_>) -> Result<(), Refused> {
    if !allows(job, change) {
        return Err(Refused {
            transition: change.transition().rule().name,
            state: job.state,
        });
    }
    if let Some(state) = change.target() {
        job.state = state;
    }
    match *change {
        Change::MarkEnqueued { now } => {
            job.enqueued = true;
            job.enqueued_at = Some(now);
        }
        Change::Redrive { now } => {
            job.redrives += 1;
            job.enqueued = true;
            job.enqueued_at = Some(now);
            job.updated_at = now;
        }
        Change::Cancel { now } => finished(job, now),
        Change::RequestCancel { now } => {
            job.cancel_requested = true;
            job.updated_at = now;
        }
        Change::Claim(lease) => {
            job.attempts += 1;
            job.instance_id = Some(lease.instance.clone());
            job.message_id = Some(lease.message_id.clone());
            job.started_at.get_or_insert(lease.now);
            job.lease_until = Some(lease.until);
            job.updated_at = lease.now;
            job.progress = 0.0;
        }
        Change::Heartbeat {
            progress,
            lease_until,
            ..
        } => {
            job.progress = progress.clamp(0.0, 1.0);
            if let Some(l) = lease_until {
                job.lease_until = Some(l);
            }
        }
        Change::Finish { outcome, now, .. } => {
            finished(job, now);
            match outcome {
                Outcome::Succeeded(o) => {
                    job.progress = 1.0;
                    job.output = Some(o.clone());
                }
                Outcome::Failed(e) => job.error = Some(e.clone()),
                Outcome::Cancelled => {}
            }
        }
        Change::Release { now, .. } => {
            job.instance_id = None;
            job.message_id = None;
            job.lease_until = None;
            job.progress = 0.0;
            job.updated_at = now;
        }
        Change::FailUnfinished { error, now } => {
            finished(job, now);
            job.error = Some(error.clone());
        }
    }
    Ok(())
}

/// What every move into a terminal state writes: when, and no lease any more.
fn finished(job: &mut Job, now: EpochMillis) {
    job.finished_at = Some(now);
    job.updated_at = now;
    job.lease_until = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;
    use crate::job::JobOutput;
    use crate::spec::JobSpec;

    fn job(state: JobState) -> Job {
        let spec = JobSpec::from_json(
            br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"}}]}"##,
        )
        .unwrap();
        let mut j = Job::new(JobId::generate(), "acme", spec, 1_000);
        j.state = state;
        if state == Running {
            j.attempts = 1;
            j.instance_id = Some("i-1".into());
            j.lease_until = Some(5_000);
        }
        j
    }

    #[test]
    fn every_transition_has_exactly_one_rule_and_rules_end_where_they_say() {
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(r.transition.rule().name, r.name);
            assert!(RULES[i + 1..].iter().all(|o| o.transition != r.transition));
            assert!(!r.from.is_empty() && !r.who.is_empty(), "{}", r.name);
            // Terminal states never change again: no rule but bookkeeping starts from one.
            if r.guard != Guard::Exists {
                assert!(r.from.iter().all(|s| !s.is_terminal()), "{}", r.name);
            }
        }
    }

    #[test]
    fn the_guards_read_as_dynamodb_conditions() {
        assert_eq!(
            Transition::Claim.rule().condition(),
            "#st = :queued OR (#st = :running AND lease_until < :now)"
        );
        assert_eq!(
            Transition::Finish.rule().condition(),
            "#st = :running AND attempts = :a AND instance_id = :inst"
        );
        assert_eq!(Transition::Cancel.rule().condition(), "#st = :queued");
        assert_eq!(
            Transition::MarkEnqueued.rule().condition(),
            "attribute_exists(pk)"
        );
    }

    #[test]
    fn a_claim_takes_a_queued_job_or_a_lapsed_lease_only() {
        let lease = Lease {
            instance: "i-2".into(),
            message_id: "m".into(),
            now: 4_000,
            until: 9_000,
        };
        let mut held = job(Running);
        let before = held.clone();
        assert!(apply(&mut held, &Change::Claim(&lease)).is_err());
        assert_eq!(held, before, "a refused move changes nothing");
        let late = Lease {
            now: 6_000,
            ..lease.clone()
        };
        apply(&mut held, &Change::Claim(&late)).unwrap();
        assert_eq!(
            (held.attempts, held.instance_id.as_deref()),
            (2, Some("i-2"))
        );
        let mut queued = job(Queued);
        apply(&mut queued, &Change::Claim(&lease)).unwrap();
        assert_eq!(queued.started_at, Some(4_000));
        assert!(apply(&mut job(Succeeded), &Change::Claim(&late)).is_err());
    }

    #[test]
    fn only_the_current_attempt_finishes_and_the_outcome_picks_the_state() {
        let out = Outcome::Succeeded(JobOutput {
            key: "k".into(),
            size_bytes: 1,
            duration: 1.0,
        });
        let stale = Change::Finish {
            attempt: 1,
            instance: "i-9",
            outcome: &out,
            now: 2_000,
        };
        let mut j = job(Running);
        assert_eq!(
            apply(&mut j, &stale).unwrap_err().to_string(),
            "finish is not allowed for a job that is running"
        );
        let current = Change::Finish {
            attempt: 1,
            instance: "i-1",
            outcome: &out,
            now: 2_000,
        };
        apply(&mut j, &current).unwrap();
        assert_eq!((j.state, j.progress, j.lease_until), (Succeeded, 1.0, None));
    }
}
