//! The scaler's settings, parsed once from the environment. Terraform's scaler module sets the
//! same variables; `docs/SCALING.md` explains each one.

use std::time::Duration;

use renderfleet_core::names::ResourceNames;
use scaling_policy::PolicyConfig;

/// Everything the scaler needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// `RENDERFLEET_ENV`: the environment whose resources are scaled (required).
    pub names: ResourceNames,
    /// The policy, one variable per setting (defaults in [`PolicyConfig::default`]):
    /// `RENDERFLEET_MIN_WORKERS`, `RENDERFLEET_MAX_WORKERS`, `RENDERFLEET_SLOTS_PER_WORKER`,
    /// `RENDERFLEET_TARGET_WAIT_SECS`, `RENDERFLEET_BOOT_SECS` (the boot time assumed until one
    /// is measured), `RENDERFLEET_TICK_SECS`, `RENDERFLEET_SCALE_IN_WINDOW_SECS`,
    /// `RENDERFLEET_WORKER_IDLE_SECS`, `RENDERFLEET_IDLE_TO_ZERO_SECS`,
    /// `RENDERFLEET_MIN_BILLED_SECS`, `RENDERFLEET_MAX_STEP_UP`, `RENDERFLEET_MAX_STEP_DOWN`,
    /// `RENDERFLEET_DRY_RUN`.
    pub policy: PolicyConfig,
    /// `RENDERFLEET_SECONDS_PER_UNIT`: render seconds per work unit until an agent has measured
    /// it. Default 1.0 (one second of 720p30 renders in one second).
    pub seconds_per_unit: f64,
    /// `RENDERFLEET_HEARTBEAT_STALE_SECS`: a heartbeat older than this no longer counts.
    /// Default 45 (the agent reports every 10 s).
    pub heartbeat_stale: Duration,
    /// `RENDERFLEET_BOOT_TIMEOUT_SECS`: an in-service instance whose agent has never reported
    /// this long after it appeared is replaced. Default 600.
    pub boot_timeout: Duration,
    /// `RENDERFLEET_UNHEALTHY_GRACE_SECS`: an agent reporting `unhealthy` (its self-check fails)
    /// on an instance older than this is replaced. Default 120.
    pub unhealthy_grace: Duration,
    /// `RENDERFLEET_DECISION_TTL_HOURS`: how long decisions are kept in the history. Default 72.
    pub decision_ttl: Duration,
    /// `RENDERFLEET_TICK_LEASE_SECS`: how long one tick holds the scaler's lease (a tick that
    /// dies holding it delays the next by at most this). Default 30, the Lambda's timeout.
    pub tick_lease: Duration,
}

pub use renderfleet_core::edge::ConfigError;
use renderfleet_core::edge::{Settings, env_var};

/// Which variable holds each policy setting, for error messages.
const POLICY_VARS: &[(&str, &str)] = &[
    ("min_workers", "RENDERFLEET_MIN_WORKERS"),
    ("max_workers", "RENDERFLEET_MAX_WORKERS"),
    ("slots_per_worker", "RENDERFLEET_SLOTS_PER_WORKER"),
    ("target_wait_secs", "RENDERFLEET_TARGET_WAIT_SECS"),
    ("default_boot_secs", "RENDERFLEET_BOOT_SECS"),
    ("tick_secs", "RENDERFLEET_TICK_SECS"),
    ("scale_in_window_secs", "RENDERFLEET_SCALE_IN_WINDOW_SECS"),
    ("worker_idle_secs", "RENDERFLEET_WORKER_IDLE_SECS"),
    ("idle_to_zero_secs", "RENDERFLEET_IDLE_TO_ZERO_SECS"),
    ("min_billed_secs", "RENDERFLEET_MIN_BILLED_SECS"),
    ("max_step_up", "RENDERFLEET_MAX_STEP_UP"),
    ("max_step_down", "RENDERFLEET_MAX_STEP_DOWN"),
];

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    /// Parses from any lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Settings::new(&get);
        let names = env.names()?;
        let policy = policy(&env)?;
        let seconds_per_unit: f64 = env.parse_or("RENDERFLEET_SECONDS_PER_UNIT", 1.0)?;
        if !(seconds_per_unit.is_finite() && seconds_per_unit > 0.0) {
            return Err(ConfigError::new(
                "RENDERFLEET_SECONDS_PER_UNIT",
                format!("must be a positive number, got {seconds_per_unit}"),
            ));
        }
        let hours: u64 = env.parse_or("RENDERFLEET_DECISION_TTL_HOURS", 72)?;
        let tick_lease = env.secs_or("RENDERFLEET_TICK_LEASE_SECS", 30)?;
        if tick_lease.is_zero() {
            return Err(ConfigError::new(
                "RENDERFLEET_TICK_LEASE_SECS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            names,
            policy,
            seconds_per_unit,
            heartbeat_stale: env.secs_or("RENDERFLEET_HEARTBEAT_STALE_SECS", 45)?,
            boot_timeout: env.secs_or("RENDERFLEET_BOOT_TIMEOUT_SECS", 600)?,
            unhealthy_grace: env.secs_or("RENDERFLEET_UNHEALTHY_GRACE_SECS", 120)?,
            decision_ttl: Duration::from_secs(hours * 3600),
            tick_lease,
        })
    }
}

