//! The scaler: one [`tick`] observes the queue and the fleet, asks [`scaling_policy::decide`], and
//! sets the Auto Scaling Group's absolute desired capacity.
//!
//! Layout: [`config`] is the binary's settings from the environment, [`tick`] the
//! observe-decide-act step on narrow traits (tested with in-memory fakes), [`event`] the Lambda
//! event glue. The same `tick` runs behind `lambda_runtime` and on the local stack's schedule.

pub mod config;
pub mod event;
mod tick;

pub use config::Config;
pub use tick::{Deps, TickReport, on_lifecycle, tick};
