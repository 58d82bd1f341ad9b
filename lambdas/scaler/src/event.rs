//! The Lambda's events: EventBridge's scheduled event runs a tick. Anything else is refused with
//! an error that says what arrived, never a panic.

use serde_json::Value;

/// What an invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// The EventBridge schedule (or a manual invoke with `{"action": "tick"}`).
    Tick,
}

/// A payload the scaler does not handle.
#[derive(Debug, thiserror::Error)]
#[error("unsupported event: {0}")]
pub struct UnsupportedEvent(pub String);

/// Classifies an invocation payload.
pub fn classify(payload: &Value) -> Result<Invocation, UnsupportedEvent> {
    let source = payload.get("source").and_then(Value::as_str);
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    match (source, detail_type) {
        (Some("aws.events"), Some("Scheduled Event")) => Ok(Invocation::Tick),
        _ if payload.get("action").and_then(Value::as_str) == Some("tick") => Ok(Invocation::Tick),
        (Some(s), Some(d)) => Err(UnsupportedEvent(format!("source {s:?}, detail-type {d:?}"))),
        _ => Err(UnsupportedEvent(format!(
            "expected an EventBridge event with source and detail-type, got {}",
            truncate(&payload.to_string(), 200)
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
        assert!(classify(&json!({"source": "aws.s3", "detail-type": "Object Created"})).is_err());
    }
}
