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
    "enqueued_at",
    "lease_until",
    "attempts",
    "priority",
];

/// Shards of the active index's partition key: `ACTIVE#0` to `ACTIVE#f`, by the job id's last hex
/// digit, so queued and running jobs do not all write one partition of the index.
pub const ACTIVE_SHARDS: u32 = 16;
/// The jobs table's partition holding one liveness item per agent (sort key: the instance id).
pub const AGENTS_PK: &str = "AGENTS";

/// All names of one environment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceNames {
    pub env: String,
    pub queue: String,
    pub dlq: String,
    pub table: String,
    /// `renderfleet-{env}-media` by default (the local stack); on AWS the bucket name must be
    /// unique across accounts, so Terraform names it with the account id and passes it as
    /// `RENDERFLEET_BUCKET` (see [`ResourceNames::with_bucket`]).
    pub bucket: String,
    pub asg: String,
    /// The scaler's self-tick queue.
    pub tick_queue: String,
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
            tick_queue: format!("renderfleet-{env}-scaler-ticks"),
            ssm_prefix: format!("/renderfleet/{env}"),
        })
    }

    /// The same names with the media bucket called `bucket`, which must be a valid S3 bucket name
    /// (3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit).
    pub fn with_bucket(mut self, bucket: &str) -> Result<Self, String> {
        let ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !ok {
            return Err(format!(
                "bucket name {bucket:?} must be 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
            ));
        }
        self.bucket = bucket.to_owned();
        Ok(self)
    }

    /// Names from a binary's environment: `RENDERFLEET_ENV` (required) and `RENDERFLEET_BUCKET`
    /// (optional). The error names the variable.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, (&'static str, String)> {
        let env = get("RENDERFLEET_ENV")
            .filter(|v| !v.trim().is_empty())
            .ok_or((
                "RENDERFLEET_ENV",
                "required: the environment name, e.g. dev".to_owned(),
            ))?;
        let names = Self::for_env(env.trim()).map_err(|m| ("RENDERFLEET_ENV", m))?;
        match get("RENDERFLEET_BUCKET").filter(|v| !v.trim().is_empty()) {
            Some(b) => names
                .with_bucket(b.trim())
                .map_err(|m| ("RENDERFLEET_BUCKET", m)),
            None => Ok(names),
        }
    }

    /// The SSM path holding agent health states, with a trailing slash.
    pub fn agents_path(&self) -> String {
        format!("{}/agents/", self.ssm_prefix)
    }

    /// The SSM parameter holding the health state of the agent on `instance_id`.
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
        assert_eq!(n.tick_queue, "renderfleet-dev-scaler-ticks");
        assert!(ResourceNames::for_env("Prod").is_err());
        assert!(ResourceNames::for_env("").is_err());
        assert!(ResourceNames::for_env("a/b").is_err());
    }

    #[test]
    fn the_bucket_is_configurable_and_checked() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let n = ResourceNames::from_lookup(lookup(&[("RENDERFLEET_ENV", "dev")])).unwrap();
        assert_eq!(n.bucket, "renderfleet-dev-media");
        let n = ResourceNames::from_lookup(lookup(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_BUCKET", "renderfleet-dev-media-123456789012"),
        ]))
        .unwrap();
        assert_eq!(n.bucket, "renderfleet-dev-media-123456789012");
        assert_eq!(n.queue, "renderfleet-dev-jobs");
        for bad in ["ab", "Upper-case", "-dash", "a..b", "under_score"] {
            let e = ResourceNames::for_env("dev").unwrap().with_bucket(bad);
            assert!(e.is_err(), "{bad} accepted");
        }
        let e = ResourceNames::from_lookup(lookup(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_BUCKET", "x"),
        ]))
        .unwrap_err();
        assert_eq!(e.0, "RENDERFLEET_BUCKET");
        assert_eq!(
            ResourceNames::from_lookup(lookup(&[])).unwrap_err().0,
            "RENDERFLEET_ENV"
        );
    }
}
