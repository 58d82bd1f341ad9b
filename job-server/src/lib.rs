//! job-server: renderfleet's REST API.
//!
//! Layout: [`config`] parses the environment once; [`app`] builds the router from an [`AppState`]
//! of narrow traits (DynamoDB, SQS and S3 in production, in-memory fakes in tests); [`error`] is
//! the one error type every handler returns and the JSON body every error has; [`auth`] resolves a
//! bearer key to its tenant; [`submit`] accepts jobs (validate, check assets, store, enqueue)
//! without HTTP; `routes` holds the handlers per resource.

pub mod auth;
pub mod config;
pub mod context;
pub mod error;
mod routes;
pub mod submit;
pub mod sweeper;
mod views;

pub use routes::openapi::document as openapi_document;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;
use renderfleet_core::ports::{ApiKeys, AssetStore, JobQueue, JobStore, MediaLinks};
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};

pub use config::Config;

/// Whether the service's dependencies answer (for `/readyz`).
#[async_trait::async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` names the dependency that does not answer.
    async fn check(&self) -> Result<(), String>;
}

/// Always ready: for tests on in-memory stores.
#[derive(Debug)]
pub struct AlwaysReady;

#[async_trait::async_trait]
impl Readiness for AlwaysReady {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What the handlers talk to.
#[derive(Clone)]
pub struct AppState {
    pub ready: Arc<dyn Readiness>,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub keys: Arc<dyn ApiKeys>,
    pub assets: Arc<dyn AssetStore>,
    pub media: Arc<dyn MediaLinks>,
    pub config: Arc<Config>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The state as the router holds it. Axum clones the state for every request (and the boxed route
/// that holds it): one shared pointer costs one reference count, where the seven of `AppState`
/// would cost seven.
pub(crate) type Shared = Arc<AppState>;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as one service: see [`app`].
pub type App = context::RequestContext<CatchPanic<Router, error::PanicResponse>>;

/// The whole API: the router, inside the layers every request passes through (request id,
/// deadline, tracing span and log line, uniform JSON error bodies; panic guard). The layers wrap
/// the router once, not each route, so a request clones no layered route. Serve it with
/// `axum::serve(listener, app(state).into_make_service())`.
pub fn app(state: AppState) -> App {
    let limit = state.config.request_timeout;
    let router = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/openapi.json", get(routes::openapi::openapi_json))
        .merge(routes::jobs::router())
        .merge(routes::assets::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(Arc::new(state));
    ServiceBuilder::new()
        .layer(context::RequestContextLayer { limit })
        .layer(CatchPanicLayer::custom(error::PanicResponse))
        .service(router)
}

/// How long a shutting-down server waits for requests in flight (ECS sends SIGKILL 30 s after
/// SIGTERM).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(20);
