//! The data plane's one error type: every refusal says what to fix.

use crate::RunError;
use crate::api::clock;
use crate::api::keys::KeyError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Why a data-plane request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The key is missing, invalid or revoked.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A credential other than an API key is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The key may not call this agent.
    #[error("{0}")]
    Forbidden(String),
    /// No such agent (or not one this key's tenant owns).
    #[error("{0}")]
    NotFound(String),
    /// The request body or parameters are wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many requests: wait and retry.
    #[error("{message}")]
    RateLimited {
        /// What was exceeded.
        message: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// The tenant's monthly quota is used up.
    #[error("{message}")]
    QuotaExhausted {
        /// Which allowance is used up.
        message: String,
        /// How long until the month turns and the quota starts over.
        retry_after: Duration,
    },
    /// The run failed or hit its limits.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The host does not offer this (not configured by the operator).
    #[error("{0}")]
    Unavailable(String),
    /// A bug on our side.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Key(KeyError::Missing) => (StatusCode::FORBIDDEN, "missing_key"),
            Self::Key(_) => (StatusCode::UNAUTHORIZED, "invalid_key"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) | Self::Run(RunError::Request(_)) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::QuotaExhausted { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exhausted"),
            Self::Run(RunError::OutOfFuel(_) | RunError::Deadline(_) | RunError::Limit(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "run_limit")
            }
            Self::Run(RunError::Node { .. } | RunError::Trap(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "run_failed"),
            Self::Run(RunError::History(_)) => (StatusCode::SERVICE_UNAVAILABLE, "history_not_stored"),
            Self::Run(RunError::Host) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The error body: `{"detail", "code"}` (Langflow clients read `detail`;
    /// ours read `code` too). Internal details are logged, never sent.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "detail": self.message(), "code": self.status_and_code().1 })
    }

    /// What the client is told. Internal details are logged, never sent.
    pub(crate) fn message(&self) -> String {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        self.to_string()
    }

    /// A refusal of a tenant over its monthly quota (`message` says which
    /// allowance): retry when the month turns.
    pub(crate) fn quota_exhausted(message: String) -> Self {
        Self::QuotaExhausted { message, retry_after: Duration::from_secs(clock::seconds_to_next_month()) }
    }

    /// This error as a response with `body`: its status, and `Retry-After`
    /// when rate limited or over quota.
    pub(crate) fn respond(self, body: serde_json::Value) -> Response {
        let (status, _) = self.status_and_code();
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after, .. } | Self::QuotaExhausted { retry_after, .. } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.respond(body)
    }
}
