//! renderfleet-core: what every renderfleet binary agrees on.
//!
//! Layout: [`spec`] is the job spec v1 and its validation, [`job`] the job record and its states,
//! [`message`] the queue message, [`names`] the per-environment resource names, [`estimate`] the
//! expected render work of a spec. [`ports`] holds the narrow traits the binaries depend on; the
//! [`aws`] module is the only place that imports `aws_sdk_*` and implements them. With the `fakes`
//! feature, [`fakes`] holds in-memory implementations for orchestration tests and benchmarks.

pub mod api;
pub mod clock;
pub mod edge;
pub mod error;
pub mod estimate;
pub mod events;
pub mod ids;
pub mod job;
pub mod keys;
pub mod message;
pub mod names;
pub mod ports;
pub mod spec;

pub mod aws;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
#[cfg(any(test, feature = "fakes"))]
pub mod testkit;

pub use error::{Error, Result};

/// Test hook: `RENDERFLEET_FAILPOINT=<name>` makes the process abort at that point, to prove
/// what survives a crash there. Unset in production.
pub fn failpoint(name: &str) {
    static FAILPOINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let armed = FAILPOINT.get_or_init(|| std::env::var("RENDERFLEET_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        tracing::error!(failpoint = name, "failpoint reached; aborting");
        std::process::abort();
    }
}
