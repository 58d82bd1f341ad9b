//! The jobs table on DynamoDB: jobs, idempotency keys, API keys, assets and the scaler's memory in
//! one table keyed by `pk`/`sk`, with two global secondary indexes:
//!
//! - `by-tenant` (`tenant_pk`, `tenant_sk`): a tenant's jobs, newest first, for listing;
//! - `active` (`active_pk`, `active_sk`): a sparse index holding only queued and running jobs,
//!   which the scaler and the sweeper read instead of scanning the table.
//!
//! Every state transition is an `UpdateItem` with a condition on the current state (and, for the
//! agent, on its attempt and instance), so transitions never go backwards or happen twice.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
};

use super::classify;
use crate::clock::EpochMillis;
use crate::ids::{AssetId, JobId};
use crate::job::lifecycle::{self, Change, Guard, Transition};
use crate::job::{ActiveJob, Job, JobError, JobOutput, JobState, Outcome};
use crate::names::{ACTIVE_INDEX, ACTIVE_INDEX_ATTRIBUTES, ACTIVE_SHARDS, AGENTS_PK, TENANT_INDEX};
use crate::ports::{
    ActiveWork, AgentDirectory, ApiKeyRecord, ApiKeys, Asset, AssetStore, CancelOutcome, Created,
    HealthReporter, Heartbeat, Idempotency, JobPage, JobStore, Lease, LeaseOutcome, ListQuery,
    Retirement, ScalerMemory, TickLease, Transitions, WorkGate,
};
use crate::spec::JobSpec;
use crate::{Error, Result};

type Item = HashMap<String, AttributeValue>;

const SCALER_STATE_PK: &str = "SCALER";
const LEASE_SK: &str = "LEASE";
/// How long a liveness item outlives its last heartbeat before DynamoDB's TTL may delete it (the
/// scaler stops trusting a heartbeat long before).
const HEARTBEAT_TTL_SECS: i64 = 3600;
const SCALER_DECISIONS_PK: &str = "SCALER#DECISIONS";
/// The attribute DynamoDB's TTL deletes items by (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at_s";

/// The table's keys and indexes, shared by provisioning code and the Terraform contract test.
#[derive(Debug)]
pub struct TableLayout;

