//! JSON request bodies whose errors say what to fix (in our error shape,
//! not axum's plain-text rejections).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
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
        let content_type = request.headers().get("content-type").map(|v| String::from_utf8_lossy(v.as_bytes()));
        if let Some(ct) = content_type.filter(|ct| !is_json(ct)) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON (content-type: application/json), not `{ct}`"
            )));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(unreadable)?;
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

/// Whether a `content-type` names JSON: `application/json` or a
/// `+json` type such as `application/vnd.api+json`, in any case and with
/// any parameters (as FastAPI, and so Langflow, takes them).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Why a body could not be read: over the size limit (413), or cut off
/// or malformed on the way (400).
pub fn unreadable(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(format!("the body is over the {} byte limit", super::MAX_BODY_BYTES))
    } else {
        ApiError::BadRequest(format!("the body could not be read: {rejection}; send it again, whole"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for json in
            ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/vnd.api+json"]
        {
            assert!(is_json(json), "{json}");
        }
        for other in ["application/jsonp", "text/plain", "application/x-www-form-urlencoded", "json", ""] {
            assert!(!is_json(other), "{other}");
        }
    }
}
