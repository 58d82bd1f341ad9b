//! The one error type of the core crate. Retryability is part of the type: adapters classify AWS
//! failures once, and callers ask [`Error::is_retryable`] instead of matching strings.

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a store, a queue or the fleet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A conditional write found the record in another state (someone else moved it first).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Throttling, a timeout, a 5xx or a dropped connection: the same call may succeed later.
    #[error("{op} failed, transiently: {message}")]
    Transient { op: &'static str, message: String },
    /// A missing queue, table or bucket, or a bad setting: retrying will not help.
    #[error("configuration: {0}")]
    Config(String),
    /// The service refused the call for a reason retrying will not fix.
    #[error("{op} failed: {message}")]
    Service { op: &'static str, message: String },
    /// A stored record or message that does not have the shape we write.
    #[error("corrupt {what}: {message}")]
    Corrupt { what: String, message: String },
}

impl Error {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// A corrupt-record error.
    pub fn corrupt(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            message: message.into(),
        }
    }
}
