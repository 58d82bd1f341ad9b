//! The scaler library's one error type. The Lambda edge asks [`Error::is_retryable`]: a
//! retryable failure is returned to Lambda so it runs the invocation again; any other is
//! logged and reported without a retry that could not help.

use crate::event::UnsupportedEvent;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A store, the queue or the fleet failed.
    #[error(transparent)]
    Aws(#[from] renderfleet_core::Error),
    /// The tick's record would not serialize (a bug, never the input's fault).
    #[error("serializing the {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    /// An invocation the scaler does not handle.
    #[error(transparent)]
    Event(#[from] UnsupportedEvent),
}

impl Error {
    /// Whether the same invocation may succeed if run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Aws(e) if e.is_retryable())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
