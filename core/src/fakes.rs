//! In-memory implementations of every port, for unit and orchestration tests and for benchmarks
//! that must not measure the network. They follow the AWS adapters' contracts (the same contract
//! tests run against both); they are never a product default.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::clock::EpochMillis;
use crate::ids::{AssetId, JobId};
use crate::job::lifecycle::{self, Change};
use crate::job::{ActiveJob, Job, JobError};
use crate::message::JobMessage;
use crate::ports::*;
use crate::{Error, Result};

/// The fakes' maps. The standard library's SipHash resists hash flooding, which matters for a
/// production server's maps and not for a fake (never a product default); foldhash is far cheaper
/// on short keys (SipHash was 1,400 instructions of each submit in the benchmark).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The jobs table in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<StoreInner>>,
}

#[derive(Debug, Default)]
struct StoreInner {
    /// Boxed: growing the map moves pointers, not whole jobs (a benchmark stores 500,000).
    jobs: HashMap<JobId, Box<Job>>,
    idem: HashMap<(String, String), (JobId, String, EpochMillis)>,
    keys: HashMap<String, ApiKeyRecord>,
    assets: HashMap<AssetId, Asset>,
    scaler_state: Option<String>,
    decisions: BTreeMap<EpochMillis, String>,
    /// The tick lease: holder, until, last slot.
    lease: (Option<String>, EpochMillis, Option<u64>),
    /// With a limit, the order jobs were created in, to forget the oldest.
    job_limit: Option<usize>,
    created: VecDeque<JobId>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps at most `limit` jobs, forgetting the oldest: for benchmarks that create
    /// jobs for minutes, where a server in production keeps none in its memory (DynamoDB does),
    /// so that the figures measure the server and not a map growing without end.
    pub fn with_job_limit(limit: usize) -> Self {
        let store = Self::default();
        lock(&store.inner).job_limit = Some(limit.max(1));
        store
    }

    /// Every job, for assertions.
    pub fn jobs(&self) -> Vec<Job> {
        lock(&self.inner)
            .jobs
            .values()
            .map(|j| Job::clone(j))
            .collect()
    }

    /// Replaces a job as is, for setting up a scenario.
    pub fn put_job(&self, job: Job) {
        lock(&self.inner).jobs.insert(job.id.clone(), Box::new(job));
    }
}

fn cursor_of(job: &Job) -> String {
    format!("{:013}#{}", job.created_at, job.id)
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn create(&self, job: &Job, idem: Option<&Idempotency>) -> Result<Created> {
        let mut g = lock(&self.inner);
        if let Some(i) = idem {
            let k = (i.tenant.clone(), i.key.clone());
            if let Some((id, hash, expires)) = g.idem.get(&k)
                && *expires >= job.created_at
            {
                return Ok(Created::Existing {
                    job_id: id.clone(),
                    body_hash: hash.clone(),
                });
            }
            g.idem
                .insert(k, (job.id.clone(), i.body_hash.clone(), i.expires_at));
        }
        match g.jobs.entry(job.id.clone()) {
            Entry::Occupied(_) => return Err(Error::Conflict("job exists".into())),
            Entry::Vacant(v) => {
                v.insert(Box::new(job.clone()));
            }
        }
        if let Some(limit) = g.job_limit {
            g.created.push_back(job.id.clone());
            while g.created.len() > limit {
                if let Some(old) = g.created.pop_front() {
                    g.jobs.remove(&old);
                }
            }
        }
        Ok(Created::New)
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>> {
        Ok(lock(&self.inner).jobs.get(id).map(|j| Job::clone(j)))
    }

    async fn list(&self, tenant: &str, q: &ListQuery) -> Result<JobPage> {
        let g = lock(&self.inner);
        let mut jobs: Vec<&Job> = g
            .jobs
            .values()
            .map(|j| &**j)
            .filter(|j| j.tenant == tenant && q.state.is_none_or(|s| s == j.state))
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(cursor_of(j)));
        if let Some(c) = &q.cursor {
            if !crate::aws::is_valid_cursor(c) {
                return Err(Error::Service {
                    op: "list",
                    message: "malformed cursor".into(),
                });
            }
            jobs.retain(|j| cursor_of(j) < *c);
        }
        let limit = q.limit.clamp(1, 1000);
        let more = jobs.len() > limit;
        let page: Vec<Job> = jobs.into_iter().take(limit).cloned().collect();
        let next_cursor = if more {
            page.last().map(cursor_of)
        } else {
            None
        };
        Ok(JobPage {
            jobs: page,
            next_cursor,
        })
    }

    async fn mark_enqueued(&self, id: &JobId, now: EpochMillis) -> Result<()> {
        self.make(id, &Change::MarkEnqueued { now }).await.map(drop)
    }

    async fn redrive(&self, id: &JobId, now: EpochMillis) -> Result<bool> {
        self.make(id, &Change::Redrive { now }).await
    }

    async fn cancel(&self, id: &JobId, now: EpochMillis) -> Result<CancelOutcome> {
        crate::ports::cancel(self, id, now).await
    }
}

