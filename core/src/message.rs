//! The queue message: a pointer to a job, nothing more. The job's spec and state live in the jobs
//! table, so a message can be duplicated, delayed or replayed without changing what gets rendered.

use serde::{Deserialize, Serialize};

use crate::ids::JobId;

/// The jobs queue's visibility timeout in seconds. Agents extend a message's visibility well
/// before this lapses (every third of it) while rendering; Terraform's queue module uses the same.
pub const VISIBILITY_TIMEOUT_SECS: u64 = 60;
/// Deliveries before a message moves to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

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

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a job message always serializes")
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
        assert!(JobMessage::parse("not json").is_err());
        assert!(
            JobMessage::parse(r#"{"v":2,"job_id":"job_0123456789abcdef0123456789abcdef"}"#)
                .is_err()
        );
        assert!(JobMessage::parse(r#"{"v":1,"job_id":"../x"}"#).is_err());
    }
}
