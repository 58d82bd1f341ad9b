//! The worker group of one environment on the emulator (the local stack), as Terraform's
//! render_fleet module makes it in AWS: a launch template and an Auto Scaling group built from it
//! (min 0, desired 0, max as asked, new instances protected from scale-in). Behind the `provision`
//! feature: only `renderctl dev up` creates a group; every other binary only reads and resizes one.

#![cfg(feature = "provision")]

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{
    InstanceType, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};

use super::classify;
use crate::Result;
use crate::names::ResourceNames;

/// The image and instance type the emulator's launch template names (it launches no machine).
const IMAGE_ID: &str = "ami-renderfleet-worker";

/// The launch template's name (Terraform's render_fleet module uses the same).
pub fn launch_template_name(names: &ResourceNames) -> String {
    format!("renderfleet-{}-worker", names.env)
}

/// Creates, or brings up to date, the worker group of an environment.
#[derive(Clone, Debug)]
pub struct LocalFleetProvisioner {
    ec2: aws_sdk_ec2::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    /// The one availability zone the group spans: the region's first.
    zone: String,
}

impl LocalFleetProvisioner {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let region = config.region().map_or("us-east-1", |r| r.as_ref());
        Self {
            ec2: aws_sdk_ec2::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            zone: format!("{region}a"),
        }
    }

    /// Makes sure `names.asg` exists with at most `max_workers` instances: creates its launch
    /// template and the group when missing, else sets the existing group's maximum. Starts no
    /// instance (desired stays 0 on a new group).
    pub async fn ensure_group(&self, names: &ResourceNames, max_workers: u32) -> Result<()> {
        let template = launch_template_name(names);
        if !self.template_exists(&template).await {
            self.create_template(&template, &names.env).await?;
        }
        let max = i32::try_from(max_workers).unwrap_or(i32::MAX);
        if self.group_exists(&names.asg).await? {
            self.autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(&names.asg)
                .max_size(max)
                .new_instances_protected_from_scale_in(true)
                .send()
                .await
                .map_err(|e| classify("UpdateAutoScalingGroup", e))?;
            return Ok(());
        }
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&names.asg)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(max)
            .desired_capacity(0)
            .availability_zones(&self.zone)
            // As Terraform's group: the group never picks a scale-in victim itself; the scaler
            // retires idle workers by name, through the agents' work gate.
            .new_instances_protected_from_scale_in(true)
            .send()
            .await
            .map_err(|e| classify("CreateAutoScalingGroup", e))?;
        Ok(())
    }

    /// Whether the template exists; a failed lookup (the emulator answers an unknown name with an
    /// error) counts as missing, and creating it then says what is wrong.
    async fn template_exists(&self, template: &str) -> bool {
        self.ec2
            .describe_launch_templates()
            .launch_template_names(template)
            .send()
            .await
            .is_ok_and(|o| !o.launch_templates().is_empty())
    }

    async fn create_template(&self, template: &str, env: &str) -> Result<()> {
        self.ec2
            .create_launch_template()
            .launch_template_name(template)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(IMAGE_ID)
                    .instance_type(InstanceType::C6iXlarge)
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .tags(Tag::builder().key("renderfleet:env").value(env).build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("CreateLaunchTemplate", e))?;
        Ok(())
    }

    async fn group_exists(&self, group: &str) -> Result<bool> {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| classify("DescribeAutoScalingGroups", e))?;
        Ok(!out.auto_scaling_groups().is_empty())
    }
}