/// Lock and apply: the lifecycle table's pure [`lifecycle::apply`] under the store's lock.
#[async_trait]
impl Transitions for MemoryStore {
    async fn transition(&self, id: &JobId, change: &Change<'_>) -> Result<Option<Job>> {
        let mut g = lock(&self.inner);
        Ok(g.jobs
            .get_mut(id)
            .and_then(|j| lifecycle::apply(j, change).ok().map(|()| Job::clone(j))))
    }

    async fn current(&self, id: &JobId) -> Result<Option<Job>> {
        self.get(id).await
    }
}

#[async_trait]
impl ActiveWork for MemoryStore {
    async fn active_jobs(&self) -> Result<Vec<ActiveJob>> {
        let g = lock(&self.inner);
        let mut v: Vec<ActiveJob> = g
            .jobs
            .values()
            .filter(|j| !j.state.is_terminal())
            .map(|j| ActiveJob::from(&**j))
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(v)
    }

    async fn fail_unfinished(
        &self,
        id: &JobId,
        error: &JobError,
        now: EpochMillis,
    ) -> Result<bool> {
        let change = Change::FailUnfinished { error, now };
        self.make(id, &change).await
    }
}

#[async_trait]
impl ApiKeys for MemoryStore {
    async fn find_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(lock(&self.inner).keys.get(key_id).cloned())
    }
    async fn create_key(&self, r: &ApiKeyRecord) -> Result<()> {
        let mut g = lock(&self.inner);
        if g.keys.contains_key(&r.key_id) {
            return Err(Error::Conflict("key exists".into()));
        }
        g.keys.insert(r.key_id.clone(), r.clone());
        Ok(())
    }
    async fn revoke_key(&self, key_id: &str, now: EpochMillis) -> Result<bool> {
        let mut g = lock(&self.inner);
        Ok(match g.keys.get_mut(key_id) {
            Some(k) => {
                k.revoked_at.get_or_insert(now);
                true
            }
            None => false,
        })
    }
}

#[async_trait]
impl AssetStore for MemoryStore {
    async fn create_asset(&self, a: &Asset) -> Result<()> {
        lock(&self.inner).assets.insert(a.id.clone(), a.clone());
        Ok(())
    }
    async fn get_asset(&self, id: &AssetId) -> Result<Option<Asset>> {
        Ok(lock(&self.inner).assets.get(id).cloned())
    }
}

#[async_trait]
impl TickLease for MemoryStore {
    async fn acquire(
        &self,
        holder: &str,
        slot: Option<u64>,
        now: EpochMillis,
        until: EpochMillis,
    ) -> Result<LeaseOutcome> {
        let mut g = lock(&self.inner);
        let (_, held_until, last) = &g.lease;
        if slot.is_some_and(|s| last.is_some_and(|l| l >= s)) {
            return Ok(LeaseOutcome::SlotDone);
        }
        if *held_until >= now {
            return Ok(LeaseOutcome::Busy { until: *held_until });
        }
        let last = slot.or(*last);
        g.lease = (Some(holder.to_owned()), until, last);
        Ok(LeaseOutcome::Acquired)
    }