impl TableLayout {
    pub const PARTITION_KEY: &'static str = "pk";
    pub const SORT_KEY: &'static str = "sk";
    /// (index name, partition key, sort key)
    pub const INDEXES: [(&'static str, &'static str, &'static str); 2] = [
        (TENANT_INDEX, "tenant_pk", "tenant_sk"),
        (ACTIVE_INDEX, "active_pk", "active_sk"),
    ];
}

/// The jobs table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// The outcome of a conditional write: `true` when it applied, `false` when its condition
/// failed (nothing written), any other failure as it is.
fn applied<T>(res: Result<T>) -> Result<bool> {
    match res {
        Ok(_) => Ok(true),
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `expr` uses the placeholder `ph` (`:now` and not `:nowhere`).
fn mentions(expr: &str, ph: &str) -> bool {
    expr.match_indices(ph).any(|(i, _)| {
        !expr[i + ph.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn job_pk(id: &JobId) -> String {
    format!("JOB#{id}")
}

/// The active index's partition of a job: `ACTIVE#` and the id's last hex digit.
fn active_pk(id: &JobId) -> String {
    let last = id.as_str().chars().last().unwrap_or('0');
    format!("ACTIVE#{last}")
}

/// Every partition of the active index.
fn active_partitions() -> impl Iterator<Item = String> {
    (0..ACTIVE_SHARDS).map(|i| format!("ACTIVE#{i:x}"))
}

/// The sort key of a job in both indexes: creation time, then id, so ties still order.
fn order_key(created_at: EpochMillis, id: &JobId) -> String {
    format!("{created_at:013}#{id}")
}

fn req_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::corrupt(
            "item",
            format!("attribute {name} missing or not a string"),
        )),
    }
}
fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}
fn opt_n<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| Error::corrupt("item", format!("attribute {name} is not a number: {v}"))),
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Err(Error::corrupt(
            "item",
            format!("attribute {name} is not a number"),
        )),
    }
}
fn req_n<T: FromStr>(item: &Item, name: &str) -> Result<T> {
    opt_n(item, name)?.ok_or_else(|| Error::corrupt("item", format!("attribute {name} missing")))
}
fn opt_b(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

fn state_of(item: &Item) -> Result<JobState> {
    let st = req_s(item, "state")?;
    JobState::parse(st).ok_or_else(|| Error::corrupt("job", format!("unknown state {st}")))
}

fn job_id_of(item: &Item) -> Result<JobId> {
    let id = req_s(item, "id")?;
    JobId::parse(id).ok_or_else(|| Error::corrupt("job", format!("bad id {id}")))
}

fn job_to_item(job: &Job) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(job_pk(&job.id)));
    item.insert("sk".into(), s("JOB"));
    item.insert("id".into(), s(job.id.as_str()));
    item.insert("tenant".into(), s(&job.tenant));
    item.insert("state".into(), s(job.state.as_str()));
    item.insert(
        "spec".into(),
        s(serde_json::to_string(&*job.spec).expect("a job spec always serializes")),
    );
    item.insert("created_at".into(), n(job.created_at));
    item.insert("updated_at".into(), n(job.updated_at));
    item.insert("attempts".into(), n(job.attempts));
    item.insert("progress".into(), n(job.progress));
    item.insert("cancel_requested".into(), b(job.cancel_requested));
    item.insert("enqueued".into(), b(job.enqueued));
    if let Some(t) = job.enqueued_at {
        item.insert("enqueued_at".into(), n(t));
    }
    item.insert("redrives".into(), n(job.redrives));
    item.insert("est_work".into(), n(job.est_work));
    item.insert("priority".into(), n(job.priority));
    item.insert("tenant_pk".into(), s(format!("T#{}", job.tenant)));
    item.insert("tenant_sk".into(), s(order_key(job.created_at, &job.id)));
    if !job.state.is_terminal() {
        item.insert("active_pk".into(), s(active_pk(&job.id)));
        item.insert("active_sk".into(), s(order_key(job.created_at, &job.id)));
    }
    if let Some(v) = job.started_at {
        item.insert("started_at".into(), n(v));
    }
    if let Some(v) = job.finished_at {
        item.insert("finished_at".into(), n(v));
    }
    if let Some(v) = &job.instance_id {
        item.insert("instance_id".into(), s(v));
    }
    if let Some(v) = &job.message_id {
        item.insert("message_id".into(), s(v));
    }
    if let Some(v) = job.lease_until {
        item.insert("lease_until".into(), n(v));
    }
    if let Some(e) = &job.error {
        item.insert("error_code".into(), s(&e.code));
        item.insert("error_message".into(), s(&e.message));
    }
    if let Some(o) = &job.output {
        item.insert("output_key".into(), s(&o.key));
        item.insert("output_size".into(), n(o.size_bytes));
        item.insert("output_duration".into(), n(o.duration));
    }
    item
}

