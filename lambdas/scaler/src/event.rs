//! The Lambda's events: EventBridge's one-minute schedule and the tick queue's messages (through
//! an SQS event source mapping) run scheduled ticks (see [`crate::schedule`]); an Auto Scaling
//! lifecycle action (an instance launching or terminating) runs one extra tick at once. Anything
//! else is refused with an error that says what arrived, never a panic.

use serde_json::Value;

/// What an invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// The EventBridge schedule (or a manual invoke with `{"action": "tick"}`): the current slot.
    Tick,
    /// Messages of the tick queue: each the slot it asks for (`None`, an extra tick).
    Slots(Vec<Option<u64>>),
    /// `EC2 Instance-launch Lifecycle Action` or `EC2 Instance-terminate Lifecycle Action`.
    Lifecycle(LifecycleEvent),
}

/// An instance launching or terminating, paused by a lifecycle hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// `autoscaling:EC2_INSTANCE_LAUNCHING` or `autoscaling:EC2_INSTANCE_TERMINATING`.
    pub transition: String,
    pub instance: String,
    /// The hook that holds the instance, when the event names it.
    pub hook: Option<String>,
    /// Where the instance goes: `AutoScalingGroup` (into service) or `WarmPool` (parked).
    pub destination: Option<String>,
}

impl LifecycleEvent {
    pub fn launching(&self) -> bool {
        self.transition.ends_with("LAUNCHING")
    }

    /// Launching into the warm pool: the instance is being prepared to park, not to serve, so
    /// its agent is not started (it completes the hook itself after its self-check).
    pub fn into_warm_pool(&self) -> bool {
        self.destination.as_deref() == Some("WarmPool")
    }
}

/// A payload the scaler does not handle.
#[derive(Debug, thiserror::Error)]
#[error("unsupported event: {0}")]
pub struct UnsupportedEvent(pub String);

/// Classifies an invocation payload.
pub fn classify(payload: &Value) -> Result<Invocation, UnsupportedEvent> {
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        return records
            .iter()
            .map(slot_of_record)
            .collect::<Result<_, _>>()
            .map(Invocation::Slots);
    }
    let source = payload.get("source").and_then(Value::as_str);
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    match (source, detail_type) {
        (Some("aws.events"), Some("Scheduled Event")) => Ok(Invocation::Tick),
        (Some("aws.autoscaling"), Some(d)) if d.ends_with("Lifecycle Action") => {
            let detail = payload.get("detail");
            let field = |k: &str| {
                detail
                    .and_then(|d| d.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| UnsupportedEvent(format!("{d} without detail.{k}")))
            };
            Ok(Invocation::Lifecycle(LifecycleEvent {
                transition: field("LifecycleTransition")?,
                instance: field("EC2InstanceId")?,
                hook: field("LifecycleHookName").ok(),
                destination: field("Destination").ok(),
            }))
        }
        _ if payload.get("action").and_then(Value::as_str) == Some("tick") => Ok(Invocation::Tick),
        (Some(s), Some(d)) => Err(UnsupportedEvent(format!("source {s:?}, detail-type {d:?}"))),
        _ => Err(UnsupportedEvent(format!(
            "expected an EventBridge event with source and detail-type, got {}",
            truncate(&payload.to_string(), 200)
        ))),
    }
}

/// The slot a tick-queue record asks for: its body is `{"slot": n}` or `{"slot": null}`.
fn slot_of_record(record: &Value) -> Result<Option<u64>, UnsupportedEvent> {
    let source = record.get("eventSource").and_then(Value::as_str);
    if source != Some("aws:sqs") {
        return Err(UnsupportedEvent(format!(
            "a record from {source:?}, expected aws:sqs (the tick queue)"
        )));
    }
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parsed: Value = serde_json::from_str(body)
        .map_err(|e| UnsupportedEvent(format!("tick message {:?}: {e}", truncate(body, 80))))?;
    match parsed.get("slot") {
        Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            UnsupportedEvent(format!("tick message slot {v} is not a whole number"))
        }),
        None => Err(UnsupportedEvent(format!(
            "tick message without a slot: {}",
            truncate(body, 80)
        ))),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_events_tick_and_garbage_is_refused() {
        let scheduled = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/renderfleet-dev-scaler"],
            "detail": {}
        });
        assert_eq!(classify(&scheduled).unwrap(), Invocation::Tick);
        assert!(classify(&json!("hello")).is_err());
        let launch = json!({
            "version": "0", "id": "468fecc6-e8e4-4d4f-8cb0-9a2c4a4d2eab",
            "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
            "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
            "resources": [],
            "detail": {
                "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                "AutoScalingGroupName": "renderfleet-dev-workers",
                "LifecycleHookName": "renderfleet-dev-launch",
                "EC2InstanceId": "i-0123456789abcdef0",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"
            }
        });
        assert_eq!(
            classify(&launch).unwrap(),
            Invocation::Lifecycle(LifecycleEvent {
                transition: "autoscaling:EC2_INSTANCE_LAUNCHING".into(),
                instance: "i-0123456789abcdef0".into(),
                hook: Some("renderfleet-dev-launch".into()),
                destination: None,
            })
        );
        let mut warm = launch.clone();
        warm["detail"]["Destination"] = json!("WarmPool");
        match classify(&warm).unwrap() {
            Invocation::Lifecycle(ev) => assert!(ev.into_warm_pool() && ev.launching()),
            other => panic!("{other:?}"),
        }
        let mut broken = launch.clone();
        broken["detail"] = json!({});
        assert!(
            classify(&broken)
                .unwrap_err()
                .to_string()
                .contains("without detail.")
        );
        assert!(classify(&json!({"source": "aws.s3", "detail-type": "Object Created"})).is_err());
    }

    #[test]
    fn tick_queue_records_carry_their_slot() {
        let record = |body: &str| json!({"messageId": "m", "eventSource": "aws:sqs", "body": body});
        let ev = json!({"Records": [record(r#"{"slot": 17}"#), record(r#"{"slot": null}"#)]});
        assert_eq!(
            classify(&ev).unwrap(),
            Invocation::Slots(vec![Some(17), None])
        );
        let bad = json!({"Records": [record("hello")]});
        assert!(
            classify(&bad)
                .unwrap_err()
                .to_string()
                .contains("tick message")
        );
        let bad = json!({"Records": [record(r#"{"slot": -1}"#)]});
        assert!(classify(&bad).is_err());
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(classify(&s3).unwrap_err().to_string().contains("aws:s3"));
    }
}
