//! Contract tests: the same cases run against the in-memory fakes and the AWS adapters on a moto
//! server of their own, so the fakes the orchestration tests use cannot drift from the real APIs.

use std::time::Duration;

use renderfleet_core::aws::SqsQueue;
use renderfleet_core::fakes::{MemoryHealth, MemoryQueue, MemoryStore};
use renderfleet_core::ids::{AssetId, JobId};
use renderfleet_core::job::{Job, JobError, JobOutput, JobState, Outcome};
use renderfleet_core::message::JobMessage;
use renderfleet_core::ports::*;
use renderfleet_core::spec::JobSpec;
use renderfleet_core::testkit::MotoServer;

trait Store: JobStore + JobLedger + ActiveWork + ApiKeys + AssetStore + ScalerMemory {}
impl<T: JobStore + JobLedger + ActiveWork + ApiKeys + AssetStore + ScalerMemory> Store for T {}

trait Health: HealthReporter + AgentDirectory + WorkGate + Retirement {}
impl<T: HealthReporter + AgentDirectory + WorkGate + Retirement> Health for T {}

trait Queue: JobQueue + JobSource + QueueDepth {}
impl<T: JobQueue + JobSource + QueueDepth> Queue for T {}

fn spec() -> JobSpec {
    JobSpec::from_json(
        br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"},"texts":[{"text":"it's \"quoted\" %{pts} \\ back"}]}]}"##,
    )
    .unwrap()
}

fn job(tenant: &str, created: i64) -> Job {
    Job::new(JobId::generate(), tenant, spec(), created)
}

fn lease(instance: &str, message: &str, now: i64, until: i64) -> Lease {
    Lease {
        instance: instance.into(),
        message_id: message.into(),
        now,
        until,
    }
}

