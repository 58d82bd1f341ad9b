//! The scaler: one [`tick`] observes the queue and the fleet, asks [`scaling_policy::decide`], and
//! sets the Auto Scaling Group's absolute desired capacity.
//!
//! Layout: [`config`] is the binary's settings from the environment, [`tick`] the
//! observe-decide-act step on narrow traits (tested with in-memory fakes), [`event`] the Lambda
//! event glue, [`schedule`] the tick lease and the self-scheduling chain of ticks. The same
//! `run_slot` runs behind `lambda_runtime` and on the local stack's schedule.

pub mod config;
pub mod error;
pub mod event;
pub mod schedule;
mod tick;

pub use config::Config;
pub use error::Error;
pub use schedule::{Ran, run_slot, slot_of};
pub use tick::{
    Deps, HealthSource, LastHealth, ObservationSummary, TickReport, on_lifecycle, tick,
};