/// The policy, one variable per setting, validated; an invalid one is named by its variable.
fn policy(env: &Settings<'_>) -> Result<PolicyConfig, ConfigError> {
    let d = PolicyConfig::default();
    let policy = PolicyConfig {
        min_workers: env.parse_or("RENDERFLEET_MIN_WORKERS", d.min_workers)?,
        max_workers: env.parse_or("RENDERFLEET_MAX_WORKERS", d.max_workers)?,
        slots_per_worker: env.parse_or("RENDERFLEET_SLOTS_PER_WORKER", d.slots_per_worker)?,
        target_wait_secs: env.parse_or("RENDERFLEET_TARGET_WAIT_SECS", d.target_wait_secs)?,
        default_boot_secs: env.parse_or("RENDERFLEET_BOOT_SECS", d.default_boot_secs)?,
        tick_secs: env.parse_or("RENDERFLEET_TICK_SECS", d.tick_secs)?,
        scale_in_window_secs: env
            .parse_or("RENDERFLEET_SCALE_IN_WINDOW_SECS", d.scale_in_window_secs)?,
        worker_idle_secs: env
            .parse("RENDERFLEET_WORKER_IDLE_SECS")?
            .or(d.worker_idle_secs),
        idle_to_zero_secs: env.parse_or("RENDERFLEET_IDLE_TO_ZERO_SECS", d.idle_to_zero_secs)?,
        min_billed_secs: env.parse_or("RENDERFLEET_MIN_BILLED_SECS", d.min_billed_secs)?,
        max_step_up: env.parse_or("RENDERFLEET_MAX_STEP_UP", d.max_step_up)?,
        max_step_down: env.parse_or("RENDERFLEET_MAX_STEP_DOWN", d.max_step_down)?,
        dry_run: env.parse_or("RENDERFLEET_DRY_RUN", d.dry_run)?,
    };
    policy.validate().map_err(|e| {
        let var = POLICY_VARS
            .iter()
            .find(|(field, _)| *field == e.setting)
            .map_or("RENDERFLEET_MAX_WORKERS", |(_, v)| v);
        ConfigError::new(var, e.message)
    })?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(parse(&[]).unwrap_err().var, "RENDERFLEET_ENV");
        let e = parse(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_MAX_WORKERS", "many"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "RENDERFLEET_MAX_WORKERS");
        let e = parse(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_MIN_WORKERS", "5"),
            ("RENDERFLEET_MAX_WORKERS", "2"),
        ])
        .unwrap_err();
        assert!(e.message.contains("below"), "{e}");
        let e = parse(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_TARGET_WAIT_SECS", "-3"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "RENDERFLEET_TARGET_WAIT_SECS", "{e}");
        let e = parse(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_SLOTS_PER_WORKER", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "RENDERFLEET_SLOTS_PER_WORKER", "{e}");
    }

    #[test]
    fn defaults_apply() {
        let c = parse(&[("RENDERFLEET_ENV", "dev")]).unwrap();
        assert_eq!(c.policy, PolicyConfig::default());
        assert_eq!(c.names.asg, "renderfleet-dev-workers");
        let c = parse(&[
            ("RENDERFLEET_ENV", "dev"),
            ("RENDERFLEET_WORKER_IDLE_SECS", "5"),
        ])
        .unwrap();
        assert_eq!(c.policy.worker_idle_secs, Some(5.0));
    }
}