fn item_to_job(item: &Item) -> Result<Job> {
    let spec_json = req_s(item, "spec")?;
    let spec: JobSpec =
        serde_json::from_str(spec_json).map_err(|e| Error::corrupt("job spec", e.to_string()))?;
    let error = match (opt_s(item, "error_code"), opt_s(item, "error_message")) {
        (Some(code), message) => Some(JobError {
            code,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    let output = match opt_s(item, "output_key") {
        Some(key) => Some(JobOutput {
            key,
            size_bytes: opt_n(item, "output_size")?.unwrap_or(0),
            duration: opt_n(item, "output_duration")?.unwrap_or(0.0),
        }),
        None => None,
    };
    Ok(Job {
        id: job_id_of(item)?,
        tenant: req_s(item, "tenant")?.to_owned(),
        state: state_of(item)?,
        spec: spec.into(),
        created_at: req_n(item, "created_at")?,
        updated_at: req_n(item, "updated_at")?,
        started_at: opt_n(item, "started_at")?,
        finished_at: opt_n(item, "finished_at")?,
        attempts: req_n(item, "attempts")?,
        instance_id: opt_s(item, "instance_id"),
        message_id: opt_s(item, "message_id"),
        progress: opt_n(item, "progress")?.unwrap_or(0.0),
        error,
        output,
        cancel_requested: opt_b(item, "cancel_requested"),
        enqueued: opt_b(item, "enqueued"),
        enqueued_at: opt_n(item, "enqueued_at")?,
        redrives: opt_n(item, "redrives")?.unwrap_or(0),
        lease_until: opt_n(item, "lease_until")?,
        est_work: opt_n(item, "est_work")?.unwrap_or(1.0),
        priority: opt_n(item, "priority")?.unwrap_or(5),
    })
}

fn item_to_active(item: &Item) -> Result<ActiveJob> {
    Ok(ActiveJob {
        id: job_id_of(item)?,
        state: state_of(item)?,
        created_at: req_n(item, "created_at")?,
        started_at: opt_n(item, "started_at")?,
        est_work: opt_n(item, "est_work")?.unwrap_or(1.0),
        instance_id: opt_s(item, "instance_id"),
        enqueued: opt_b(item, "enqueued"),
        enqueued_at: opt_n(item, "enqueued_at")?,
        lease_until: opt_n(item, "lease_until")?,
        attempts: opt_n(item, "attempts")?.unwrap_or(0),
        priority: opt_n(item, "priority")?.unwrap_or(5),
    })
}

/// Parses a store cursor: the order key of the last job of the previous page.
fn parse_cursor(cursor: &str) -> Option<(EpochMillis, JobId)> {
    let (ms, id) = cursor.split_once('#')?;
    if ms.len() != 13 || !ms.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((ms.parse().ok()?, JobId::parse(id)?))
}

/// Whether `cursor` has the shape [`JobStore::list`] produces.
pub fn is_valid_cursor(cursor: &str) -> bool {
    parse_cursor(cursor).is_some()
}

type Update = (String, Vec<(String, AttributeValue)>);

fn value(k: &str, val: AttributeValue) -> (String, AttributeValue) {
    (k.to_owned(), val)
}

/// What a claim writes: running under the caller's instance, message and lease, one attempt more.
fn claim_update(lease: &Lease) -> Update {
    (
        "SET #st = :to, attempts = attempts + :one, instance_id = :inst, \
         message_id = :msg, started_at = if_not_exists(started_at, :now), \
         lease_until = :lease, updated_at = :now, progress = :zero"
            .into(),
        vec![
            value(":one", n(1)),
            value(":zero", n(0)),
            value(":inst", s(&lease.instance)),
            value(":msg", s(&lease.message_id)),
            value(":now", n(lease.now)),
            value(":lease", n(lease.until)),
        ],
    )
}

/// What a finish writes: the outcome's state, and its output or error.
fn finish_update(outcome: &Outcome, now: EpochMillis) -> Update {
    let mut set = "SET #st = :to, finished_at = :now, updated_at = :now".to_owned();
    let mut vals = vec![value(":now", n(now))];
    match outcome {
        Outcome::Succeeded(o) => {
            set.push_str(
                ", progress = :one, output_key = :ok, output_size = :os, output_duration = :od",
            );
            vals.extend([
                value(":one", n(1)),
                value(":ok", s(&o.key)),
                value(":os", n(o.size_bytes)),
                value(":od", n(o.duration)),
            ]);
        }
        Outcome::Failed(e) => {
            set.push_str(", error_code = :ec, error_message = :em");
            vals.extend([value(":ec", s(&e.code)), value(":em", s(&e.message))]);
        }
        Outcome::Cancelled => {}
    }
    (format!("{set} {TERMINAL_REMOVE}"), vals)
}

/// What every move into a terminal state removes: the job leaves the active index.
const TERMINAL_REMOVE: &str = "REMOVE active_pk, active_sk, lease_until";

/// What a move writes besides its guard: the update expression and its values. The target
/// state is `:to`; the condition's placeholders come from the move's [`lifecycle::Rule`].
fn update_of(change: &Change<'_>) -> Update {
    let v = value;
    match *change {
        Change::MarkEnqueued { now } => (
            "SET enqueued = :t, enqueued_at = :now".into(),
            vec![v(":t", b(true)), v(":now", n(now))],
        ),
        Change::Redrive { now } => (
            "SET redrives = if_not_exists(redrives, :zero) + :one, enqueued = :t, \
             enqueued_at = :now, updated_at = :now"
                .into(),
            vec![
                v(":zero", n(0)),
                v(":one", n(1)),
                v(":t", b(true)),
                v(":now", n(now)),
            ],
        ),
        Change::Cancel { now } => (
            format!("SET #st = :to, finished_at = :now, updated_at = :now {TERMINAL_REMOVE}"),
            vec![v(":now", n(now))],
        ),
        Change::RequestCancel { now } => (
            "SET cancel_requested = :t, updated_at = :now".into(),
            vec![v(":t", b(true)), v(":now", n(now))],
        ),
        Change::Claim(lease) => claim_update(lease),
        // `lease_until` is projected into the active index, `progress` is not: a progress-only
        // write touches the job's own partition and nothing else.
        Change::Heartbeat {
            progress,
            lease_until,
            ..
        } => {
            let p = v(":p", n(progress.clamp(0.0, 1.0)));
            match lease_until {
                Some(l) => (
                    "SET progress = :p, lease_until = :lease".into(),
                    vec![p, v(":lease", n(l))],
                ),
                None => ("SET progress = :p".into(), vec![p]),
            }
        }
        Change::Finish { outcome, now, .. } => finish_update(outcome, now),
        Change::Release { now, .. } => (
            "SET #st = :to, updated_at = :now, progress = :zero \
             REMOVE instance_id, message_id, lease_until"
                .into(),
            vec![v(":zero", n(0)), v(":now", n(now))],
        ),
        Change::FailUnfinished { error, now } => (
            format!(
                "SET #st = :to, error_code = :ec, error_message = :em, finished_at = :now, \
                 updated_at = :now {TERMINAL_REMOVE}"
            ),
            vec![
                v(":ec", s(&error.code)),
                v(":em", s(&error.message)),
                v(":now", n(now)),
            ],
        ),
    }
}

/// The values a move's condition compares with: its `from` states, and the caller's time or
/// attempt as its guard needs.
fn condition_values(change: &Change<'_>) -> Vec<(String, AttributeValue)> {
    let rule = change.transition().rule();
    let mut vals: Vec<(String, AttributeValue)> = rule
        .condition_states()
        .iter()
        .map(|st| (lifecycle::state_placeholder(*st), s(st.as_str())))
        .collect();
    match (rule.guard, change.now(), change.attempt()) {
        (Guard::Unheld, Some(now), _) => vals.push((":now".into(), n(now))),
        (Guard::CurrentAttempt, _, Some((attempt, instance))) => {
            vals.push((":a".into(), n(attempt)));
            vals.push((":inst".into(), s(instance)));
        }
        _ => {}
    }
    vals
}

/// The DynamoDB operation name of a move, for errors and logs.
fn op_of(t: Transition) -> &'static str {
    match t {
        Transition::MarkEnqueued => "UpdateItem(enqueued)",
        Transition::Redrive => "UpdateItem(redrive)",
        Transition::Cancel => "UpdateItem(cancel)",
        Transition::RequestCancel => "UpdateItem(cancel_requested)",
        Transition::Claim => "UpdateItem(claim)",
        Transition::Heartbeat => "UpdateItem(heartbeat)",
        Transition::Finish => "UpdateItem(finish)",
        Transition::Release => "UpdateItem(release)",
        Transition::FailUnfinished => "UpdateItem(fail)",
    }
}

impl DynamoStore {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
        }
    }

    /// Whether the table answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| classify("DescribeTable", e))?;
        Ok(())
    }

    /// Creates the table with its keys, indexes and TTL, as the Terraform storage module does.
    /// Used by the local stack; succeeds if the table exists.
    pub async fn create_table(&self) -> Result<()> {
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
                .expect("complete")
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete")
        };
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(TableLayout::PARTITION_KEY, KeyType::Hash))
            .key_schema(key(TableLayout::SORT_KEY, KeyType::Range))
            .attribute_definitions(attr(TableLayout::PARTITION_KEY))
            .attribute_definitions(attr(TableLayout::SORT_KEY));
        for (index, pk, sk) in TableLayout::INDEXES {
            let projection = if index == ACTIVE_INDEX {
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(
                        ACTIVE_INDEX_ATTRIBUTES
                            .iter()
                            .map(|a| a.to_string())
                            .collect(),
                    ))
                    .build()
            } else {
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build()
            };
            req = req
                .attribute_definitions(attr(pk))
                .attribute_definitions(attr(sk))
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .key_schema(key(pk, KeyType::Hash))
                        .key_schema(key(sk, KeyType::Range))
                        .projection(projection)
                        .build()
                        .expect("complete"),
                );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(classify("CreateTable", e)),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .expect("complete"),
            )
            .send()
            .await
            .map_err(|e| classify("UpdateTimeToLive", e))?;
        Ok(())
    }

    /// One move of the job lifecycle as one conditional `UpdateItem`: the condition from the
    /// move's rule, the update from [`update_of`]. `None` when the condition failed and nothing
    /// was written; else the item as the write left it, when `returns` asks for it.
    async fn update_job(
        &self,
        id: &JobId,
        change: &Change<'_>,
        returns: ReturnValue,
    ) -> Result<Option<Item>> {
        let rule = change.transition().rule();
        let condition = rule.condition();
        let (update, mut values) = update_of(change);
        values.extend(condition_values(change));
        if let Some(to) = change.target() {
            values.push((":to".into(), s(to.as_str())));
        }
        // DynamoDB refuses a placeholder that neither expression uses.
        let used = |ph: &str| mentions(&update, ph) || mentions(&condition, ph);
        let mut req = self
            .update(job_pk(id), "JOB")
            .update_expression(&update)
            .condition_expression(&condition)
            .return_values(returns);
        if used("#st") {
            req = req.expression_attribute_names("#st", "state");
        }
        for (ph, val) in values {
            if used(&ph) {
                req = req.expression_attribute_values(ph, val);
            }
        }
        match req
            .send()
            .await
            .map_err(|e| classify(op_of(rule.transition), e))
        {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(Error::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An `UpdateItem` of the item (`pk`, `sk`).
    fn update(&self, pk: impl Into<String>, sk: impl Into<String>) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(out.item)
    }

    async fn put_new(&self, item: Item, op: &'static str) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        Ok(())
    }

    /// One partition of the active index, every page.
    async fn active_partition(&self, partition: String) -> Result<Vec<ActiveJob>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACTIVE_INDEX)
                .key_condition_expression("active_pk = :a")
                .expression_attribute_values(":a", s(&partition))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query(active)", e))?;
            for item in page.items() {
                out.push(item_to_active(item)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    async fn get_idempotency(&self, pk: &str) -> Result<Option<(JobId, String, EpochMillis)>> {
        let Some(item) = self.get_item(pk.to_owned(), "IDEM").await? else {
            return Ok(None);
        };
        let id = req_s(&item, "job_id")?;
        let id = JobId::parse(id).ok_or_else(|| Error::corrupt("idempotency record", id))?;
        Ok(Some((
            id,
            req_s(&item, "body_hash")?.to_owned(),
            req_n(&item, "expires_at")?,
        )))
    }
}

/// The partition key of an idempotency record: the tenant and a hash of the client's key, so keys
/// of any content stay short and opaque.
fn idem_pk(idem: &Idempotency) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(idem.key.as_bytes());
    format!("IDEM#{}#{}", idem.tenant, hex::encode(digest))
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn create(&self, job: &Job, idem: Option<&Idempotency>) -> Result<Created> {
        let Some(idem) = idem else {
            self.put_new(job_to_item(job), "PutItem(job)").await?;
            return Ok(Created::New);
        };
        let pk = idem_pk(idem);
        let mut idem_item = Item::new();
        idem_item.insert("pk".into(), s(&pk));
        idem_item.insert("sk".into(), s("IDEM"));
        idem_item.insert("job_id".into(), s(job.id.as_str()));
        idem_item.insert("body_hash".into(), s(&idem.body_hash));
        idem_item.insert("expires_at".into(), n(idem.expires_at));
        idem_item.insert(TTL_ATTRIBUTE.into(), n(idem.expires_at / 1000));
        // Two conditional writes rather than one transaction: the key first (whoever writes it
        // owns the job id), then the job. A transaction costs twice the write units, and the
        // crash it would guard against (key written, job not) is repaired by the retry the API
        // asks for: the job server stores the job under the recorded id (see `Created`).
        let key_written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idem_item))
            // An expired record (TTL deletes lazily) may be replaced.
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(job.created_at))
            .send()
            .await
            .map_err(|e| classify("PutItem(idempotency)", e));
        if key_written.is_ok() {
            crate::failpoint("after_key_write");
        }
        match key_written {
            Ok(_) => match self.put_new(job_to_item(job), "PutItem(job)").await {
                Ok(()) => Ok(Created::New),
                // A retry of this request stored the job under our id first.
                Err(Error::Conflict(_)) => Ok(Created::Existing {
                    job_id: job.id.clone(),
                    body_hash: idem.body_hash.clone(),
                }),
                Err(e) => Err(e),
            },
            Err(Error::Conflict(_)) => match self.get_idempotency(&pk).await? {
                Some((job_id, body_hash, _)) => Ok(Created::Existing { job_id, body_hash }),
                None => Err(Error::Transient {
                    op: "PutItem(idempotency)",
                    message: "the key's record expired while it was read; retry".into(),
                }),
            },
            Err(e) => Err(e),
        }
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>> {
        self.get_item(job_pk(id), "JOB")
            .await?
            .as_ref()
            .map(item_to_job)
            .transpose()
    }

    async fn list(&self, tenant: &str, query: &ListQuery) -> Result<JobPage> {
        let limit = query.limit.clamp(1, 1000);
        let mut start: Option<Item> = match &query.cursor {
            None => None,
            Some(c) => {
                let (ms, id) = parse_cursor(c).ok_or_else(|| Error::Service {
                    op: "Query(by-tenant)",
                    message: "malformed cursor".into(),
                })?;
                let mut key = Item::new();
                key.insert("pk".into(), s(job_pk(&id)));
                key.insert("sk".into(), s("JOB"));
                key.insert("tenant_pk".into(), s(format!("T#{tenant}")));
                key.insert("tenant_sk".into(), s(order_key(ms, &id)));
                Some(key)
            }
        };
        let mut jobs = Vec::new();
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(TENANT_INDEX)
                .key_condition_expression("tenant_pk = :t")
                .expression_attribute_values(":t", s(format!("T#{tenant}")))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            if let Some(state) = query.state {
                req = req
                    .filter_expression("#st = :st")
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":st", s(state.as_str()))
                    .limit(100);
            } else {
                req = req.limit((limit - jobs.len()) as i32);
            }
            let out = req
                .send()
                .await
                .map_err(|e| classify("Query(by-tenant)", e))?;
            for item in out.items() {
                if jobs.len() < limit {
                    jobs.push(item_to_job(item)?);
                }
            }
            match out.last_evaluated_key {
                Some(k) if jobs.len() < limit => start = Some(k),
                Some(_) => break,
                None => {
                    return Ok(JobPage {
                        jobs,
                        next_cursor: None,
                    });
                }
            }
        }
        let next_cursor = jobs.last().map(|j| order_key(j.created_at, &j.id));
        Ok(JobPage { jobs, next_cursor })
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

