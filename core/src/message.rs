//! The queue message: a pointer to a job, nothing more. The job's spec and state live in the jobs
//! table, so a message can be duplicated, delayed or replayed without changing what gets rendered.

use serde::{Deserialize, Serialize};

use crate::ids::JobId;

/// The jobs queue's visibility timeout in seconds. Agents extend a message's visibility well
/// before this lapses (every third of it) while rendering; Terraform's queue module uses the same.
pub const VISIBILITY_TIMEOUT_SECS: u64 = 60;
/// Attempts (claims counted in the job record) after which a failing job fails for good with
/// `retries_exhausted`. Counted by the job, not by SQS: receives that were not attempts (a
/// duplicate, a delivery deferred while another attempt holds the lease) must not exhaust a job.
pub const MAX_ATTEMPTS: u32 = 5;
/// Deliveries before a message moves to the dead-letter queue: a backstop above
/// [`MAX_ATTEMPTS`]. The job server's sweeper drains the dead-letter queue and sends or fails
/// every job it finds there, so a job never waits forever.
pub const MAX_RECEIVE_COUNT: u32 = 10;
/// A message received this many times without an attempt of its own is replaced by a fresh one
/// (new message, receive count 0) instead of being handed back again.
pub const REFRESH_AT_RECEIVE_COUNT: u32 = MAX_RECEIVE_COUNT - 3;
/// How many times the sweeper sends a job again from the dead-letter queue before it fails it
/// with `dead_lettered`.
pub const MAX_REDRIVES: u32 = 3;
/// SQS's cap on a message's total invisibility after the receive that produced its receipt
/// handle (12 hours); a render must end well inside it.
pub const MAX_TOTAL_VISIBILITY_SECS: u64 = 43_200;

/// Version of the message format.
pub const MESSAGE_VERSION: u8 = 1;

/// Body of a message on the jobs queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub v: u8,
    pub job_id: JobId,
}

impl JobMessage {
    pub fn new(job_id: JobId) -> Self {
        Self {
            v: MESSAGE_VERSION,
            job_id,
        }
    }

    /// The body as JSON, `{"v":1,"job_id":"job_..."}`. Written directly, since an id is a
    /// fixed prefix and hex digits with nothing to escape (a test holds it equal to serde's
    /// output); this runs on every submit.
    pub fn to_body(&self) -> String {
        let mut v = itoa::Buffer::new();
        [
            r#"{"v":"#,
            v.format(self.v),
            r#","job_id":""#,
            self.job_id.as_str(),
            r#""}"#,
        ]
        .concat()
    }

    /// Parses a body; a body of another version or shape is an error naming what is wrong.
    pub fn parse(body: &str) -> Result<Self, String> {
        let m: JobMessage = serde_json::from_str(body).map_err(|e| e.to_string())?;
        if m.v != MESSAGE_VERSION {
            return Err(format!("unsupported message version {}", m.v));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = JobMessage::new(JobId::generate());
        assert_eq!(JobMessage::parse(&m.to_body()).unwrap(), m);
        for v in [0, 1, 42, u8::MAX] {
            let other = JobMessage { v, ..m.clone() };
            assert_eq!(other.to_body(), serde_json::to_string(&other).unwrap());
        }
        assert!(JobMessage::parse("not json").is_err());
        assert!(
            JobMessage::parse(r#"{"v":2,"job_id":"job_0123456789abcdef0123456789abcdef"}"#)
                .is_err()
        );
        assert!(JobMessage::parse(r#"{"v":1,"job_id":"../x"}"#).is_err());
    }
}
