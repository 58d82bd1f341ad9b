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
        ready: Arc::new(job_server::AlwaysReady),
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

fn authed(method: &str, uri: &str, key: &str, body: Option<String>) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap()
}

fn with_idem(mut req: Request<Body>, key: &str) -> Request<Body> {
    req.headers_mut()
        .insert("idempotency-key", key.parse().unwrap());
    req
}

#[tokio::test]
async fn an_idempotency_key_makes_one_job_and_refuses_another_body() {
    let w = world().await;
    let first = call(
        &w,
        with_idem(post(Some(&w.key), spec().to_string()), "order-1"),
    )
    .await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    // The same spec written differently is the same request.
    let reformatted = serde_json::to_string_pretty(&spec()).unwrap();
    let again = call(&w, with_idem(post(Some(&w.key), reformatted), "order-1")).await;
    assert_eq!(again.0, StatusCode::ACCEPTED);
    assert_eq!(again.2["id"], first.2["id"]);
    assert_eq!(w.store.jobs().len(), 1);
    assert_eq!(w.queue.sent().len(), 1, "a repeat enqueues nothing");

    let mut other = spec();
    other["output"]["fps"] = json!(25);
    let (status, _, body) = call(
        &w,
        with_idem(post(Some(&w.key), other.to_string()), "order-1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(body["error"]["field"], "Idempotency-Key");

    // Keys are per tenant.
    let (status, _, body) = call(
        &w,
        with_idem(post(Some(&w.other_key), spec().to_string()), "order-1"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(body["id"], first.2["id"]);

    for bad in ["", &"k".repeat(256), "has space"] {
        let mut req = post(Some(&w.key), spec().to_string());
        req.headers_mut()
            .insert("idempotency-key", bad.parse().unwrap());
        let (status, _, body) = call(&w, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(body["error"]["field"], "Idempotency-Key");
    }
    assert_eq!(w.store.jobs().len(), 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_job() {
    let w = world().await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let router = app(w.state.clone());
        let req = with_idem(post(Some(&w.key), spec().to_string()), "burst");
        tasks.push(tokio::spawn(async move {
            router.oneshot(req).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::ACCEPTED);
    }
    assert_eq!(w.store.jobs().len(), 1);
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_batch_reports_per_item_and_enqueues_with_one_call() {
    let w = world().await;
    let mut bad = spec();
    bad["scenes"][0]["duration"] = json!(-1);
    let body = json!({ "jobs": [spec(), bad, spec()] }).to_string();
    let (status, _, out) = call(&w, authed("POST", "/v1/jobs/batch", &w.key, Some(body))).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![202, 422, 202]
    );
    assert_eq!(results[1]["error"]["field"], "jobs[1].scenes[0].duration");
    assert_eq!(results[0]["job"]["state"], "queued");
    assert_eq!(w.store.jobs().len(), 2);
    assert_eq!(w.queue.sent().len(), 2);
    assert_eq!(w.queue.batch_calls(), 1);

    let eleven = json!({ "jobs": vec![spec(); 11] }).to_string();
    let (status, _, out) = call(&w, authed("POST", "/v1/jobs/batch", &w.key, Some(eleven))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(out["error"]["field"], "jobs");
    assert_eq!(w.store.jobs().len(), 2);
}

#[tokio::test]
async fn listing_is_newest_first_paged_filtered_and_per_tenant() {
    let w = world().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (_, _, b) = call(&w, post(Some(&w.key), spec().to_string())).await;
        ids.push(b["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    call(&w, post(Some(&w.other_key), spec().to_string())).await;
    let (status, _, p1) = call(&w, authed("GET", "/v1/jobs?limit=2", &w.key, None)).await;
    assert_eq!(status, StatusCode::OK);
    let page_ids = |p: &Value| {
        p["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(page_ids(&p1), vec![ids[4].clone(), ids[3].clone()]);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, p2) = call(
        &w,
        authed(
            "GET",
            &format!("/v1/jobs?limit=2&cursor={cursor}"),
            &w.key,
            None,
        ),
    )
    .await;
    assert_eq!(page_ids(&p2), vec![ids[2].clone(), ids[1].clone()]);
    let (_, _, p3) = call(
        &w,
        authed(
            "GET",
            &format!(
                "/v1/jobs?limit=2&cursor={}",
                p2["next_cursor"].as_str().unwrap()
            ),
            &w.key,
            None,
        ),
    )
    .await;
    assert_eq!(page_ids(&p3), vec![ids[0].clone()]);
    assert!(p3.get("next_cursor").is_none());

    // Another tenant cannot use the cursor, and sees only its own job.
    let (status, _, err) = call(
        &w,
        authed(
            "GET",
            &format!("/v1/jobs?cursor={cursor}"),
            &w.other_key,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["field"], "cursor");
    let (_, _, theirs) = call(&w, authed("GET", "/v1/jobs", &w.other_key, None)).await;
    assert_eq!(theirs["jobs"].as_array().unwrap().len(), 1);

    let (_, _, running) = call(&w, authed("GET", "/v1/jobs?state=running", &w.key, None)).await;
    assert!(running["jobs"].as_array().unwrap().is_empty());
    let (_, _, queued) = call(
        &w,
        authed("GET", "/v1/jobs?state=queued&limit=100", &w.key, None),
    )
    .await;
    assert_eq!(queued["jobs"].as_array().unwrap().len(), 5);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("state=done", "state"),
        ("cursor=%%%", "cursor"),
    ] {
        let (status, _, err) =
            call(&w, authed("GET", &format!("/v1/jobs?{q}"), &w.key, None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(err["error"]["field"], field, "{q}");
    }
}

#[tokio::test]
async fn cancel_ends_a_queued_job_flags_a_running_one_and_refuses_a_finished_one() {
    use renderfleet_core::job::JobState;
    let w = world().await;
    let (_, _, queued) = call(&w, post(Some(&w.key), spec().to_string())).await;
    let id = queued["id"].as_str().unwrap().to_owned();
    let (status, _, _) = call(
        &w,
        authed("DELETE", &format!("/v1/jobs/{id}"), &w.other_key, None),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant cannot cancel"
    );
    let (status, _, body) = call(
        &w,
        authed("DELETE", &format!("/v1/jobs/{id}"), &w.key, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "cancelled");
    let (status, _, body) = call(
        &w,
        authed("DELETE", &format!("/v1/jobs/{id}"), &w.key, None),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "already_finished");

    let (_, _, b) = call(&w, post(Some(&w.key), spec().to_string())).await;
    let running_id = b["id"].as_str().unwrap().to_owned();
    let mut job = w
        .store
        .jobs()
        .into_iter()
        .find(|j| j.id.as_str() == running_id)
        .unwrap();
    job.state = JobState::Running;
    w.store.put_job(job);
    let (status, _, body) = call(
        &w,
        authed("DELETE", &format!("/v1/jobs/{running_id}"), &w.key, None),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["cancel_requested"], true);
    assert_eq!(body["state"], "running");
}

#[tokio::test]
async fn assets_are_declared_per_tenant_and_jobs_may_use_only_their_own_uploaded_ones() {
    let w = world().await;
    let media = MemoryMedia::new();
    let mut state = w.state.clone();
    state.media = Arc::new(media.clone());
    let w = World { state, ..w };
    let (status, headers, created) = call(
        &w,
        authed(
            "POST",
            "/v1/assets",
            &w.key,
            Some(json!({"content_type": "image/png", "size_bytes": 1000}).to_string()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        created["upload_url"]
            .as_str()
            .unwrap()
            .contains(&format!("assets/acme/{id}"))
    );
    assert_eq!(
        headers[header::LOCATION],
        format!("/v1/assets/{id}").as_str()
    );

    for (body, field) in [
        (
            json!({"content_type": "text/html", "size_bytes": 10}),
            "content_type",
        ),
        (
            json!({"content_type": "image/png", "size_bytes": 0}),
            "size_bytes",
        ),
        (
            json!({"content_type": "image/png", "size_bytes": 26 * 1024 * 1024}),
            "size_bytes",
        ),
        (
            json!({"content_type": "image/png", "size_bytes": 10, "acl": "public"}),
            "acl",
        ),
    ] {
        let (status, _, err) = call(
            &w,
            authed("POST", "/v1/assets", &w.key, Some(body.to_string())),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(err["error"]["field"], field, "{body}");
    }

    let (_, _, view) = call(&w, authed("GET", &format!("/v1/assets/{id}"), &w.key, None)).await;
    assert_eq!(view["uploaded"], false);
    let (status, _, _) = call(
        &w,
        authed("GET", &format!("/v1/assets/{id}"), &w.other_key, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut with_image = spec();
    with_image["scenes"][0]["background"] = json!({ "image": id });
    let (status, _, err) = call(&w, post(Some(&w.key), with_image.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "asset_not_uploaded");
    assert_eq!(err["error"]["field"], "scenes[0].background.image");

    media.insert(&format!("assets/acme/{id}"), vec![0; 1000], "image/png");
    let (status, _, body) = call(&w, post(Some(&w.key), with_image.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (status, _, err) = call(&w, post(Some(&w.other_key), with_image.to_string())).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another tenant's asset is unknown to it"
    );
    assert_eq!(err["error"]["code"], "unknown_asset");

    let mut as_video = spec();
    as_video["scenes"][0]["background"] = json!({ "video": id });
    let (status, _, err) = call(&w, post(Some(&w.key), as_video.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "wrong_asset_type");
}

#[tokio::test]
async fn hostile_text_is_kept_byte_for_byte_or_refused() {
    let w = world().await;
    let hostile = [
        "it's \"quoted\"",
        "back\\slash \\\\ \\n",
        "%{localtime} %{pts:hms} %{eif:1:d}",
        "line one\nline two",
        "';drawtext=textfile=/etc/passwd:x=0[v];",
        "[0:v] , ; : = ' \"",
        "עברית مرحبا 🎬🔥👩‍👩‍👧",
    ];
    for text in hostile {
        let mut s = spec();
        s["scenes"][0]["texts"][0]["text"] = json!(text);
        let (status, _, b) = call(&w, post(Some(&w.key), s.to_string())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text:?}");
        let (_, _, got) = call(
            &w,
            authed(
                "GET",
                &format!("/v1/jobs/{}", b["id"].as_str().unwrap()),
                &w.key,
                None,
            ),
        )
        .await;
        assert_eq!(got["spec"]["scenes"][0]["texts"][0]["text"], text);
    }
    let mut nul = spec();
    nul["scenes"][0]["texts"][0]["text"] = json!("a\u{0}b");
    let (status, _, err) = call(&w, post(Some(&w.key), nul.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "scenes[0].texts[0].text");
    let mut emoji = spec();
    emoji["scenes"][0]["texts"][0]["text"] = json!("🎬".repeat(2_500_000));
    let (status, _, _) = call(&w, post(Some(&w.key), emoji.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(w.store.jobs().len(), hostile.len());
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let w = world().await;
    let (status, _, doc) = call(
        &w,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/batch", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}", "delete"),
        ("/v1/assets", "post"),
        ("/v1/assets/{id}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "JobSpec",
        "JobView",
        "ErrorResponse",
        "BatchRequest",
        "JobList",
        "AssetCreated",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn readiness_reports_a_failing_dependency_as_503() {
    struct Down;
    #[async_trait::async_trait]
    impl job_server::Readiness for Down {
        async fn check(&self) -> Result<(), String> {
            Err("the jobs table".into())
        }
    }
    let mut w = world().await;
    let (status, _, _) = call(&w, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    w.state.ready = Arc::new(Down);
    let (status, _, body) = call(&w, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jobs table")
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_503_with_a_request_id() {
    struct Hung;
    #[async_trait::async_trait]
    impl job_server::Readiness for Hung {
        async fn check(&self) -> Result<(), String> {
            std::future::pending().await
        }
    }
    let mut w = world().await;
    w.state.ready = Arc::new(Hung);
    let mut config = Config::for_tests();
    config.request_timeout = std::time::Duration::from_secs(1);
    w.state.config = Arc::new(config);
    let asked = std::time::Instant::now();
    let (status, headers, body) =
        call(&w, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    let took = asked.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(
        body["error"]["request_id"].as_str(),
        headers.get("x-request-id").and_then(|v| v.to_str().ok())
    );
    assert!(
        took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(3),
        "answered after {took:?}"
    );
    w.state.ready = Arc::new(job_server::AlwaysReady);
    let (status, _, _) = call(&w, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn internal_errors_answer_generically_with_a_request_id() {
    use renderfleet_core::ids::JobId;
    use renderfleet_core::job::Job;
    use renderfleet_core::ports::*;
    struct Broken;
    #[async_trait::async_trait]
    impl JobStore for Broken {
        async fn create(
            &self,
            _: &Job,
            _: Option<&Idempotency>,
        ) -> renderfleet_core::Result<Created> {
            Err(renderfleet_core::Error::Service {
                op: "PutItem",
                message: "AccessDenied: arn:aws:iam::123:role/secret".into(),
            })
        }
        async fn get(&self, _: &JobId) -> renderfleet_core::Result<Option<Job>> {
            Err(renderfleet_core::Error::Transient {
                op: "GetItem",
                message: "throttled".into(),
            })
        }
        async fn list(&self, _: &str, _: &ListQuery) -> renderfleet_core::Result<JobPage> {
            unimplemented!()
        }
        async fn mark_enqueued(&self, _: &JobId, _: i64) -> renderfleet_core::Result<()> {
            Ok(())
        }
        async fn redrive(&self, _: &JobId, _: i64) -> renderfleet_core::Result<bool> {
            Ok(false)
        }
        async fn cancel(&self, _: &JobId, _: i64) -> renderfleet_core::Result<CancelOutcome> {
            unimplemented!()
        }
    }
    let mut w = world().await;
    w.state.jobs = Arc::new(Broken);
    let (status, headers, body) = call(&w, post(Some(&w.key), spec().to_string())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal");
    assert!(
        !body.to_string().contains("arn:aws"),
        "internals never leak: {body}"
    );
    assert_eq!(
        body["error"]["request_id"].as_str(),
        headers["x-request-id"].to_str().ok()
    );
    let (status, headers, body) = call(
        &w,
        authed(
            "GET",
            "/v1/jobs/job_0123456789abcdef0123456789abcdef",
            &w.key,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let w = world().await;
    let (status, _, _) = call(&w, post(Some(&w.key), spec().to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (key_id, _) = renderfleet_core::keys::parse(&w.key).unwrap();
    w.store.revoke_key(key_id, now_ms()).await.unwrap();
    let (status, _, _) = call(&w, post(Some(&w.key), spec().to_string())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
