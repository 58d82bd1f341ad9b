//! The job server's settings, parsed once from the environment. Terraform's job_server module
//! sets the same variables.

use std::net::SocketAddr;
use std::time::Duration;

use renderfleet_core::names::ResourceNames;

#[derive(Clone, Debug)]
pub struct Config {
    /// `RENDERFLEET_ENV` (required): the environment whose resources are used.
    pub names: ResourceNames,
    /// `RENDERFLEET_LISTEN`: address to listen on. Default `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// `RENDERFLEET_REQUEST_TIMEOUT_SECS`: per-request limit. Default 10.
    pub request_timeout: Duration,
    /// `RENDERFLEET_DRAIN_SECS`: how long SIGTERM waits for requests in flight. Default 20.
    pub drain: Duration,
    /// `RENDERFLEET_OUTPUT_URL_TTL_SECS`: lifetime of presigned output links. Default 3600.
    pub output_url_ttl: Duration,
    /// The sweeper's timing (`RENDERFLEET_SWEEP_SECS`, `RENDERFLEET_SWEEP_AFTER_SECS`,
    /// `RENDERFLEET_LAPSED_AFTER_SECS`, `RENDERFLEET_REQUEUE_AFTER_SECS`).
    pub sweep: crate::sweeper::SweepConfig,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let names = ResourceNames::from_lookup(&get)
            .map_err(|(var, message)| ConfigError { var, message })?;
        fn parse<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            var: &'static str,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match get(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|e| ConfigError {
                    var,
                    message: format!("cannot parse {v:?}: {e}"),
                }),
            }
        }
        Ok(Self {
            names,
            listen: parse(
                &get,
                "RENDERFLEET_LISTEN",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            request_timeout: Duration::from_secs(parse(
                &get,
                "RENDERFLEET_REQUEST_TIMEOUT_SECS",
                10,
            )?),
            drain: Duration::from_secs(parse(&get, "RENDERFLEET_DRAIN_SECS", 20)?),
            output_url_ttl: Duration::from_secs(parse(
                &get,
                "RENDERFLEET_OUTPUT_URL_TTL_SECS",
                3600,
            )?),
            sweep: crate::sweeper::SweepConfig {
                every: Duration::from_secs_f64(parse(&get, "RENDERFLEET_SWEEP_SECS", 30.0)?),
                unsent_after: Duration::from_secs_f64(parse(
                    &get,
                    "RENDERFLEET_SWEEP_AFTER_SECS",
                    60.0,
                )?),
                lapsed_after: Duration::from_secs_f64(parse(
                    &get,
                    "RENDERFLEET_LAPSED_AFTER_SECS",
                    120.0,
                )?),
                requeue_after: Duration::from_secs_f64(parse(
                    &get,
                    "RENDERFLEET_REQUEUE_AFTER_SECS",
                    1800.0,
                )?),
            },
        })
    }

    /// Settings for tests: environment `test`, everything else default.
    pub fn for_tests() -> Self {
        Self::from_lookup(|k| (k == "RENDERFLEET_ENV").then(|| "test".to_owned())).expect("valid")
    }
}
