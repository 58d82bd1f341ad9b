//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers and the wire types.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{assets, health, jobs};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "renderfleet", description = "Submit, follow and cancel video render jobs; upload their assets."),
    paths(
        jobs::submit, jobs::batch, jobs::get_job, jobs::list, jobs::cancel,
        assets::create, assets::read,
        health::healthz, health::readyz, openapi_json,
    ),
    components(schemas(
        renderfleet_core::spec::JobSpec,
        renderfleet_core::api::JobView,
        renderfleet_core::api::ErrorResponse,
    )),
    modifiers(&BearerAuth),
    tags((name = "jobs"), (name = "assets"), (name = "health")),
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This document", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}
