//! The job lifecycle table as a contract: every transition of `job::lifecycle::RULES`, tried from
//! every state (a live and a lapsed lease, the current and a stale attempt), must do in each store
//! exactly what the pure `lifecycle::apply` does: accept or refuse alike, and leave the same job.

use renderfleet_core::fakes::MemoryStore;
use renderfleet_core::ids::JobId;
use renderfleet_core::job::lifecycle::{self, Change, RULES, Transition};
use renderfleet_core::job::{Job, JobError, JobOutput, JobState, Outcome};
use renderfleet_core::ports::{ActiveWork, CancelOutcome, Claim, Directive, JobLedger, JobStore};
use renderfleet_core::ports::{Lease, ListQuery};
use renderfleet_core::spec::JobSpec;
use renderfleet_core::testkit::MotoServer;

trait Store: JobStore + JobLedger + ActiveWork {}
impl<T: JobStore + JobLedger + ActiveWork> Store for T {}

const NOW: i64 = 10_000;

/// A job in `state`: running ones under attempt 1 on i-1, with a lease until `lease_until`.
fn job_in(state: JobState, lease_until: i64) -> Job {
    let spec = JobSpec::from_json(
        br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"}}]}"##,
    )
    .unwrap();
    let mut j = Job::new(JobId::generate(), "acme", spec, 1_000);
    j.state = state;
    j.enqueued = true;
    j.enqueued_at = Some(1_100);
    if state != JobState::Queued {
        j.attempts = 1;
        j.started_at = Some(2_000);
        j.instance_id = Some("i-1".into());
        j.message_id = Some("m-1".into());
    }
    if state == JobState::Running {
        j.lease_until = Some(lease_until);
        j.progress = 0.25;
    }
    if state.is_terminal() {
        j.finished_at = Some(3_000);
        j.instance_id = None;
        j.message_id = None;
    }
    j
}

/// The starting points: every state, and running with a live and with a lapsed lease.
fn starts() -> Vec<(String, Job)> {
    let mut out = vec![
        (
            "running, lease live".into(),
            job_in(JobState::Running, NOW + 5_000),
        ),
        (
            "running, lease lapsed".into(),
            job_in(JobState::Running, NOW - 1),
        ),
    ];
    for st in JobState::ALL {
        if st != JobState::Running {
            out.push((st.to_string(), job_in(st, 0)));
        }
    }
    out
}

/// What a store method answered, in the table's terms: applied or not.
async fn run(store: &dyn Store, id: &JobId, change: &Change<'_>) -> bool {
    let r = match *change {
        Change::MarkEnqueued { now } => store.mark_enqueued(id, now).await.map(|()| true),
        Change::Redrive { now } => store.redrive(id, now).await,
        Change::Cancel { now } => store
            .cancel(id, now)
            .await
            .map(|o| matches!(o, CancelOutcome::Cancelled(_))),
        Change::RequestCancel { now } => store
            .cancel(id, now)
            .await
            .map(|o| matches!(o, CancelOutcome::Requested(_))),
        Change::Claim(lease) => store
            .claim(id, lease)
            .await
            .map(|c| matches!(c, Claim::Claimed(_))),
        Change::Heartbeat {
            attempt,
            instance,
            progress,
            lease_until,
        } => store
            .heartbeat(id, attempt, instance, progress, lease_until)
            .await
            .map(|d| d != Directive::Lost),
        Change::Finish {
            attempt,
            instance,
            outcome,
            now,
        } => store.finish(id, attempt, instance, outcome, now).await,
        Change::Release {
            attempt,
            instance,
            now,
        } => store.release(id, attempt, instance, now).await,
        Change::FailUnfinished { error, now } => store.fail_unfinished(id, error, now).await,
    };
    r.unwrap_or_else(|e| panic!("{:?} failed: {e}", change.transition()))
}