/// Each move is one conditional `UpdateItem`: the condition from the move's rule, the update
/// from [`update_of`]; the item is read back (`ALL_NEW`) only when the caller needs the job.
#[async_trait]
impl Transitions for DynamoStore {
    async fn transition(&self, id: &JobId, change: &Change<'_>) -> Result<Option<Job>> {
        match self.update_job(id, change, ReturnValue::AllNew).await? {
            Some(item) => item_to_job(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn make(&self, id: &JobId, change: &Change<'_>) -> Result<bool> {
        let made = self.update_job(id, change, ReturnValue::None).await?;
        Ok(made.is_some())
    }

    async fn current(&self, id: &JobId) -> Result<Option<Job>> {
        self.get(id).await
    }
}

#[async_trait]
impl ActiveWork for DynamoStore {
    async fn active_jobs(&self) -> Result<Vec<ActiveJob>> {
        let mut shards = tokio::task::JoinSet::new();
        for partition in active_partitions() {
            let store = self.clone();
            shards.spawn(async move { store.active_partition(partition).await });
        }
        let mut out = Vec::new();
        while let Some(shard) = shards.join_next().await {
            let shard = shard.map_err(|e| Error::Transient {
                op: "Query(active)",
                message: format!("a shard's query stopped: {e}"),
            })?;
            out.extend(shard?);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
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
impl ApiKeys for DynamoStore {
    async fn find_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let Some(item) = self.get_item(format!("KEY#{key_id}"), "KEY").await? else {
            return Ok(None);
        };
        Ok(Some(ApiKeyRecord {
            key_id: key_id.to_owned(),
            tenant: req_s(&item, "tenant")?.to_owned(),
            secret_hash: req_s(&item, "secret_hash")?.to_owned(),
            created_at: req_n(&item, "created_at")?,
            revoked_at: opt_n(&item, "revoked_at")?,
        }))
    }

    async fn create_key(&self, r: &ApiKeyRecord) -> Result<()> {
        let mut item = Item::new();
        item.insert("pk".into(), s(format!("KEY#{}", r.key_id)));
        item.insert("sk".into(), s("KEY"));
        item.insert("tenant".into(), s(&r.tenant));
        item.insert("secret_hash".into(), s(&r.secret_hash));
        item.insert("created_at".into(), n(r.created_at));
        self.put_new(item, "PutItem(key)").await
    }

    async fn revoke_key(&self, key_id: &str, now: EpochMillis) -> Result<bool> {
        let res = self
            .update(format!("KEY#{key_id}"), "KEY")
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(revoke)", e));
        applied(res)
    }
}

#[async_trait]
impl AssetStore for DynamoStore {
    async fn create_asset(&self, a: &Asset) -> Result<()> {
        let mut item = Item::new();
        item.insert("pk".into(), s(format!("ASSET#{}", a.id)));
        item.insert("sk".into(), s("ASSET"));
        item.insert("tenant".into(), s(&a.tenant));
        item.insert("content_type".into(), s(&a.content_type));
        item.insert("size_bytes".into(), n(a.size_bytes));
        item.insert("key".into(), s(&a.key));
        item.insert("created_at".into(), n(a.created_at));
        self.put_new(item, "PutItem(asset)").await
    }

    async fn get_asset(&self, id: &AssetId) -> Result<Option<Asset>> {
        let Some(item) = self.get_item(format!("ASSET#{id}"), "ASSET").await? else {
            return Ok(None);
        };
        Ok(Some(Asset {
            id: id.clone(),
            tenant: req_s(&item, "tenant")?.to_owned(),
            content_type: req_s(&item, "content_type")?.to_owned(),
            size_bytes: req_n(&item, "size_bytes")?,
            key: req_s(&item, "key")?.to_owned(),
            created_at: req_n(&item, "created_at")?,
        }))
    }
}

#[async_trait]
impl ScalerMemory for DynamoStore {
    async fn load_state(&self) -> Result<Option<String>> {
        let item = self.get_item(SCALER_STATE_PK.to_owned(), "STATE").await?;
        Ok(item.and_then(|i| opt_s(&i, "json")))
    }

    async fn save_state(&self, json: &str) -> Result<()> {
        let mut item = Item::new();
        item.insert("pk".into(), s(SCALER_STATE_PK));
        item.insert("sk".into(), s("STATE"));
        item.insert("json".into(), s(json));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("PutItem(scaler state)", e))?;
        Ok(())
    }

    async fn record_decision(&self, at: EpochMillis, json: &str, ttl: Duration) -> Result<()> {
        let mut item = Item::new();
        item.insert("pk".into(), s(SCALER_DECISIONS_PK));
        item.insert("sk".into(), s(format!("{at:013}")));
        item.insert("json".into(), s(json));
        item.insert(TTL_ATTRIBUTE.into(), n(at / 1000 + ttl.as_secs() as i64));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("PutItem(decision)", e))?;
        Ok(())
    }

    async fn decisions(&self, limit: usize) -> Result<Vec<(EpochMillis, String)>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(SCALER_DECISIONS_PK))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| classify("Query(decisions)", e))?;
        out.items()
            .iter()
            .map(|item| {
                let at = req_s(item, "sk")?
                    .parse()
                    .map_err(|_| Error::corrupt("decision", "bad sort key"))?;
                Ok((at, req_s(item, "json")?.to_owned()))
            })
            .collect()
    }
}

