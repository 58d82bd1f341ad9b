//! Names of the structured events the binaries log as the `event` field, for readers that count
//! them (the loss audit, the scale test, the end-to-end tests). A reader matches the field, never
//! the message text, so rewording a log line cannot make an audit undercount.

/// An agent claimed a job (`job_id`, `attempt`): the start of an attempt.
pub const JOB_CLAIMED: &str = "job.claimed";
/// An agent recorded a job `succeeded` (`job_id`).
pub const JOB_SUCCEEDED: &str = "job.succeeded";
/// An agent recorded a job `failed` (`job_id`, `code`).
pub const JOB_FAILED: &str = "job.failed";
/// An agent put a running job back to queued for another worker (`job_id`, `why`).
pub const JOB_HANDED_BACK: &str = "job.handed_back";
/// An agent dropped a redelivery of a job it or another worker holds or finished (`job_id`).
pub const DELIVERY_DROPPED: &str = "delivery.dropped";
/// An attempt ended after its job moved on; its result was discarded (`job_id`).
pub const ATTEMPT_DISCARDED: &str = "attempt.discarded";
/// An agent started draining: SIGTERM or a termination notice (`why`).
pub const AGENT_DRAINING: &str = "agent.draining";
/// One scaler tick with every input and the decision (`tick`).
pub const SCALER_TICK: &str = "scaler.tick";
/// One HTTP request the job server answered (`status`, `path`).
pub const HTTP_REQUEST: &str = "http.request";

/// Every event name, for readers that check they know them all.
pub const ALL: [&str; 9] = [
    JOB_CLAIMED,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_HANDED_BACK,
    DELIVERY_DROPPED,
    ATTEMPT_DISCARDED,
    AGENT_DRAINING,
    SCALER_TICK,
    HTTP_REQUEST,
];