    async fn release(&self, holder: &str) -> Result<()> {
        let mut g = lock(&self.inner);
        if g.lease.0.as_deref() == Some(holder) {
            g.lease.1 = 0;
        }
        Ok(())
    }
}

#[async_trait]
impl ScalerMemory for MemoryStore {
    async fn load_state(&self) -> Result<Option<String>> {
        Ok(lock(&self.inner).scaler_state.clone())
    }
    async fn save_state(&self, json: &str) -> Result<()> {
        lock(&self.inner).scaler_state = Some(json.to_owned());
        Ok(())
    }
    async fn record_decision(&self, at: EpochMillis, json: &str, _ttl: Duration) -> Result<()> {
        lock(&self.inner).decisions.insert(at, json.to_owned());
        Ok(())
    }
    async fn decisions(&self, limit: usize) -> Result<Vec<(EpochMillis, String)>> {
        let g = lock(&self.inner);
        Ok(g.decisions
            .iter()
            .rev()
            .take(limit)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------

/// A queue with SQS's visibility semantics, on tokio's clock (so paused-time tests work).
#[derive(Debug, Default, Clone)]
pub struct MemoryQueue {
    inner: Arc<Mutex<QueueInner>>,
}

#[derive(Debug, Default)]
struct QueueInner {
    next_id: u64,
    messages: VecDeque<QueuedMessage>,
    sent: VecDeque<JobMessage>,
    /// With a limit, the most messages kept on the queue (and in `sent`); older ones are dropped.
    limit: Option<usize>,
    /// receipt -> message id
    receipts: HashMap<String, u64>,
    deleted: Vec<String>,
    fail_sends: u32,
    batch_calls: u32,
}

#[derive(Debug)]
struct QueuedMessage {
    id: u64,
    body: String,
    receive_count: u32,
    visible_at: Option<Instant>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue that keeps only the newest `limit` messages: for benchmarks that send for minutes
    /// with nobody receiving, where SQS holds the backlog in production, so that the figures
    /// measure the sender and not a buffer growing without end.
    pub fn with_limit(limit: usize) -> Self {
        let queue = Self::default();
        lock(&queue.inner).limit = Some(limit.max(1));
        queue
    }

    /// Every message sent, in order (with a limit, the newest `limit`).
    pub fn sent(&self) -> Vec<JobMessage> {
        lock(&self.inner).sent.iter().cloned().collect()
    }

    /// Bodies of the messages still on the queue.
    pub fn pending(&self) -> Vec<String> {
        lock(&self.inner)
            .messages
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    /// Puts a raw body on the queue (for malformed-message tests).
    pub fn push_raw(&self, body: &str) {
        let mut g = lock(&self.inner);
        g.next_id += 1;
        let id = g.next_id;
        g.messages.push_back(QueuedMessage {
            id,
            body: body.to_owned(),
            receive_count: 0,
            visible_at: None,
        });
    }

    /// Makes the next `n` sends fail transiently.
    pub fn fail_next_sends(&self, n: u32) {
        lock(&self.inner).fail_sends = n;
    }

    /// How many `send_batch` calls were made.
    pub fn batch_calls(&self) -> u32 {
        lock(&self.inner).batch_calls
    }

    /// Makes every message visible now (as if each visibility timeout had passed).
    pub fn expire_visibility(&self) {
        for m in lock(&self.inner).messages.iter_mut() {
            m.visible_at = None;
        }
    }

    /// Receipts deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.inner).deleted.clone()
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, msg: &JobMessage) -> Result<()> {
        let mut g = lock(&self.inner);
        if g.fail_sends > 0 {
            g.fail_sends -= 1;
            return Err(Error::Transient {
                op: "SendMessage",
                message: "injected".into(),
            });
        }
        g.sent.push_back(msg.clone());
        g.next_id += 1;
        let id = g.next_id;
        g.messages.push_back(QueuedMessage {
            id,
            body: msg.to_body(),
            receive_count: 0,
            visible_at: None,
        });
        if let Some(limit) = g.limit {
            while g.messages.len() > limit {
                g.messages.pop_front();
            }
            while g.sent.len() > limit {
                g.sent.pop_front();
            }
        }
        Ok(())
    }

    async fn send_after(&self, msg: &JobMessage, delay: Duration) -> Result<()> {
        self.send(msg).await?;
        if let Some(m) = lock(&self.inner).messages.back_mut() {
            m.visible_at = Some(Instant::now() + delay);
        }
        Ok(())
    }

    async fn send_batch(&self, msgs: &[JobMessage]) -> Result<Vec<Result<()>>> {
        lock(&self.inner).batch_calls += 1;
        let mut out = Vec::new();
        for m in msgs {
            out.push(self.send(m).await);
        }
        Ok(out)
    }
}

#[async_trait]
impl JobSource for MemoryQueue {
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            {
                let mut g = lock(&self.inner);
                let now = Instant::now();
                let mut got = Vec::new();
                let mut receipts = Vec::new();
                for m in g.messages.iter_mut() {
                    if got.len() as u32 >= max {
                        break;
                    }
                    if m.visible_at.is_some_and(|t| t > now) {
                        continue;
                    }
                    m.receive_count += 1;
                    m.visible_at = Some(now + Duration::from_secs(30));
                    let receipt = format!("r-{}-{}", m.id, m.receive_count);
                    receipts.push((receipt.clone(), m.id));
                    got.push(Delivery {
                        message_id: m.id.to_string(),
                        receipt,
                        body: m.body.clone(),
                        receive_count: m.receive_count,
                        sent_at: None,
                    });
                }
                g.receipts.extend(receipts);
                if !got.is_empty() || Instant::now() >= deadline {
                    return Ok(got);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        let mut g = lock(&self.inner);
        if let Some(id) = g.receipts.get(receipt).copied() {
            g.messages.retain(|m| m.id != id);
        }
        g.deleted.push(receipt.to_owned());
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<()> {
        let mut g = lock(&self.inner);
        let Some(id) = g.receipts.get(receipt).copied() else {
            return Ok(());
        };
        if let Some(m) = g.messages.iter_mut().find(|m| m.id == id) {
            m.visible_at = Some(Instant::now() + timeout);
        }
        Ok(())
    }
}

#[async_trait]
impl QueueDepth for MemoryQueue {
    async fn counters(&self) -> Result<QueueCounters> {
        let g = lock(&self.inner);
        let now = Instant::now();
        let in_flight = g
            .messages
            .iter()
            .filter(|m| m.visible_at.is_some_and(|t| t > now))
            .count() as u64;
        Ok(QueueCounters {
            visible: g.messages.len() as u64 - in_flight,
            in_flight,
            delayed: 0,
        })
    }
}

// ---------------------------------------------------------------------------------------------

type Objects = HashMap<String, (Vec<u8>, String)>;

/// A bucket in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryMedia {
    /// key -> (bytes, content type)
    objects: Arc<Mutex<Objects>>,
    puts: Arc<Mutex<Vec<String>>>,
}

impl MemoryMedia {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&self, key: &str, bytes: Vec<u8>, content_type: &str) {
        lock(&self.objects).insert(key.to_owned(), (bytes, content_type.to_owned()));
    }
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = lock(&self.objects).keys().cloned().collect();
        k.sort();
        k
    }
    /// Every key ever uploaded with `put_file`, repeats included.
    pub fn puts(&self) -> Vec<String> {
        lock(&self.puts).clone()
    }
}

#[async_trait]
impl MediaLinks for MemoryMedia {
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        Ok(format!("memory://media/{key}?ttl={}", ttl.as_secs()))
    }
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> Result<String> {
        Ok(format!(
            "memory://media/{key}?put&type={content_type}&size={size}&ttl={}",
            ttl.as_secs()
        ))
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(lock(&self.objects).get(key).map(|(b, ct)| ObjectInfo {
            size_bytes: b.len() as u64,
            content_type: Some(ct.clone()),
        }))
    }
}

#[async_trait]
impl MediaFiles for MemoryMedia {
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<u64> {
        let bytes = tokio::fs::read(path).await.map_err(|e| Error::Service {
            op: "put_file",
            message: e.to_string(),
        })?;
        let n = bytes.len() as u64;
        self.insert(key, bytes, content_type);
        lock(&self.puts).push(key.to_owned());
        Ok(n)
    }
    async fn get_file(&self, key: &str, path: &Path, max_bytes: u64) -> Result<u64> {
        let bytes = lock(&self.objects)
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| Error::NotFound(format!("object {key}")))?;
        if bytes.len() as u64 > max_bytes {
            return Err(Error::Service {
                op: "get_file",
                message: "too large".into(),
            });
        }
        tokio::fs::write(path, &bytes)
            .await
            .map_err(|e| Error::Service {
                op: "get_file",
                message: e.to_string(),
            })?;
        Ok(bytes.len() as u64)
    }
}