async fn store_contract(s: &dyn Store) {
    // Create, read back byte for byte, see it active.
    let a = job("acme", 1_000);
    assert_eq!(s.create(&a, None).await.unwrap(), Created::New);
    let got = s.get(&a.id).await.unwrap().unwrap();
    assert_eq!(got, a, "a job reads back exactly as written");
    assert!(s.get(&JobId::generate()).await.unwrap().is_none());
    assert!(
        s.active_jobs()
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == a.id && j.state == JobState::Queued && !j.enqueued)
    );
    s.mark_enqueued(&a.id, 1_500).await.unwrap();
    let marked = s.get(&a.id).await.unwrap().unwrap();
    assert_eq!((marked.enqueued, marked.enqueued_at), (true, Some(1_500)));
    assert!(
        s.active_jobs()
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == a.id && j.enqueued_at == Some(1_500))
    );
    s.mark_enqueued(&JobId::generate(), 1_500).await.unwrap();
    // A dead letter of a waiting job, sent again: counted on the job.
    assert!(s.redrive(&a.id, 1_600).await.unwrap());
    let redriven = s.get(&a.id).await.unwrap().unwrap();
    assert_eq!((redriven.redrives, redriven.enqueued_at), (1, Some(1_600)));
    assert!(!s.redrive(&JobId::generate(), 1_600).await.unwrap());

    // Idempotency: the same key finds the first job; another tenant's key space is separate.
    let idem = Idempotency {
        tenant: "acme".into(),
        key: "order-7".into(),
        body_hash: "h1".into(),
        expires_at: 10_000_000,
    };
    let b = job("acme", 2_000);
    assert_eq!(s.create(&b, Some(&idem)).await.unwrap(), Created::New);
    let b2 = job("acme", 2_001);
    assert_eq!(
        s.create(&b2, Some(&idem)).await.unwrap(),
        Created::Existing {
            job_id: b.id.clone(),
            body_hash: "h1".into()
        }
    );
    assert!(
        s.get(&b2.id).await.unwrap().is_none(),
        "nothing is written for a repeated key"
    );
    let other = Idempotency {
        tenant: "globex".into(),
        ..idem.clone()
    };
    assert_eq!(
        s.create(&job("globex", 2_002), Some(&other)).await.unwrap(),
        Created::New
    );

    // Listing: newest first, paged, filtered, per tenant.
    for t in 3..8 {
        s.create(&job("acme", t * 1_000), None).await.unwrap();
    }
    let page1 = s
        .list(
            "acme",
            &ListQuery {
                state: None,
                limit: 3,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.jobs.len(), 3);
    assert!(
        page1
            .jobs
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
    assert!(page1.jobs.iter().all(|j| j.tenant == "acme"));
    let page2 = s
        .list(
            "acme",
            &ListQuery {
                state: None,
                limit: 3,
                cursor: page1.next_cursor.clone(),
            },
        )
        .await
        .unwrap();
    let page3 = s
        .list(
            "acme",
            &ListQuery {
                state: None,
                limit: 3,
                cursor: page2.next_cursor.clone(),
            },
        )
        .await
        .unwrap();
    let all: Vec<_> = page1
        .jobs
        .iter()
        .chain(&page2.jobs)
        .chain(&page3.jobs)
        .map(|j| j.id.clone())
        .collect();
    assert_eq!(all.len(), 7, "7 acme jobs over three pages");
    assert!(page3.next_cursor.is_none());
    let globex = s
        .list(
            "globex",
            &ListQuery {
                state: None,
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(globex.jobs.len(), 1);
    let foreign = s
        .list(
            "globex",
            &ListQuery {
                state: None,
                limit: 100,
                cursor: page1.next_cursor.clone(),
            },
        )
        .await
        .unwrap();
    assert!(
        foreign.jobs.iter().all(|j| j.tenant == "globex"),
        "a cursor never reveals another tenant's jobs"
    );

    // Claim, heartbeat, cancel while running, finish once.
    let Claim::Claimed(run) = s
        .claim(&a.id, &lease("i-1", "m-1", 10_000, 40_000))
        .await
        .unwrap()
    else {
        panic!("claim")
    };
    assert_eq!(
        (
            run.state,
            run.attempts,
            run.instance_id.as_deref(),
            run.message_id.as_deref()
        ),
        (JobState::Running, 1, Some("i-1"), Some("m-1"))
    );
    assert_eq!(run.started_at, Some(10_000));
    assert!(matches!(
        s.claim(&a.id, &lease("i-2", "m-1", 11_000, 41_000))
            .await
            .unwrap(),
        Claim::NotClaimable(_)
    ));
    assert_eq!(
        s.heartbeat(&a.id, 1, "i-1", 0.5, Some(45_000))
            .await
            .unwrap(),
        Directive::Continue
    );
    assert_eq!(
        s.heartbeat(&a.id, 1, "i-2", 0.5, Some(45_000))
            .await
            .unwrap(),
        Directive::Lost
    );
    assert!(matches!(
        s.cancel(&a.id, 12_000).await.unwrap(),
        CancelOutcome::Requested(_)
    ));
    assert_eq!(
        s.heartbeat(&a.id, 1, "i-1", 0.6, None).await.unwrap(),
        Directive::Cancel
    );
    assert!(
        s.finish(&a.id, 1, "i-1", &Outcome::Cancelled, 13_000)
            .await
            .unwrap()
    );
    assert!(
        !s.finish(&a.id, 1, "i-1", &Outcome::Cancelled, 13_001)
            .await
            .unwrap(),
        "a job finishes once"
    );
    let done = s.get(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.finished_at),
        (JobState::Cancelled, Some(13_000))
    );
    assert!(!s.active_jobs().await.unwrap().iter().any(|j| j.id == a.id));
    assert!(matches!(
        s.cancel(&a.id, 14_000).await.unwrap(),
        CancelOutcome::AlreadyFinished(_)
    ));
    assert!(matches!(
        s.cancel(&JobId::generate(), 14_000).await.unwrap(),
        CancelOutcome::NotFound
    ));
    assert!(matches!(
        s.claim(&JobId::generate(), &lease("i-1", "m", 1, 2))
            .await
            .unwrap(),
        Claim::Missing
    ));

    // A lapsed lease is taken over; the old attempt can write nothing.
    let c = job("acme", 20_000);
    s.create(&c, None).await.unwrap();
    assert!(matches!(
        s.claim(&c.id, &lease("i-1", "m-c", 21_000, 30_000))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let Claim::Claimed(taken) = s
        .claim(&c.id, &lease("i-2", "m-c", 31_000, 60_000))
        .await
        .unwrap()
    else {
        panic!("takeover")
    };
    assert_eq!((taken.attempts, taken.started_at), (2, Some(21_000)));
    assert_eq!(
        s.heartbeat(&c.id, 1, "i-1", 0.9, Some(70_000))
            .await
            .unwrap(),
        Directive::Lost
    );
    assert!(!s.release(&c.id, 1, "i-1", 32_000).await.unwrap());
    let out = JobOutput {
        key: "outputs/acme/x/output.mp4".into(),
        size_bytes: 1234,
        duration: 1.0,
    };
    assert!(
        !s.finish(&c.id, 1, "i-1", &Outcome::Succeeded(out.clone()), 33_000)
            .await
            .unwrap()
    );
    // Released, it is queued and claimable again.
    assert!(s.release(&c.id, 2, "i-2", 34_000).await.unwrap());
    let queued = s.get(&c.id).await.unwrap().unwrap();
    assert_eq!(
        (queued.state, queued.instance_id.clone()),
        (JobState::Queued, None)
    );
    let Claim::Claimed(third) = s
        .claim(&c.id, &lease("i-3", "m-c", 35_000, 65_000))
        .await
        .unwrap()
    else {
        panic!("reclaim")
    };
    assert_eq!(third.attempts, 3);
    assert!(
        s.finish(&c.id, 3, "i-3", &Outcome::Succeeded(out.clone()), 36_000)
            .await
            .unwrap()
    );
    let ok = s.get(&c.id).await.unwrap().unwrap();
    assert_eq!(
        (ok.state, ok.output, ok.progress),
        (JobState::Succeeded, Some(out), 1.0)
    );

    // A failed outcome keeps its reason.
    let f = job("acme", 40_000);
    s.create(&f, None).await.unwrap();
    s.claim(&f.id, &lease("i-1", "m-f", 41_000, 70_000))
        .await
        .unwrap();
    let err = JobError {
        code: "invalid_input".into(),
        message: "asset is not a video".into(),
    };
    assert!(
        s.finish(&f.id, 1, "i-1", &Outcome::Failed(err.clone()), 42_000)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get(&f.id).await.unwrap().unwrap().error,
        Some(err.clone())
    );

    // Dead-lettered: only a queued job or a lapsed running one is failed.
    let q = job("acme", 50_000);
    s.create(&q, None).await.unwrap();
    assert!(s.fail_unfinished(&q.id, &err, 51_000).await.unwrap());
    assert!(!s.fail_unfinished(&q.id, &err, 52_000).await.unwrap());
    let r = job("acme", 50_000);
    s.create(&r, None).await.unwrap();
    s.claim(&r.id, &lease("i-1", "m-r", 51_000, 90_000))
        .await
        .unwrap();
    assert!(
        !s.fail_unfinished(&r.id, &err, 52_000).await.unwrap(),
        "a live lease is left alone"
    );
    assert!(s.fail_unfinished(&r.id, &err, 91_000).await.unwrap());

    // Keys.
    let k = renderfleet_core::keys::generate("acme", 1);
    s.create_key(&k.record).await.unwrap();
    assert!(matches!(
        s.create_key(&k.record).await,
        Err(renderfleet_core::Error::Conflict(_))
    ));
    assert_eq!(
        s.find_key(&k.record.key_id).await.unwrap(),
        Some(k.record.clone())
    );
    assert!(s.revoke_key(&k.record.key_id, 5).await.unwrap());
    assert_eq!(
        s.find_key(&k.record.key_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(5)
    );
    assert!(!s.revoke_key("0000000000000000", 5).await.unwrap());
    assert!(s.find_key("0000000000000000").await.unwrap().is_none());

    // Assets.
    let asset = Asset {
        id: AssetId::generate(),
        tenant: "acme".into(),
        content_type: "image/png".into(),
        size_bytes: 42,
        key: "assets/acme/x".into(),
        created_at: 7,
    };
    s.create_asset(&asset).await.unwrap();
    assert_eq!(s.get_asset(&asset.id).await.unwrap(), Some(asset));
    assert!(s.get_asset(&AssetId::generate()).await.unwrap().is_none());

    // The scaler's memory.
    assert!(s.load_state().await.unwrap().is_none());
    s.save_state("{\"a\":1}").await.unwrap();
    assert_eq!(s.load_state().await.unwrap().as_deref(), Some("{\"a\":1}"));
    for at in [100, 300, 200] {
        s.record_decision(at, &format!("{{\"at\":{at}}}"), Duration::from_secs(3600))
            .await
            .unwrap();
    }
    let d = s.decisions(2).await.unwrap();
    assert_eq!(
        d.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        vec![300, 200]
    );
}

fn beat(ts: i64) -> Heartbeat {
    Heartbeat {
        state: AgentState::Idle,
        jobs: Vec::new(),
        slots: 1,
        engine_ok: true,
        disk_free_bytes: 1 << 30,
        version: "test".into(),
        ts,
        started_at: 1_000,
        idle_since: Some(1_000),
        seconds_per_unit: Some(0.5),
        reason: None,
        retiring: None,
        engaged: false,
    }
}

/// Liveness items and the work gate: the race between a claim and a retirement has one winner.
async fn health_contract(h: &dyn Health) {
    assert!(h.heartbeats().await.unwrap().is_empty());
    assert!(
        !h.mark_retiring("i-none", 5_000).await.unwrap(),
        "no liveness item, no retirement"
    );
    h.report("i-1", &beat(2_000)).await.unwrap();
    h.report("i-2", &beat(2_000)).await.unwrap();
    h.report("i-1", &beat(3_000)).await.unwrap();
    let mut all = h.heartbeats().await.unwrap();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].0.as_str(), &all[0].1), ("i-1", &beat(3_000)));

    // Engaged first: the scaler cannot mark it. Disengaged: it can, and then the gate stays shut.
    assert!(h.engage("i-1").await.unwrap());
    assert!(!h.mark_retiring("i-1", 4_000).await.unwrap());
    h.disengage("i-1").await.unwrap();
    assert!(h.mark_retiring("i-1", 4_000).await.unwrap());
    assert!(h.mark_retiring("i-1", 4_500).await.unwrap(), "idempotent");
    assert!(!h.engage("i-1").await.unwrap());
    // A heartbeat rewrite keeps the scaler's mark; the directory shows it.
    h.report("i-1", &beat(5_000)).await.unwrap();
    let marked = h
        .heartbeats()
        .await
        .unwrap()
        .into_iter()
        .find(|(id, _)| id == "i-1")
        .unwrap()
        .1;
    assert_eq!((marked.ts, marked.retiring), (5_000, Some(4_000)));
    h.withdraw("i-2").await.unwrap();
    h.withdraw("i-2").await.unwrap();
    assert_eq!(h.heartbeats().await.unwrap().len(), 1);
}

/// The scaler's tick lease: one holder at a time, each slot once.
async fn lease_contract(l: &dyn TickLease) {
    assert_eq!(
        l.acquire("a", Some(10), 1_000, 31_000).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        l.acquire("b", None, 2_000, 32_000).await.unwrap(),
        LeaseOutcome::Busy { until: 31_000 }
    );
    assert_eq!(
        l.acquire("b", Some(10), 2_000, 32_000).await.unwrap(),
        LeaseOutcome::SlotDone
    );
    l.release("b").await.unwrap();
    assert!(
        matches!(
            l.acquire("b", Some(11), 2_000, 32_000).await.unwrap(),
            LeaseOutcome::Busy { .. }
        ),
        "only the holder releases"
    );
    l.release("a").await.unwrap();
    assert_eq!(
        l.acquire("b", Some(11), 3_000, 33_000).await.unwrap(),
        LeaseOutcome::Acquired
    );
    // A holder that died: its lease lapses.
    assert_eq!(
        l.acquire("c", None, 34_000, 64_000).await.unwrap(),
        LeaseOutcome::Acquired
    );
    l.release("c").await.unwrap();
    assert_eq!(
        l.acquire("d", Some(11), 65_000, 95_000).await.unwrap(),
        LeaseOutcome::SlotDone
    );
}

#[tokio::test]
async fn the_memory_health_and_lease_meet_the_contract() {
    health_contract(&MemoryHealth::new()).await;
    lease_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_dynamodb_health_and_lease_meet_the_contract() {
    let moto = MotoServer::start();
    let store = moto.jobs_table().await;
    health_contract(&store).await;
    lease_contract(&store).await;
}

async fn queue_contract(q: &dyn Queue) {
    let ids: Vec<JobId> = (0..3).map(|_| JobId::generate()).collect();
    q.send(&JobMessage::new(ids[0].clone())).await.unwrap();
    let batch = q
        .send_batch(&[
            JobMessage::new(ids[1].clone()),
            JobMessage::new(ids[2].clone()),
        ])
        .await
        .unwrap();
    assert!(batch.iter().all(Result::is_ok) && batch.len() == 2);
    assert!(q.send_batch(&[]).await.unwrap().is_empty());
    let c = q.counters().await.unwrap();
    assert_eq!(c.visible + c.in_flight, 3);

    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(q.receive(10, Duration::from_secs(1)).await.unwrap());
        if got.len() == 3 {
            break;
        }
    }
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|d| d.receive_count == 1));
    let mut bodies: Vec<JobId> = got
        .iter()
        .map(|d| JobMessage::parse(&d.body).unwrap().job_id)
        .collect();
    bodies.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(bodies, want);
    assert!(
        q.receive(10, Duration::from_millis(0))
            .await
            .unwrap()
            .is_empty(),
        "received messages are invisible"
    );

    // Handed back, a message is delivered again with a higher count; deleted, it is gone.
    q.set_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        (got[0].body.as_str(), 2)
    );
    for d in got.iter().skip(1).chain(&again) {
        q.delete(&d.receipt).await.unwrap();
    }
    let c = q.counters().await.unwrap();
    assert_eq!((c.visible, c.in_flight), (0, 0));
}

#[tokio::test]
async fn the_memory_store_meets_the_contract() {
    store_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_dynamodb_store_meets_the_contract() {
    let moto = MotoServer::start();
    let store = moto.jobs_table().await;
    store.create_table().await.unwrap();
    store.ping().await.unwrap();
    store_contract(&store).await;
}

#[tokio::test]
async fn the_memory_queue_meets_the_contract() {
    queue_contract(&MemoryQueue::new()).await;
}

#[tokio::test]
async fn the_sqs_queue_meets_the_contract() {
    let moto = MotoServer::start();
    let sdk = moto.sdk().await;
    SqsQueue::create(
        &sdk,
        "renderfleet-test-jobs",
        &[("VisibilityTimeout", "30".into())],
    )
    .await
    .unwrap();
    let q = SqsQueue::connect(&sdk, "renderfleet-test-jobs")
        .await
        .unwrap();
    queue_contract(&q).await;
    let missing = SqsQueue::connect(&sdk, "renderfleet-test-nothing")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, renderfleet_core::Error::Config(_)),
        "{missing:?}"
    );
}
