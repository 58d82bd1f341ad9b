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

pub use renderfleet_core::edge::ConfigError;
use renderfleet_core::edge::{Settings, env_var};

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env_var)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Settings::new(&get);
        Ok(Self {
            names: env.names()?,
            listen: env.parse_or("RENDERFLEET_LISTEN", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            request_timeout: env.secs_or("RENDERFLEET_REQUEST_TIMEOUT_SECS", 10)?,
            drain: env.secs_or("RENDERFLEET_DRAIN_SECS", 20)?,
            output_url_ttl: env.secs_or("RENDERFLEET_OUTPUT_URL_TTL_SECS", 3600)?,
            sweep: crate::sweeper::SweepConfig {
                every: env.fractional_secs_or("RENDERFLEET_SWEEP_SECS", 30.0)?,
                unsent_after: env.fractional_secs_or("RENDERFLEET_SWEEP_AFTER_SECS", 60.0)?,
                lapsed_after: env.fractional_secs_or("RENDERFLEET_LAPSED_AFTER_SECS", 120.0)?,
                requeue_after: env.fractional_secs_or("RENDERFLEET_REQUEUE_AFTER_SECS", 1800.0)?,
            },
        })
    }

    /// Settings for tests: environment `test`, everything else default.
    pub fn for_tests() -> Self {
        Self::from_lookup(|k| (k == "RENDERFLEET_ENV").then(|| "test".to_owned())).expect("valid")
    }
}