impl DynamoStore {
    fn agent_key(&self, instance_id: &str) -> UpdateItemFluentBuilder {
        self.update(AGENTS_PK, instance_id)
    }
}

/// The agents' liveness items: pk `AGENTS`, sk the instance id, the heartbeat as JSON in `hb`,
/// and the [`WorkGate`] fields `engaged` (written by the agent) and `retiring` (by the scaler).
/// One partition, read with one query per scaler tick: at 1,000 agents reporting every 10 s that
/// is 100 writes a second of the partition's 1,000.
#[async_trait]
impl HealthReporter for DynamoStore {
    async fn report(&self, instance_id: &str, hb: &Heartbeat) -> Result<()> {
        let json = serde_json::to_string(hb).expect("a heartbeat always serializes");
        self.agent_key(instance_id)
            .update_expression("SET hb = :hb, ts = :ts, #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":hb", s(json))
            .expression_attribute_values(":ts", n(hb.ts))
            .expression_attribute_values(":ttl", n(hb.ts / 1000 + HEARTBEAT_TTL_SECS))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(heartbeat)", e))?;
        Ok(())
    }

    async fn withdraw(&self, instance_id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(AGENTS_PK))
            .key("sk", s(instance_id))
            .send()
            .await
            .map_err(|e| classify("DeleteItem(heartbeat)", e))?;
        Ok(())
    }
}

