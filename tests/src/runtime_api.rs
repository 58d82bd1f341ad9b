//! A Lambda Runtime API on 127.0.0.1, enough to run a function's `bootstrap` as the Lambda
//! service does: the function long-polls `GET /2018-06-01/runtime/invocation/next`, gets an
//! event with its request id and deadline, and posts its response or error. Used to test and
//! benchmark the scaler's Lambda handler as a real process.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Inner {
    pending: VecDeque<(String, Value, Duration)>,
    done: Vec<(String, Outcome)>,
    init_error: Option<Value>,
    first_poll: Option<Instant>,
    seq: u64,
}

/// The emulator. Cloning shares it.
#[derive(Clone)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    queued: Arc<Notify>,
    finished: Arc<Notify>,
    pub addr: std::net::SocketAddr,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("addr", &self.addr)
            .finish()
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RuntimeApi {
    /// Serves on a free port of 127.0.0.1 until the process ends.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = Self {
            inner: Arc::default(),
            queued: Arc::default(),
            finished: Arc::default(),
            addr: listener.local_addr()?,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(api)
    }

    /// The environment the Lambda service gives a function, pointing at this emulator.
    pub fn function_env(&self, name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/22/[$LATEST]0".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// When the function first asked for an event (its init is over).
    pub fn first_poll(&self) -> Option<Instant> {
        lock(&self.inner).first_poll
    }

    /// An init error the function reported, if any.
    pub fn init_error(&self) -> Option<Value> {
        lock(&self.inner).init_error.clone()
    }

    /// Invokes the function with `event` and a deadline `timeout` from now, and waits for the
    /// outcome up to `timeout` plus a margin.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> anyhow::Result<Outcome> {
        let id = {
            let mut inner = lock(&self.inner);
            inner.seq += 1;
            let id = format!("00000000-0000-4000-8000-{:012}", inner.seq);
            inner.pending.push_back((id.clone(), event, timeout));
            id
        };
        self.queued.notify_one();
        let wait = async {
            loop {
                let notified = self.finished.notified();
                if let Some((_, o)) = lock(&self.inner).done.iter().find(|(i, _)| *i == id) {
                    return o.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout + Duration::from_secs(10), wait)
            .await
            .map_err(|_| anyhow::anyhow!("invocation {id} got no response"))
    }
}

async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    loop {
        let notified = api.queued.notified();
        {
            let mut inner = lock(&api.inner);
            inner.first_poll.get_or_insert_with(Instant::now);
            if let Some((id, event, timeout)) = inner.pending.pop_front() {
                let deadline = SystemTime::now() + timeout;
                let ms = deadline
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                let mut h = HeaderMap::new();
                let put = |h: &mut HeaderMap, k: &'static str, v: String| {
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        h.insert(k, v);
                    }
                };
                put(&mut h, "lambda-runtime-aws-request-id", id);
                put(&mut h, "lambda-runtime-deadline-ms", ms.to_string());
                put(
                    &mut h,
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:renderfleet-scaler".into(),
                );
                put(
                    &mut h,
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".into(),
                );
                return (StatusCode::OK, h, event.to_string());
            }
        }
        notified.await;
    }
}

async fn finish(api: &RuntimeApi, id: String, outcome: Outcome) -> StatusCode {
    lock(&api.inner).done.push((id, outcome));
    api.finished.notify_waiters();
    StatusCode::ACCEPTED
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    finish(&api, id, Outcome::Response(parse(&body))).await
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: String) -> StatusCode {
    finish(&api, id, Outcome::Error(parse(&body))).await
}

async fn init_error(State(api): State<RuntimeApi>, body: String) -> StatusCode {
    lock(&api.inner).init_error = Some(parse(&body));
    StatusCode::ACCEPTED
}

/// An EventBridge event for an Auto Scaling lifecycle action, as AWS delivers it.
pub fn lifecycle_event(asg: &str, instance: &str, launching: bool) -> Value {
    let (detail_type, transition, hook) = if launching {
        (
            "EC2 Instance-launch Lifecycle Action",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            "launch",
        )
    } else {
        (
            "EC2 Instance-terminate Lifecycle Action",
            "autoscaling:EC2_INSTANCE_TERMINATING",
            "terminate",
        )
    };
    serde_json::json!({
        "version": "0", "id": "468fecc6-e8e4-4d4f-8cb0-9a2c4a4d2eab",
        "detail-type": detail_type, "source": "aws.autoscaling",
        "account": "123456789012", "time": "2026-11-22T10:00:05Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
            "AutoScalingGroupName": asg,
            "LifecycleHookName": format!("{asg}-{hook}"),
            "EC2InstanceId": instance,
            "LifecycleTransition": transition
        }
    })
}
