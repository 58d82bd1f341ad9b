//! Liveness: answers without touching any dependency.

pub async fn healthz() -> &'static str {
    "ok"
}