// ---------------------------------------------------------------------------------------------

/// What a [`MemoryFleet`] was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetCall {
    SetDesired(u32),
    Terminate {
        instance: String,
        decrement: bool,
    },
    CompleteLifecycle {
        hook: String,
        instance: String,
        proceed: bool,
    },
    StartAgent {
        instance: String,
    },
}

/// An Auto Scaling Group in memory that records every call. Instances appear and vanish only
/// through [`MemoryFleet::set_state`] and the calls above, so tests decide what the cloud does.
#[derive(Debug, Default, Clone)]
pub struct MemoryFleet {
    state: Arc<Mutex<FleetState>>,
    calls: Arc<Mutex<Vec<FleetCall>>>,
}

impl MemoryFleet {
    pub fn new(min: u32, max: u32) -> Self {
        let f = Self::default();
        {
            let mut s = lock(&f.state);
            s.min = min;
            s.max = max;
        }
        f
    }
    pub fn set_state(&self, state: FleetState) {
        *lock(&self.state) = state;
    }
    pub fn state(&self) -> FleetState {
        lock(&self.state).clone()
    }
    pub fn calls(&self) -> Vec<FleetCall> {
        lock(&self.calls).clone()
    }
    /// Forgets the calls recorded so far.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }
    pub fn add_instance(&self, id: &str) {
        lock(&self.state).instances.push(FleetInstance {
            id: id.to_owned(),
            lifecycle: Lifecycle::InService,
            healthy: true,
            protected: false,
        });
    }
}