/// The moves of one transition worth trying: the current attempt and a stale one where it
/// matters, each outcome of a finish.
fn changes<'a>(
    t: Transition,
    lease: &'a Lease,
    outcomes: &'a [Outcome],
    error: &'a JobError,
) -> Vec<Change<'a>> {
    let attempts = [(1, "i-1"), (1, "i-2"), (2, "i-1")];
    match t {
        Transition::MarkEnqueued => vec![Change::MarkEnqueued { now: NOW }],
        Transition::Redrive => vec![Change::Redrive { now: NOW }],
        Transition::Cancel => vec![Change::Cancel { now: NOW }],
        Transition::RequestCancel => vec![Change::RequestCancel { now: NOW }],
        Transition::Claim => vec![Change::Claim(lease)],
        Transition::Heartbeat => attempts
            .iter()
            .flat_map(|&(attempt, instance)| {
                [None, Some(NOW + 9_000)].map(|lease_until| Change::Heartbeat {
                    attempt,
                    instance,
                    progress: 1.5,
                    lease_until,
                })
            })
            .collect(),
        Transition::Finish => attempts
            .iter()
            .flat_map(|&(attempt, instance)| {
                outcomes.iter().map(move |outcome| Change::Finish {
                    attempt,
                    instance,
                    outcome,
                    now: NOW,
                })
            })
            .collect(),
        Transition::Release => attempts
            .iter()
            .map(|&(attempt, instance)| Change::Release {
                attempt,
                instance,
                now: NOW,
            })
            .collect(),
        Transition::FailUnfinished => vec![Change::FailUnfinished { error, now: NOW }],
    }
}

/// What the table says a store does with `change`: whether the move applies, and the job after.
/// A store's `cancel` tries both of its rules in order: cancel a queued job, else flag a running one.
fn expect(job: &Job, change: &Change<'_>) -> (bool, Job) {
    let mut after = job.clone();
    match *change {
        Change::Cancel { now } | Change::RequestCancel { now } => {
            let cancelled = lifecycle::apply(&mut after, &Change::Cancel { now }).is_ok();
            let flagged =
                !cancelled && lifecycle::apply(&mut after, &Change::RequestCancel { now }).is_ok();
            let ours = if matches!(change, Change::Cancel { .. }) {
                cancelled
            } else {
                flagged
            };
            (ours, after)
        }
        _ => (lifecycle::apply(&mut after, change).is_ok(), after),
    }
}

async fn table_contract(store: &dyn Store) {
    let lease = Lease {
        instance: "i-3".into(),
        message_id: "m-3".into(),
        now: NOW,
        until: NOW + 30_000,
    };
    let outcomes = [
        Outcome::Succeeded(JobOutput {
            key: "outputs/x.mp4".into(),
            size_bytes: 42,
            duration: 1.0,
        }),
        Outcome::Failed(JobError {
            code: "engine_failed".into(),
            message: "it broke".into(),
        }),
        Outcome::Cancelled,
    ];
    let error = JobError {
        code: "dead_lettered".into(),
        message: "the message reached the dead-letter queue".into(),
    };
    let mut tried = 0;
    let mut mismatches = Vec::new();
    for rule in &RULES {
        for change in changes(rule.transition, &lease, &outcomes, &error) {
            for (start, job) in starts() {
                let (allowed, expected) = expect(&job, &change);
                store.create(&job, None).await.unwrap();
                let applied = run(store, &job.id, &change).await;
                let stored = store.get(&job.id).await.unwrap().unwrap();
                if applied != allowed || stored != expected {
                    mismatches.push(format!(
                        "{} from {start} ({change:?}): store applied={applied}, table allows={allowed}\n  stored   {stored:?}\n  expected {expected:?}",
                        rule.name
                    ));
                }
                tried += 1;
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {tried} moves differ from the table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The active index follows the state: only queued and running jobs are in it.
    let active = store.active_jobs().await.unwrap();
    assert!(active.iter().all(|j| !j.state.is_terminal()));
    let page = store
        .list(
            "acme",
            &ListQuery {
                state: None,
                limit: 1000,
                cursor: None,
            },
        )
        .await
        .unwrap();
    let open = page.jobs.iter().filter(|j| !j.state.is_terminal()).count();
    assert_eq!(
        active.len(),
        open,
        "every open job, and only those, is active"
    );
}

#[tokio::test]
async fn the_memory_store_moves_jobs_as_the_lifecycle_table_says() {
    table_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_dynamodb_store_moves_jobs_as_the_lifecycle_table_says() {
    let moto = MotoServer::start();
    table_contract(&moto.jobs_table().await).await;
}
