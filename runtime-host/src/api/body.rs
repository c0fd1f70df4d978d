//! JSON request bodies whose errors say what to fix (in our error shape,
//! not axum's plain-text rejections).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A JSON body; an empty body reads as `{}`, so every field takes its
/// default (as Langflow's request models do).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
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
            return serde_json::from_slice(b"{}")
                .map(Self)
                .map_err(|e| ApiError::BadRequest(format!("the body is empty; send a JSON object: {e}")));
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            ApiError::BadRequest(format!("the body is not valid: {e} (line {}, column {})", e.line(), e.column()))
        })
    }
}

/// A field's default when it is absent or `null` (Python clients send
/// `None` for what they leave out, and Langflow accepts it).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}
