//! `/v1/assets`: declare an upload and get a presigned PUT link into the tenant's prefix; read an
//! asset back. Jobs may reference only their own tenant's uploaded assets.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use renderfleet_core::api::{
    ASSET_CONTENT_TYPES, AssetCreated, AssetRequest, AssetView, asset_size_limit, json_error,
};
use renderfleet_core::clock::{now_ms, to_rfc3339};
use renderfleet_core::ids::AssetId;
use renderfleet_core::names::asset_key;
use renderfleet_core::ports::Asset;

use super::JsonBody;
use crate::Shared;
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::views::Json;

/// Lifetime of an upload link.
const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v1/assets", post(create))
        .route("/v1/assets/{id}", get(read))
}

/// `POST /v1/assets`: 201 with the asset id and a presigned PUT link.
#[utoipa::path(post, path = "/v1/assets", tag = "assets", security(("bearer" = [])),
    request_body = renderfleet_core::api::AssetRequest,
    responses(
        (status = 201, description = "Declared: PUT the file to `upload_url` before it expires", body = renderfleet_core::api::AssetCreated,
            headers(("Location" = String, description = "The asset's URL"))),
        super::BodyFailures,
        super::Failures,
    ))]
pub(crate) async fn create(
    State(state): State<Shared>,
    tenant: Tenant,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let req: AssetRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        ApiError::Invalid(json_error(e.inner(), field))
    })?;
    let limit = asset_size_limit(&req.content_type).ok_or_else(|| {
        ApiError::invalid(
            "unsupported_content_type",
            "content_type",
            format!(
                "must be one of {}, got {:?}",
                ASSET_CONTENT_TYPES.join(", "),
                req.content_type
            ),
        )
    })?;
    if req.size_bytes == 0 || req.size_bytes > limit {
        return Err(ApiError::invalid(
            "out_of_range",
            "size_bytes",
            format!(
                "a {} asset must be 1 to {limit} bytes, got {}",
                req.content_type, req.size_bytes
            ),
        ));
    }
    let id = AssetId::generate();
    let now = now_ms();
    let asset = Asset {
        id: id.clone(),
        tenant: tenant.0.clone(),
        content_type: req.content_type.clone(),
        size_bytes: req.size_bytes,
        key: asset_key(&tenant.0, id.as_str()),
        created_at: now,
    };
    let upload_url = state
        .media
        .presign_put(
            &asset.key,
            &asset.content_type,
            asset.size_bytes,
            UPLOAD_TTL,
        )
        .await?;
    state.assets.create_asset(&asset).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/assets/{id}")).expect("ids are header-safe"),
    );
    let body = AssetCreated {
        id: id.to_string(),
        upload_url,
        expires_at: to_rfc3339(now + UPLOAD_TTL.as_millis() as i64),
        content_type: asset.content_type,
        size_bytes: asset.size_bytes,
    };
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

/// `GET /v1/assets/{id}`. Another tenant's asset is a 404, like one that does not exist.
#[utoipa::path(get, path = "/v1/assets/{id}", tag = "assets", security(("bearer" = [])),
    params(("id" = String, Path, description = "The asset's id")),
    responses(
        (status = 200, description = "The asset", body = renderfleet_core::api::AssetView),
        (status = 404, description = "No such asset for this tenant", body = renderfleet_core::api::ErrorResponse),
        super::Failures,
    ))]
pub(crate) async fn read(
    State(state): State<Shared>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = AssetId::parse(&id).ok_or(ApiError::NotFound("asset"))?;
    let asset = state
        .assets
        .get_asset(&id)
        .await?
        .filter(|a| a.tenant == tenant.0)
        .ok_or(ApiError::NotFound("asset"))?;
    let uploaded = state.media.head(&asset.key).await?.is_some();
    Ok(Json(AssetView {
        id: asset.id.to_string(),
        content_type: asset.content_type,
        size_bytes: asset.size_bytes,
        created_at: to_rfc3339(asset.created_at),
        uploaded,
    })
    .into_response())
}
