//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers and the wire types.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
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

/// The document, built once: the derived schemas with the validation rules of
/// `renderfleet_core::spec` written in, so that a client generated from it (or a fuzzer) knows
/// the same limits the server enforces.
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        with_limits(&mut doc);
        doc.to_string()
    })
}

const COLOR: &str = "^#[0-9a-fA-F]{6}$";

/// Writes the spec's limits (from the constants the validation uses) into the schemas.
fn with_limits(doc: &mut Value) {
    with_query_limits(doc);
    let Some(schemas) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    for (at, rule) in schema_rules() {
        if let (Some(Value::Object(field)), Value::Object(rule)) = (schemas.pointer_mut(at), rule) {
            field.extend(rule);
        }
    }
    // A background is exactly one of three single-key objects.
    if let Some(Value::Array(variants)) = schemas.pointer_mut("/Background/oneOf") {
        for v in variants.iter_mut().filter_map(Value::as_object_mut) {
            v.insert("additionalProperties".into(), Value::Bool(false));
        }
        if let Some(Value::Object(color)) = variants
            .iter_mut()
            .find_map(|v| v.pointer_mut("/properties/color"))
        {
            color.insert("pattern".into(), json!(COLOR));
        }
    }
}

/// The limits of the job list's query parameters.
fn with_query_limits(doc: &mut Value) {
    use renderfleet_core::job::JobState;
    let Some(Value::Array(params)) = doc.pointer_mut("/paths/~1v1~1jobs/get/parameters") else {
        return;
    };
    for p in params.iter_mut() {
        let rule = match p.get("name").and_then(Value::as_str) {
            Some("limit") => json!({ "minimum": 1, "maximum": 100 }),
            Some("state") => json!({ "enum": JobState::ALL.map(JobState::as_str) }),
            _ => continue,
        };
        if let (Some(Value::Object(schema)), Value::Object(rule)) = (p.get_mut("schema"), rule) {
            schema.extend(rule);
        }
    }
}

/// Each schema field's limits, by its JSON pointer under `/components/schemas`.
fn schema_rules() -> Vec<(&'static str, Value)> {
    use renderfleet_core::api::{ASSET_CONTENT_TYPES, asset_size_limit};
    use renderfleet_core::spec::{
        FPS_RANGE, MAX_SCENES, MAX_TEXT_CHARS, MAX_TEXTS, MAX_TOTAL_DURATION, PRIORITY_RANGE,
        SIZE_RANGE, VOLUME_RANGE,
    };
    let size = json!({ "minimum": SIZE_RANGE.0, "maximum": SIZE_RANGE.1, "multipleOf": 2 });
    let fraction = json!({ "minimum": 0.0, "maximum": 1.0 });
    let seconds = json!({ "exclusiveMinimum": 0.0, "maximum": MAX_TOTAL_DURATION });
    let largest = ASSET_CONTENT_TYPES
        .iter()
        .filter_map(|t| asset_size_limit(t))
        .max()
        .unwrap_or(0);
    vec![
        ("/OutputSpec/properties/width", size.clone()),
        ("/OutputSpec/properties/height", size),
        (
            "/OutputSpec/properties/fps",
            json!({ "minimum": FPS_RANGE.0, "maximum": FPS_RANGE.1 }),
        ),
        (
            "/JobSpec/properties/scenes",
            json!({ "minItems": 1, "maxItems": MAX_SCENES }),
        ),
        (
            "/JobSpec/properties/priority",
            json!({ "minimum": PRIORITY_RANGE.0, "maximum": PRIORITY_RANGE.1 }),
        ),
        ("/Scene/properties/duration", seconds.clone()),
        ("/Scene/properties/texts", json!({ "maxItems": MAX_TEXTS })),
        ("/Transition/properties/duration", seconds),
        (
            "/TextOverlay/properties/text",
            json!({ "maxLength": MAX_TEXT_CHARS, "pattern": "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$" }),
        ),
        ("/TextOverlay/properties/x", fraction.clone()),
        ("/TextOverlay/properties/y", fraction),
        (
            "/TextOverlay/properties/size",
            json!({ "exclusiveMinimum": 0.0, "maximum": 1.0 }),
        ),
        ("/TextOverlay/properties/color", json!({ "pattern": COLOR })),
        (
            "/AudioSpec/properties/volume",
            json!({ "minimum": VOLUME_RANGE.0, "maximum": VOLUME_RANGE.1 }),
        ),
        (
            "/AssetRequest/properties/content_type",
            json!({ "enum": ASSET_CONTENT_TYPES }),
        ),
        (
            "/AssetRequest/properties/size_bytes",
            json!({ "minimum": 1, "maximum": largest }),
        ),
    ]
}

#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This document", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_carries_the_limits_the_server_enforces() {
        let doc: Value = serde_json::from_str(document()).expect("JSON");
        let s = &doc["components"]["schemas"];
        let width = &s["OutputSpec"]["properties"]["width"];
        assert_eq!(width["maximum"], renderfleet_core::spec::SIZE_RANGE.1);
        assert_eq!(width["multipleOf"], 2);
        assert_eq!(s["JobSpec"]["properties"]["scenes"]["minItems"], 1);
        assert_eq!(
            s["TextOverlay"]["properties"]["color"]["pattern"],
            "^#[0-9a-fA-F]{6}$"
        );
        assert_eq!(
            s["Background"]["oneOf"][0]["properties"]["color"]["pattern"],
            "^#[0-9a-fA-F]{6}$"
        );
        assert_eq!(s["Background"]["oneOf"][2]["additionalProperties"], false);
        assert_eq!(
            s["AssetRequest"]["properties"]["content_type"]["enum"][0],
            "image/png"
        );
        assert_eq!(s["AssetRequest"]["properties"]["size_bytes"]["minimum"], 1);
        let limit = doc["paths"]["/v1/jobs"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
            .expect("the limit parameter");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 100);
    }
}
