//! The control plane's one error type: every 4xx says what to fix, every
//! 5xx is logged in the request's span and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandflow_flow_compiler::Diagnostics;

/// Why a request was refused or failed. The body is always
/// `{"detail": "...", "code": "..."}` (plus `diagnostics` for flows).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource, or not one the caller may see (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is not parseable JSON (400).
    #[error("{0}")]
    MalformedBody(String),
    /// The body is JSON of the wrong shape or with invalid values (422).
    #[error("{0}")]
    Invalid(String),
    /// The resource is not in a state that allows this (409).
    #[error("{0}")]
    InvalidTransition(String),
    /// The body is over the size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A Langflow export has errors (422), all of them listed.
    #[error("the flow has {} error(s); see `diagnostics`", .0.error_count())]
    InvalidFlow(Diagnostics),
    /// A feature that needs configuration is off (503).
    #[error("{0}")]
    Unavailable(String),
    /// A database error: `RowNotFound` is a 404, a unique violation a 409
    /// naming the field, anything else a 500 whose cause is only logged.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A bug or an outage on our side (500); the text is only logged.
    #[error("internal error")]
    Internal(String),
}

/// Shorthand for handler results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An internal error from anything displayable (logged, never shown).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            Self::MalformedBody(m) => (StatusCode::BAD_REQUEST, "malformed_body", m.clone()),
            Self::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", m.clone()),
            Self::InvalidTransition(m) => (StatusCode::CONFLICT, "invalid_transition", m.clone()),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", m.clone()),
            Self::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", m.clone()),
            Self::InvalidFlow(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_flow", self.to_string()),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
            Self::Database(sqlx::Error::RowNotFound) => {
                (StatusCode::NOT_FOUND, "not_found", "no such resource".to_owned())
            }
            Self::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                let field = unique_field(db.as_ref());
                (StatusCode::CONFLICT, "conflict", format!("`{field}` is already taken: choose another"))
            }
            Self::Database(e) => {
                tracing::error!(error = %e, "database error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_owned())
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_owned())
            }
        };
        let mut body = serde_json::json!({ "detail": detail, "code": code });
        if let Self::InvalidFlow(diagnostics) = &self {
            body["diagnostics"] = serde_json::to_value(diagnostics).unwrap_or_default();
        }
        (status, Json(body)).into_response()
    }
}

/// The field a unique violation is about, from the constraint name
/// (PostgreSQL: `<table>_<field>_key`, as the migrations name them) or the
/// message (SQLite: `UNIQUE constraint failed: <table>.<field>, …`).
fn unique_field(db: &dyn sqlx::error::DatabaseError) -> String {
    const TABLES: [&str; 10] = [
        "user_account_",
        "organization_",
        "provider_agent_",
        "flow_version_",
        "provider_request_",
        "category_",
        "offering_",
        "resource_",
        "customer_agent_config_",
        "agent_api_key_",
    ];
    if let Some(constraint) = db.constraint() {
        let name = constraint.strip_suffix("_key").unwrap_or(constraint);
        let name = TABLES.iter().find_map(|t| name.strip_prefix(t)).unwrap_or(name);
        return name.to_owned();
    }
    let message = db.message();
    message
        .split_once("failed: ")
        .map(|(_, cols)| {
            cols.split(", ")
                .map(|c| c.rsplit_once('.').map_or(c, |(_, f)| f))
                .filter(|c| !c.ends_with("_id"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "value".to_owned())
}
