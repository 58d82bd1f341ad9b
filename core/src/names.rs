//! Resource names per environment, as DESIGN.md fixes them. Every binary and the Terraform modules
//! derive names from the environment alone, so they cannot disagree.

/// The CloudWatch namespace every renderfleet metric lives in.
pub const METRICS_NAMESPACE: &str = "RenderFleet";
/// The one dimension every metric carries.
pub const ENV_DIMENSION: &str = "Environment";
/// The jobs table's index of jobs per tenant, newest first.
pub const TENANT_INDEX: &str = "by-tenant";
/// The jobs table's sparse index of queued and running jobs.
pub const ACTIVE_INDEX: &str = "active";
/// Attributes projected into the active index (besides the keys): what the scaler and the
/// sweeper read.
pub const ACTIVE_INDEX_ATTRIBUTES: &[&str] = &[
    "id",
    "state",
    "created_at",
    "started_at",
    "est_work",
    "instance_id",
    "enqueued",
    "lease_until",
    "attempts",
    "priority",
];

/// All names of one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceNames {
    pub env: String,
    pub queue: String,
    pub dlq: String,
    pub table: String,
    pub bucket: String,
    pub asg: String,
    /// `/renderfleet/{env}` without a trailing slash.
    pub ssm_prefix: String,
}

impl ResourceNames {
    /// Names for `env`, which must be 1 to 24 characters of `a-z`, `0-9` and `-`, starting with a
    /// letter (it becomes part of S3 bucket names).
    pub fn for_env(env: &str) -> Result<Self, String> {
        let ok = !env.is_empty()
            && env.len() <= 24
            && env.starts_with(|c: char| c.is_ascii_lowercase())
            && env
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!(
                "environment name {env:?} must be 1-24 characters of a-z, 0-9 and '-', starting with a letter"
            ));
        }
        Ok(Self {
            env: env.to_owned(),
            queue: format!("renderfleet-{env}-jobs"),
            dlq: format!("renderfleet-{env}-jobs-dlq"),
            table: format!("renderfleet-{env}-jobs"),
            bucket: format!("renderfleet-{env}-media"),
            asg: format!("renderfleet-{env}-workers"),
            ssm_prefix: format!("/renderfleet/{env}"),
        })
    }

    /// The SSM path holding agent heartbeats, with a trailing slash.
    pub fn agents_path(&self) -> String {
        format!("{}/agents/", self.ssm_prefix)
    }

    /// The SSM parameter an agent on `instance_id` reports to.
    pub fn agent_parameter(&self, instance_id: &str) -> String {
        format!("{}/agents/{instance_id}", self.ssm_prefix)
    }

    /// The SSM parameter holding the scaling policy (JSON), read by the scaler on every tick.
    pub fn scaling_policy_parameter(&self) -> String {
        format!("{}/scaling/policy", self.ssm_prefix)
    }
}

/// S3 key of an uploaded asset.
pub fn asset_key(tenant: &str, asset_id: &str) -> String {
    format!("assets/{tenant}/{asset_id}")
}

/// S3 key of a job's output. One key per job, so a duplicate render overwrites rather than adds.
pub fn output_key(tenant: &str, job_id: &str) -> String {
    format!("outputs/{tenant}/{job_id}/output.mp4")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let n = ResourceNames::for_env("dev").unwrap();
        assert_eq!(n.queue, "renderfleet-dev-jobs");
        assert_eq!(n.dlq, "renderfleet-dev-jobs-dlq");
        assert_eq!(n.table, "renderfleet-dev-jobs");
        assert_eq!(n.bucket, "renderfleet-dev-media");
        assert_eq!(n.asg, "renderfleet-dev-workers");
        assert_eq!(n.agent_parameter("i-1"), "/renderfleet/dev/agents/i-1");
        assert!(ResourceNames::for_env("Prod").is_err());
        assert!(ResourceNames::for_env("").is_err());
        assert!(ResourceNames::for_env("a/b").is_err());
    }
}
