//! Creates one environment's resources on the emulator, with the names and settings the
//! Terraform modules give them in AWS: the queue and its dead-letter queue with a redrive policy,
//! the jobs table with its indexes, the media bucket, a launch template, the worker group
//! (min 0, desired 0, max as asked), the scaling-policy parameter and a dev API key.

use anyhow::Context;
use renderfleet_core::aws::provision::LocalFleetProvisioner;
use renderfleet_core::aws::{DynamoStore, S3Media, SqsQueue, SsmParameters};
use renderfleet_core::clock::now_ms;
use renderfleet_core::message::MAX_RECEIVE_COUNT;
use renderfleet_core::names::ResourceNames;
use renderfleet_core::ports::ApiKeys;
use serde_json::json;

/// What to create.
#[derive(Clone, Debug)]
pub struct Plan {
    pub names: ResourceNames,
    pub max_workers: u32,
    /// The jobs queue's visibility timeout.
    pub visibility_secs: u64,
    /// The scaling policy stored in SSM, as JSON.
    pub policy: serde_json::Value,
    /// Tenant of the dev key.
    pub dev_tenant: String,
}

/// What was created that callers need.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub queue_url: String,
    pub dev_key: String,
}

/// Creates `plan`'s resources on the emulator at `endpoint`.
pub async fn provision(endpoint: &str, region: &str, plan: &Plan) -> anyhow::Result<Provisioned> {
    let sdk = &renderfleet_core::aws::emulator_config(endpoint, region).await;
    let n = &plan.names;
    let (_, dlq_arn) = SqsQueue::create(
        sdk,
        &n.dlq,
        &[("MessageRetentionPeriod", (14 * 24 * 3600).to_string())],
    )
    .await
    .context("creating the dead-letter queue")?;
    let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT });
    let (queue_url, _) = SqsQueue::create(
        sdk,
        &n.queue,
        &[
            ("VisibilityTimeout", plan.visibility_secs.to_string()),
            ("ReceiveMessageWaitTimeSeconds", "20".into()),
            // SQS's longest retention: a backlog never outlives its messages.
            ("MessageRetentionPeriod", (14 * 24 * 3600).to_string()),
            ("RedrivePolicy", redrive.to_string()),
        ],
    )
    .await
    .context("creating the jobs queue")?;
    // The scaler's self-scheduling tick chain (used by the Lambda; the local loop keeps its own
    // clock), created so the local stack holds every queue an environment has.
    SqsQueue::create(
        sdk,
        &n.tick_queue,
        &[("MessageRetentionPeriod", "3600".into())],
    )
    .await
    .context("creating the scaler's tick queue")?;

    let store = DynamoStore::new(sdk, &n.table);
    store
        .create_table()
        .await
        .context("creating the jobs table")?;
    S3Media::new(sdk, &n.bucket)
        .create_bucket()
        .await
        .context("creating the media bucket")?;

    LocalFleetProvisioner::new(sdk)
        .ensure_group(n, plan.max_workers)
        .await
        .context("creating the worker group")?;

    let ssm = SsmParameters::new(sdk, n.clone());
    ssm.put(&n.scaling_policy_parameter(), &plan.policy.to_string())
        .await
        .context("writing the scaling policy parameter")?;

    let key = renderfleet_core::keys::generate(&plan.dev_tenant, now_ms());
    store
        .create_key(&key.record)
        .await
        .context("storing the dev API key")?;
    Ok(Provisioned {
        queue_url,
        dev_key: key.plaintext,
    })
}
