//! The worker group on EC2 Auto Scaling.

use async_trait::async_trait;
use aws_sdk_autoscaling::Client;

use super::classify;
use crate::ports::{Fleet, FleetInstance, FleetState, Lifecycle, LifecycleActions};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct AsgFleet {
    client: Client,
    group: String,
}

impl AsgFleet {
    pub fn new(config: &aws_config::SdkConfig, group: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            group: group.into(),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The SDK client, for the local stack's provisioning.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn lifecycle(state: &str) -> Lifecycle {
    match state {
        "InService" => Lifecycle::InService,
        s if s.starts_with("Pending") => Lifecycle::Pending,
        s if s.starts_with("Terminating") || s == "Terminated" => Lifecycle::Terminating,
        other => Lifecycle::Other(other.to_owned()),
    }
}

#[async_trait]
impl Fleet for AsgFleet {
    async fn describe(&self) -> Result<FleetState> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.group)
            .send()
            .await
            .map_err(|e| classify("DescribeAutoScalingGroups", e))?;
        let group = out
            .auto_scaling_groups()
            .first()
            .ok_or_else(|| Error::Config(format!("auto scaling group {} not found", self.group)))?;
        let instances = group
            .instances()
            .iter()
            .map(|i| FleetInstance {
                id: i.instance_id().unwrap_or_default().to_owned(),
                lifecycle: lifecycle(i.lifecycle_state().map(|s| s.as_str()).unwrap_or("")),
                healthy: i
                    .health_status()
                    .is_none_or(|h| h.eq_ignore_ascii_case("healthy")),
                protected: i.protected_from_scale_in().unwrap_or(false),
            })
            .collect();
        let n = |v: Option<i32>| v.unwrap_or(0).max(0) as u32;
        Ok(FleetState {
            desired: n(group.desired_capacity),
            min: n(group.min_size),
            max: n(group.max_size),
            instances,
        })
    }

    async fn set_desired(&self, desired: u32) -> Result<()> {
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(&self.group)
            .desired_capacity(desired as i32)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| classify("SetDesiredCapacity", e))?;
        Ok(())
    }

    async fn terminate(&self, instance_id: &str, decrement: bool) -> Result<()> {
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map_err(|e| classify("TerminateInstanceInAutoScalingGroup", e))?;
        Ok(())
    }
}

#[async_trait]
impl LifecycleActions for AsgFleet {
    async fn complete(&self, hook: &str, instance_id: &str, proceed: bool) -> Result<()> {
        self.client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&self.group)
            .lifecycle_hook_name(hook)
            .instance_id(instance_id)
            .lifecycle_action_result(if proceed { "CONTINUE" } else { "ABANDON" })
            .send()
            .await
            .map_err(|e| classify("CompleteLifecycleAction", e))?;
        Ok(())
    }
}
