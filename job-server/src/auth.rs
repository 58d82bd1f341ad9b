//! `Authorization: Bearer <key>` to a tenant. Every lookup reads the key's record, so a revoked
//! key is refused at once.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use renderfleet_core::keys;

use crate::Shared;
use crate::error::ApiError;

/// The caller's tenant, resolved from its API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant(pub String);

impl FromRequestParts<Shared> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let (scheme, key) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let (key_id, secret) = keys::parse(key.trim()).ok_or(ApiError::Unauthorized)?;
        let record = state
            .keys
            .find_key(key_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if !keys::verify(&record, secret) {
            return Err(ApiError::Unauthorized);
        }
        Ok(Tenant(record.tenant))
    }
}
