//! JSON request bodies whose errors say what to fix (in our error shape,
//! not axum's plain-text rejections).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// A JSON body; an empty body is `T::default()`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(ct) = content_type.filter(|ct| !ct.starts_with("application/json")) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON (content-type: application/json), not `{ct}`"
            )));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::TooLarge(format!("the body is over the {} byte limit", super::MAX_BODY_BYTES)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            ApiError::BadRequest(format!("the body is not valid: {e} (line {}, column {})", e.line(), e.column()))
        })
    }
}