#[async_trait]
impl Fleet for MemoryFleet {
    async fn describe(&self) -> Result<FleetState> {
        Ok(self.state())
    }
    async fn set_desired(&self, desired: u32) -> Result<()> {
        lock(&self.calls).push(FleetCall::SetDesired(desired));
        lock(&self.state).desired = desired;
        Ok(())
    }
    async fn terminate(&self, instance: &str, decrement: bool) -> Result<()> {
        lock(&self.calls).push(FleetCall::Terminate {
            instance: instance.to_owned(),
            decrement,
        });
        let mut s = lock(&self.state);
        s.instances.retain(|i| i.id != instance);
        if decrement {
            s.desired = s.desired.saturating_sub(1);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// Liveness items in memory: each agent's heartbeat and its gate (`engaged`, `retiring`).
#[derive(Debug, Default, Clone)]
pub struct MemoryHealth {
    items: Arc<Mutex<BTreeMap<String, AgentItem>>>,
    /// When set, reads fail transiently (a throttled health store).
    failing: Arc<Mutex<bool>>,
}

#[derive(Debug, Default, Clone)]
struct AgentItem {
    beat: Option<Heartbeat>,
    engaged: bool,
    retiring: Option<EpochMillis>,
}

impl MemoryHealth {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, instance: &str) -> Option<Heartbeat> {
        let items = lock(&self.items);
        let item = items.get(instance)?;
        let mut hb = item.beat.clone()?;
        hb.retiring = item.retiring;
        hb.engaged = item.engaged;
        Some(hb)
    }
    /// Whether the agent on `instance` is engaged (busy, per its gate).
    pub fn engaged(&self, instance: &str) -> bool {
        lock(&self.items).get(instance).is_some_and(|i| i.engaged)
    }
    /// Makes every read fail (`true`) or succeed again.
    pub fn set_failing(&self, failing: bool) {
        *lock(&self.failing) = failing;
    }
}

#[async_trait]
impl HealthReporter for MemoryHealth {
    async fn report(&self, instance: &str, hb: &Heartbeat) -> Result<()> {
        let mut hb = hb.clone();
        hb.retiring = None;
        hb.engaged = false;
        lock(&self.items)
            .entry(instance.to_owned())
            .or_default()
            .beat = Some(hb);
        Ok(())
    }
    async fn withdraw(&self, instance: &str) -> Result<()> {
        lock(&self.items).remove(instance);
        Ok(())
    }
}

#[async_trait]
impl AgentDirectory for MemoryHealth {
    async fn heartbeats(&self) -> Result<Vec<(String, Heartbeat)>> {
        if *lock(&self.failing) {
            return Err(Error::Transient {
                op: "Query(heartbeats)",
                message: "ThrottlingException: injected".into(),
            });
        }
        Ok(lock(&self.items)
            .iter()
            .filter_map(|(k, i)| {
                let mut hb = i.beat.clone()?;
                hb.retiring = i.retiring;
                hb.engaged = i.engaged;
                Some((k.clone(), hb))
            })
            .collect())
    }
}

#[async_trait]
impl WorkGate for MemoryHealth {
    async fn engage(&self, instance: &str) -> Result<bool> {
        let mut items = lock(&self.items);
        let item = items.entry(instance.to_owned()).or_default();
        if item.retiring.is_some() {
            return Ok(false);
        }
        item.engaged = true;
        Ok(true)
    }
    async fn disengage(&self, instance: &str) -> Result<()> {
        lock(&self.items)
            .entry(instance.to_owned())
            .or_default()
            .engaged = false;
        Ok(())
    }
}

#[async_trait]
impl Retirement for MemoryHealth {
    async fn mark_retiring(&self, instance: &str, now: EpochMillis) -> Result<bool> {
        let mut items = lock(&self.items);
        match items.get_mut(instance) {
            Some(i) if i.beat.is_some() && !i.engaged => {
                i.retiring.get_or_insert(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The agents' status board in memory, with every write kept.
#[derive(Debug, Default, Clone)]
pub struct MemoryStatus {
    current: Arc<Mutex<BTreeMap<String, AgentStatus>>>,
    writes: Arc<Mutex<Vec<(String, AgentStatus)>>>,
    /// Further writes that fail with a throttle.
    throttle: Arc<Mutex<u32>>,
}

impl MemoryStatus {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, instance: &str) -> Option<AgentStatus> {
        lock(&self.current).get(instance).cloned()
    }
    /// Every write, in order.
    pub fn writes(&self) -> Vec<(String, AgentStatus)> {
        lock(&self.writes).clone()
    }
    /// Instances with a status.
    pub fn instances(&self) -> Vec<String> {
        lock(&self.current).keys().cloned().collect()
    }
    /// Makes the next `n` writes fail with a throttle.
    pub fn throttle_next(&self, n: u32) {
        *lock(&self.throttle) = n;
    }
}

#[async_trait]
impl StatusBoard for MemoryStatus {
    async fn publish(&self, instance: &str, status: &AgentStatus) -> Result<()> {
        {
            let mut t = lock(&self.throttle);
            if *t > 0 {
                *t -= 1;
                return Err(Error::Transient {
                    op: "PutParameter",
                    message: "ThrottlingException: Rate exceeded".into(),
                });
            }
        }
        lock(&self.current).insert(instance.to_owned(), status.clone());
        lock(&self.writes).push((instance.to_owned(), status.clone()));
        Ok(())
    }
}

#[async_trait]
impl StatusCleanup for MemoryStatus {
    async fn remove(&self, instance_ids: &[String]) -> Result<()> {
        let mut c = lock(&self.current);
        for i in instance_ids {
            c.remove(i);
        }
        Ok(())
    }
    async fn page(&self, cursor: Option<String>) -> Result<(Vec<String>, Option<String>)> {
        let all = self.instances();
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let page: Vec<String> = all.iter().skip(start).take(10).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| (start + page.len()).to_string());
        Ok((page, next))
    }
}

/// One tick asked for: its slot (`None`, an extra tick) and its delay.
pub type ScheduledTick = (Option<u64>, Duration);

/// The scaler's tick queue in memory: the ticks asked for, in order.
#[derive(Debug, Default, Clone)]
pub struct MemoryTicks {
    scheduled: Arc<Mutex<Vec<ScheduledTick>>>,
}

impl MemoryTicks {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn scheduled(&self) -> Vec<ScheduledTick> {
        lock(&self.scheduled).clone()
    }
}

#[async_trait]
impl TickQueue for MemoryTicks {
    async fn schedule(&self, slot: Option<u64>, delay: Duration) -> Result<()> {
        lock(&self.scheduled).push((slot, delay));
        Ok(())
    }
}

/// Metrics in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryMetrics {
    data: Arc<Mutex<Vec<MetricDatum>>>,
}

impl MemoryMetrics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn published(&self) -> Vec<MetricDatum> {
        lock(&self.data).clone()
    }
}

#[async_trait]
impl MetricsSink for MemoryMetrics {
    async fn publish(&self, data: &[MetricDatum]) -> Result<()> {
        lock(&self.data).extend_from_slice(data);
        Ok(())
    }
}

#[async_trait]
impl LifecycleActions for MemoryFleet {
    async fn complete(&self, hook: &str, instance: &str, proceed: bool) -> Result<()> {
        lock(&self.calls).push(FleetCall::CompleteLifecycle {
            hook: hook.to_owned(),
            instance: instance.to_owned(),
            proceed,
        });
        Ok(())
    }
}

#[async_trait]
impl AgentLauncher for MemoryFleet {
    async fn start_agent(&self, instance: &str) -> Result<String> {
        lock(&self.calls).push(FleetCall::StartAgent {
            instance: instance.to_owned(),
        });
        Ok(format!("cmd-{instance}"))
    }
}

/// A small valid queued job of `tenant`, created at `created_at`: one black second at 64x64.
pub fn sample_job(tenant: &str, created_at: EpochMillis) -> Job {
    let spec = crate::spec::JobSpec::from_json(
        br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"}}]}"##,
    )
    .expect("the sample spec is valid");
    Job::new(JobId::generate(), tenant, spec, created_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: i64) -> Job {
        sample_job("acme", n)
    }

    #[tokio::test]
    async fn a_job_limit_forgets_the_oldest_jobs_only() {
        let store = MemoryStore::with_job_limit(2);
        let jobs: Vec<Job> = (0..3).map(job).collect();
        for j in &jobs {
            store.create(j, None).await.unwrap();
        }
        assert_eq!(store.get(&jobs[0].id).await.unwrap(), None);
        assert_eq!(
            store.get(&jobs[1].id).await.unwrap().as_ref(),
            Some(&jobs[1])
        );
        assert_eq!(
            store.get(&jobs[2].id).await.unwrap().as_ref(),
            Some(&jobs[2])
        );
        let unlimited = MemoryStore::new();
        for j in &jobs {
            unlimited.create(j, None).await.unwrap();
        }
        assert_eq!(unlimited.jobs().len(), 3);
    }

    #[tokio::test]
    async fn a_queue_limit_keeps_the_newest_messages() {
        let queue = MemoryQueue::with_limit(2);
        let msgs: Vec<JobMessage> = (0..3).map(|i| JobMessage::new(job(i).id)).collect();
        for m in &msgs {
            queue.send(m).await.unwrap();
        }
        assert_eq!(queue.sent(), msgs[1..]);
        assert_eq!(
            queue.pending(),
            msgs[1..]
                .iter()
                .map(JobMessage::to_body)
                .collect::<Vec<_>>()
        );
        let got = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 2);
    }
}
