//! The baseline of `scripts/bench-api`: the smallest axum server, answering a POST with a fixed
//! JSON body. Usage: hello_server ADDR.

use axum::Router;
use axum::routing::post;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route(
        "/v1/jobs",
        post(|| async { axum::Json(serde_json::json!({ "state": "queued" })) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ready");
    axum::serve(listener, app).await?;
    Ok(())
}
