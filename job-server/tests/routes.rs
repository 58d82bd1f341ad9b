//! Route tests: the whole router with in-memory stores, driven with `oneshot` (no socket).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use job_server::{AppState, Config, app};
use renderfleet_core::clock::now_ms;
use renderfleet_core::fakes::{MemoryMedia, MemoryQueue, MemoryStore};
use renderfleet_core::ports::ApiKeys;
use serde_json::{Value, json};
use tower::ServiceExt;

struct World {
    state: AppState,
    store: MemoryStore,
    queue: MemoryQueue,
    key: String,
    other_key: String,
}

async fn world() -> World {
    let store = MemoryStore::new();
    let queue = MemoryQueue::new();
    let key = renderfleet_core::keys::generate("acme", now_ms());
    let other = renderfleet_core::keys::generate("globex", now_ms());
    store.create_key(&key.record).await.unwrap();
    store.create_key(&other.record).await.unwrap();
    let state = AppState {
        jobs: Arc::new(store.clone()),
        queue: Arc::new(queue.clone()),
        keys: Arc::new(store.clone()),
        assets: Arc::new(store.clone()),
        media: Arc::new(MemoryMedia::new()),
        config: Arc::new(Config::for_tests()),
    };
    World {
        state,
        store,
        queue,
        key: key.plaintext,
        other_key: other.plaintext,
    }
}

fn spec() -> Value {
    json!({
        "output": { "width": 1280, "height": 720, "fps": 30 },
        "scenes": [ { "duration": 3.0, "background": { "color": "#0b1d3a" },
                      "texts": [ { "text": "Hello" } ] } ]
    })
}

async fn call(w: &World, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app(w.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(key: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/v1/jobs").header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    b.body(body.into()).unwrap()
}

#[tokio::test]
async fn a_valid_job_is_accepted_stored_and_enqueued() {
    let w = world().await;
    let (status, headers, body) = call(&w, post(Some(&w.key), spec().to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "queued");
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers[header::LOCATION], format!("/v1/jobs/{id}").as_str());
    assert!(headers.contains_key("x-request-id"));
    let jobs = w.store.jobs();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].enqueued);
    assert_eq!(jobs[0].tenant, "acme");
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.queue.sent()[0].job_id.as_str(), id);
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_and_stores_nothing() {
    let w = world().await;
    for key in [
        None,
        Some("nonsense"),
        Some("rfk_0000000000000000_000000000000000000000000000000000000000000000000"),
    ] {
        let (status, headers, body) = call(&w, post(key, spec().to_string())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    assert!(w.store.jobs().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn bad_bodies_get_a_json_error_naming_the_problem_and_store_nothing() {
    let w = world().await;
    let (status, _, body) = call(&w, post(Some(&w.key), "{\"output\": ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed_json");
    assert!(body["error"]["request_id"].is_string());

    let mut missing = spec();
    missing["scenes"][0]
        .as_object_mut()
        .unwrap()
        .remove("duration");
    let (status, _, body) = call(&w, post(Some(&w.key), missing.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "scenes[0]");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duration")
    );

    let mut odd = spec();
    odd["output"]["width"] = json!(1281);
    let (status, _, body) = call(&w, post(Some(&w.key), odd.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "output.width");

    let req = Request::post("/v1/jobs")
        .header(header::AUTHORIZATION, format!("Bearer {}", w.key))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(spec().to_string()))
        .unwrap();
    let (status, _, body) = call(&w, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024));
    let (status, _, body) = call(&w, post(Some(&w.key), huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");

    assert!(w.store.jobs().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_job_is_visible_to_its_tenant_only() {
    let w = world().await;
    let (_, _, body) = call(&w, post(Some(&w.key), spec().to_string())).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let get = |key: &str| {
        Request::get(format!("/v1/jobs/{id}"))
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = call(&w, get(&w.key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["spec"]["scenes"][0]["texts"][0]["text"], "Hello");
    let (status, _, other) = call(&w, get(&w.other_key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = Request::get("/v1/jobs/job_0123456789abcdef0123456789abcdef")
        .header(header::AUTHORIZATION, format!("Bearer {}", w.key))
        .body(Body::empty())
        .unwrap();
    let (status, _, nothing) = call(&w, missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(other["error"]["code"], nothing["error"]["code"]);
    assert_eq!(other["error"]["message"], nothing["error"]["message"]);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let w = world().await;
    let (status, _, body) = call(&w, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _, body) = call(&w, Request::put("/v1/jobs").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let (status, _, _) = call(&w, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
