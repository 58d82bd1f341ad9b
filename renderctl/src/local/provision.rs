//! Creates one environment's resources on the emulator, with the names and settings the
//! Terraform modules give them in AWS: the queue and its dead-letter queue with a redrive policy,
//! the jobs table with its indexes, the media bucket, a launch template, the worker group
//! (min 0, desired 0, max as asked), the scaling-policy parameter and a dev API key.

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
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

/// The launch template's name (Terraform's render_fleet module uses the same).
pub fn launch_template_name(names: &ResourceNames) -> String {
    format!("renderfleet-{}-worker", names.env)
}

pub async fn provision(sdk: &SdkConfig, plan: &Plan) -> anyhow::Result<Provisioned> {
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

    create_group(sdk, plan).await?;

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

async fn create_group(sdk: &SdkConfig, plan: &Plan) -> anyhow::Result<()> {
    let n = &plan.names;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let template = launch_template_name(n);
    let exists = ec2
        .describe_launch_templates()
        .launch_template_names(&template)
        .send()
        .await
        .map(|o| !o.launch_templates().is_empty())
        .unwrap_or(false);
    if !exists {
        ec2.create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id("ami-renderfleet-worker")
                    .instance_type(aws_sdk_ec2::types::InstanceType::C6iXlarge)
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .tags(Tag::builder().key("renderfleet:env").value(&n.env).build())
                    .build(),
            )
            .send()
            .await
            .context("creating the launch template")?;
    }
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let existing = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&n.asg)
        .send()
        .await
        .context("looking up the worker group")?;
    if existing.auto_scaling_groups().is_empty() {
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&n.asg)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(plan.max_workers as i32)
            .desired_capacity(0)
            .availability_zones(format!(
                "{}a",
                sdk.region().map(|r| r.as_ref()).unwrap_or("us-east-1")
            ))
            // As Terraform's group: the group never picks a scale-in victim itself; the scaler
            // retires idle workers by name, through the agents' work gate.
            .new_instances_protected_from_scale_in(true)
            .send()
            .await
            .context("creating the worker group")?;
    } else {
        asg.update_auto_scaling_group()
            .auto_scaling_group_name(&n.asg)
            .max_size(plan.max_workers as i32)
            .new_instances_protected_from_scale_in(true)
            .send()
            .await
            .context("updating the worker group")?;
    }
    Ok(())
}
