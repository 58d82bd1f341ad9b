//! The AWS adapters: the only module that imports `aws_sdk_*`. Each adapter maps SDK types to ours
//! and classifies failures once (see [`classify`]); no SDK type crosses the seam.
//!
//! Every client honours `AWS_ENDPOINT_URL` (the local stack's emulator) through the standard SDK
//! configuration chain, so the emulator and real AWS take one code path.

mod autoscaling;
mod cloudwatch;
mod dynamo;
mod imds;
pub mod provision;
mod s3;
mod sqs;
mod ssm;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use autoscaling::AsgFleet;
pub use cloudwatch::CloudWatchMetrics;
pub use dynamo::{DynamoStore, TableLayout, is_valid_cursor};
pub use imds::ImdsWatch;
pub use s3::S3Media;
pub use sqs::SqsQueue;
pub use ssm::SsmParameters;

use crate::Error;

/// Loads the shared SDK configuration from the environment (region, credentials, endpoint).
///
/// Attempts are bounded (`attempt_timeout`, which must exceed any long poll) and retried with the
/// SDK's standard exponential backoff and jitter, up to `max_attempts` in all. `app` names the
/// binary in every request's user agent (`app/<name>`): CloudTrail shows who called, and the
/// local stack's AWS-rules proxy counts each caller against AWS's quotas.
pub async fn load_config(
    app: &'static str,
    attempt_timeout: Duration,
    max_attempts: u32,
) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .app_name(aws_config::AppName::new(app).expect("a valid app name"))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .load()
        .await
}

/// The defaults every renderfleet binary uses: 30 s per attempt (longer than a 20 s long poll)
/// and 5 attempts.
pub async fn default_config(app: &'static str) -> SdkConfig {
    load_config(app, Duration::from_secs(30), 5).await
}

/// A configuration for an emulator at `endpoint` (the local stack) with fixed dummy credentials,
/// for tools that must not depend on the caller's environment.
pub async fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    let creds = aws_sdk_sqs::config::Credentials::new(
        "testing",
        "testing",
        None,
        None,
        "renderfleet-local",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

/// Error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
    "ScalingActivityInProgress",
    "ResourceContention",
    "TransactionInProgressException",
    "AWS.SimpleQueueService.ServiceUnavailable",
];

/// Error codes that mean a resource we were configured with does not exist.
const CONFIG_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "ValidationError",
];

/// Maps an SDK failure to our [`Error`], once, here.
pub(crate) fn classify<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    if matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) {
        return Error::Transient { op, message };
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let Some(code) = err.code() {
        if code == "ConditionalCheckFailedException" {
            return Error::Conflict(format!("{op}: condition not met"));
        }
        if TRANSIENT_CODES.contains(&code) {
            return Error::Transient { op, message };
        }
        if CONFIG_CODES.contains(&code) {
            return Error::Config(format!("{op}: {message}"));
        }
    }
    match status {
        Some(s) if s >= 500 || s == 429 => Error::Transient { op, message },
        _ => Error::Service { op, message },
    }
}
