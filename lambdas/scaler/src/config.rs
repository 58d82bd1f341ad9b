//! The scaler's settings, parsed once from the environment. Terraform's scaler module sets the
//! same variables.

use std::time::Duration;

use renderfleet_core::names::ResourceNames;
use scaling_policy::PolicyConfig;

/// Everything the scaler needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// `RENDERFLEET_ENV`: the environment whose resources are scaled (required).
    pub names: ResourceNames,
    /// The policy: `RENDERFLEET_MIN_WORKERS` (default 0), `RENDERFLEET_MAX_WORKERS` (default 10),
    /// `RENDERFLEET_JOBS_PER_WORKER` (default 1), `RENDERFLEET_IDLE_WINDOW_SECS` (default 60),
    /// `RENDERFLEET_DRY_RUN` (default false).
    pub policy: PolicyConfig,
    /// `RENDERFLEET_DECISION_TTL_HOURS`: how long decisions are kept in the history. Default 72.
    pub decision_ttl: Duration,
}

/// A setting that is missing or malformed, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// Reads an optional variable and parses it, naming the variable on failure.
pub fn var<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| ConfigError {
            var,
            message: format!("cannot parse {v:?}: {e}"),
        }),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parses from any lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = get("RENDERFLEET_ENV").ok_or(ConfigError {
            var: "RENDERFLEET_ENV",
            message: "required: the environment name, e.g. dev".into(),
        })?;
        let names = ResourceNames::for_env(&env).map_err(|message| ConfigError {
            var: "RENDERFLEET_ENV",
            message,
        })?;
        let d = PolicyConfig::default();
        let policy = PolicyConfig {
            min_workers: var(&get, "RENDERFLEET_MIN_WORKERS", d.min_workers)?,
            max_workers: var(&get, "RENDERFLEET_MAX_WORKERS", d.max_workers)?,
            jobs_per_worker: var(&get, "RENDERFLEET_JOBS_PER_WORKER", d.jobs_per_worker)?,
            idle_window_secs: var(&get, "RENDERFLEET_IDLE_WINDOW_SECS", d.idle_window_secs)?,
            dry_run: var(&get, "RENDERFLEET_DRY_RUN", d.dry_run)?,
        };
        policy.validate().map_err(|message| ConfigError {
            var: "RENDERFLEET_MAX_WORKERS",
            message,
        })?;
        let hours: u64 = var(&get, "RENDERFLEET_DECISION_TTL_HOURS", 72)?;
        Ok(Self {
            names,
            policy,
            decision_ttl: Duration::from_secs(hours * 3600),
        })
    }
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
    }

    #[test]
    fn defaults_apply() {
        let c = parse(&[("RENDERFLEET_ENV", "dev")]).unwrap();
        assert_eq!(c.policy.max_workers, 10);
        assert_eq!(c.names.asg, "renderfleet-dev-workers");
    }
}