#[async_trait]
impl AgentDirectory for DynamoStore {
    async fn heartbeats(&self) -> Result<Vec<(String, Heartbeat)>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(AGENTS_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query(heartbeats)", e))?;
            for item in page.items() {
                let Ok(instance) = req_s(item, "sk") else {
                    continue;
                };
                // An item holding only the gate (its agent never reported) has no heartbeat.
                let Some(json) = opt_s(item, "hb") else {
                    continue;
                };
                match serde_json::from_str::<Heartbeat>(&json) {
                    Ok(mut hb) => {
                        hb.retiring = opt_n(item, "retiring")?;
                        hb.engaged =
                            matches!(item.get("engaged"), Some(AttributeValue::Bool(true)));
                        out.push((instance.to_owned(), hb));
                    }
                    Err(e) => {
                        tracing::warn!(instance, error = %e, "unreadable heartbeat skipped")
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl WorkGate for DynamoStore {
    async fn engage(&self, instance_id: &str) -> Result<bool> {
        let res = self
            .agent_key(instance_id)
            .update_expression("SET engaged = :t")
            .condition_expression("attribute_not_exists(retiring)")
            .expression_attribute_values(":t", b(true))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(engage)", e));
        applied(res)
    }

    async fn disengage(&self, instance_id: &str) -> Result<()> {
        self.agent_key(instance_id)
            .update_expression("SET engaged = :f")
            .expression_attribute_values(":f", b(false))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(disengage)", e))?;
        Ok(())
    }
}

#[async_trait]
impl Retirement for DynamoStore {
    async fn mark_retiring(&self, instance_id: &str, now: EpochMillis) -> Result<bool> {
        let res = self
            .agent_key(instance_id)
            .update_expression("SET retiring = if_not_exists(retiring, :now)")
            .condition_expression(
                "attribute_exists(hb) AND (attribute_not_exists(engaged) OR engaged = :f)",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":f", b(false))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(retiring)", e));
        applied(res)
    }
}

/// The scaler's tick lease: one item (`SCALER`, `LEASE`) holding the holder, until when, and the
/// newest slot that ran.
#[async_trait]
impl TickLease for DynamoStore {
    async fn acquire(
        &self,
        holder: &str,
        slot: Option<u64>,
        now: EpochMillis,
        until: EpochMillis,
    ) -> Result<LeaseOutcome> {
        let mut req = self
            .update(SCALER_STATE_PK, LEASE_SK)
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now));
        let free = "(attribute_not_exists(lease_until) OR lease_until < :now)";
        req = match slot {
            Some(slot) => req
                .update_expression("SET holder = :h, lease_until = :until, last_slot = :slot")
                .condition_expression(format!(
                    "{free} AND (attribute_not_exists(last_slot) OR last_slot < :slot)"
                ))
                .expression_attribute_values(":slot", n(slot)),
            None => req
                .update_expression("SET holder = :h, lease_until = :until")
                .condition_expression(free),
        };
        match req
            .send()
            .await
            .map_err(|e| classify("UpdateItem(tick lease)", e))
        {
            Ok(_) => return Ok(LeaseOutcome::Acquired),
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let item = self
            .get_item(SCALER_STATE_PK.to_owned(), LEASE_SK)
            .await?
            .unwrap_or_default();
        let last: Option<u64> = opt_n(&item, "last_slot")?;
        if slot.is_some_and(|s| last.is_some_and(|l| l >= s)) {
            return Ok(LeaseOutcome::SlotDone);
        }
        Ok(LeaseOutcome::Busy {
            until: opt_n(&item, "lease_until")?.unwrap_or(now),
        })
    }

    async fn release(&self, holder: &str) -> Result<()> {
        let res = self
            .update(SCALER_STATE_PK, LEASE_SK)
            .update_expression("SET lease_until = :zero")
            .condition_expression("holder = :h")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":h", s(holder))
            .send()
            .await
            .map_err(|e| classify("UpdateItem(tick lease release)", e));
        match res {
            Ok(_) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
