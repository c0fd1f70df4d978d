//! The control plane's one error type: every 4xx says what to fix, every
//! 5xx is logged in the request's span and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandflow_flow_compiler::Diagnostics;
use serde::Serialize;

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

/// The body of every refusal, 4xx or 5xx.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub detail: String,
    /// What kind of refusal it is, for programs to branch on.
    pub code: ErrorCode,
    /// For `invalid_flow`: every diagnostic of the Langflow export (code,
    /// node, field, JSON pointer, what to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub diagnostics: Option<serde_json::Value>,
}

/// The `code` of an [`ErrorBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: signed in, but the role is too weak.
    Forbidden,
    /// 404: no such resource, or not one the caller may see.
    NotFound,
    /// 405: the route does not take that method.
    MethodNotAllowed,
    /// 400: the body is not JSON.
    MalformedBody,
    /// 422: the body or query has the wrong shape or an invalid value.
    Invalid,
    /// 422: the Langflow export has errors (see `diagnostics`).
    InvalidFlow,
    /// 409: the resource is not in a state that allows this.
    InvalidTransition,
    /// 409: a unique value (name, slug, email) is taken.
    Conflict,
    /// 413: the body is over the size limit.
    TooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 503: a feature that needs configuration is off.
    Unavailable,
    /// 500: a bug or an outage on our side (the cause is only logged).
    Internal,
}

impl ErrorBody {
    /// A body without diagnostics.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), code, diagnostics: None }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        use ErrorCode as C;
        let (status, code, detail) = match &self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, C::Unauthorized, m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, C::Forbidden, m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, C::NotFound, m.clone()),
            Self::MalformedBody(m) => (StatusCode::BAD_REQUEST, C::MalformedBody, m.clone()),
            Self::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, C::Invalid, m.clone()),
            Self::InvalidTransition(m) => (StatusCode::CONFLICT, C::InvalidTransition, m.clone()),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, C::TooLarge, m.clone()),
            Self::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, C::UnsupportedMediaType, m.clone()),
            Self::InvalidFlow(_) => (StatusCode::UNPROCESSABLE_ENTITY, C::InvalidFlow, self.to_string()),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, C::Unavailable, m.clone()),
            Self::Database(sqlx::Error::RowNotFound) => {
                (StatusCode::NOT_FOUND, C::NotFound, "no such resource".to_owned())
            }
            Self::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                let field = unique_field(db.as_ref());
                (StatusCode::CONFLICT, C::Conflict, format!("`{field}` is already taken: choose another"))
            }
            Self::Database(e) => {
                tracing::error!(error = %e, "database error");
                (StatusCode::INTERNAL_SERVER_ERROR, C::Internal, "internal error".to_owned())
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, C::Internal, "internal error".to_owned())
            }
        };
        let mut body = ErrorBody::new(code, detail);
        if let Self::InvalidFlow(diagnostics) = &self {
            body.diagnostics = Some(serde_json::to_value(diagnostics).unwrap_or_default());
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
