//! The scaler's schedule without a long-running invocation.
//!
//! Time is cut into slots of `tick_secs`. A scheduled tick is for one slot: it takes the tick
//! lease (one tick at a time, each slot once), ticks, gives the lease back and asks the tick
//! queue for the next slot, delayed to that slot's start. The chain keeps itself going at the
//! policy's tick rate; EventBridge's one-minute schedule enters the same chain (a duplicate of a
//! slot that already ran is dropped), so a lost message costs at most a minute of ticks. A
//! lifecycle event asks for an extra tick outside the slots: it waits for no slot, and a tick in
//! progress makes it unnecessary.

use std::time::Duration;

use renderfleet_core::clock::EpochMillis;
use renderfleet_core::ports::LeaseOutcome;

use crate::Config;
use crate::tick::{Deps, TickReport, tick};

/// The longest delay SQS allows on a message.
const MAX_DELAY_MS: EpochMillis = 900_000;

/// What a request for a tick came to.
#[derive(Debug)]
pub enum Ran {
    Ticked(Box<TickReport>),
    /// A tick of this slot (or a later one) already ran.
    Duplicate,
    /// Another tick holds the lease; a scheduled slot was asked for again once it ends.
    Busy,
}

/// The slot that `at` falls in.
pub fn slot_of(cfg: &Config, at: EpochMillis) -> u64 {
    (at.max(0) / tick_ms(cfg)) as u64
}

fn tick_ms(cfg: &Config) -> EpochMillis {
    (cfg.policy.tick_secs.max(1.0) * 1000.0).round() as EpochMillis
}

/// Runs the tick of `slot` (a scheduled tick; a slot already past counts as the current one), or
/// an extra tick (`None`), as `holder`, reading the time from `clock`.
pub async fn run_slot(
    deps: &Deps,
    cfg: &Config,
    slot: Option<u64>,
    holder: &str,
    clock: &(dyn Fn() -> EpochMillis + Sync),
) -> crate::error::Result<Ran> {
    let now = clock();
    let slot = slot.map(|s| s.max(slot_of(cfg, now)));
    let until = now + cfg.tick_lease.as_millis() as EpochMillis;
    match deps.lease.acquire(holder, slot, now, until).await? {
        LeaseOutcome::SlotDone => {
            tracing::debug!(slot, "slot already ticked; dropped");
            return Ok(Ran::Duplicate);
        }
        LeaseOutcome::Busy { until } => {
            if let Some(s) = slot {
                // Still this slot's turn once the holder is done (or its lease lapses).
                let delay = (until - now).clamp(1_000, tick_ms(cfg).max(1_000));
                schedule(deps, s, delay).await;
            }
            return Ok(Ran::Busy);
        }
        LeaseOutcome::Acquired => {}
    }
    let result = tick(deps, cfg, now).await;
    if let Err(e) = deps.lease.release(holder).await {
        tracing::warn!(error = %e, "cannot release the tick lease; it lapses by itself");
    }
    if let Some(s) = slot {
        let next_at = (s as EpochMillis + 1) * tick_ms(cfg);
        schedule(deps, s + 1, next_at - clock()).await;
    }
    result.map(|r| Ran::Ticked(Box::new(r)))
}

/// Asks for the tick of `slot` after `delay_ms`, when something keeps a tick queue. A failure is
/// only logged: the one-minute schedule restarts the chain.
async fn schedule(deps: &Deps, slot: u64, delay_ms: EpochMillis) {
    let Some(next) = &deps.next else { return };
    let delay = Duration::from_millis(delay_ms.clamp(0, MAX_DELAY_MS) as u64);
    if let Err(e) = next.schedule(Some(slot), delay).await {
        tracing::warn!(slot, error = %e, "cannot schedule the next tick; the minute schedule restarts the chain");
    }
}
