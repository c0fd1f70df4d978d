//! `/api/admin/…`: what staff operators decide. Provider requests move
//! `pending → approved` or `pending → rejected`, once; the organisation's
//! `provider_status` follows in the same transaction.

use super::Path;
use super::organizations::{PROVIDER_REQUEST_COLUMNS, ProviderRequestOut, provider_request_out};
use super::paging::{Listing, Page, PageParams};
use super::{Empty, JsonBody, OptionalJsonBody, required_text};
use crate::AppState;
use crate::auth::Operator;
use crate::db::now_ms;
use crate::error::{Error, Result};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("admin", OpenApiRouter::new().routes(routes!(list)).routes(routes!(approve)).routes(routes!(reject)))
}

type ErrorBody = crate::error::ErrorBody;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending`, `approved` or `rejected`.
    status: Option<String>,
}

/// Provider requests, newest first; `?status=pending` for the queue
/// (operators).
#[utoipa::path(
    get,
    path = "/api/admin/provider-requests",
    params(ListQuery, PageParams),
    responses(
        (status = 200, description = "The requests.", body = Vec<ProviderRequestOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any."))),
        (status = 403, description = "Not an operator.", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Listing { filters: query, paging }: Listing<ListQuery>,
) -> Result<Page<ProviderRequestOut>> {
    if let Some(status) = &query.status
        && !["pending", "approved", "rejected"].contains(&status.as_str())
    {
        return Err(Error::Invalid("`status` must be pending, approved or rejected".into()));
    }
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {PROVIDER_REQUEST_COLUMNS} FROM provider_request WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(query.status)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(provider_request_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// `pending → approved`: the organisation becomes a provider (operators).
#[utoipa::path(
    post,
    path = "/api/admin/provider-requests/{id}/approve",
    params(("id" = String, Path, description = "Provider request id.")),
    request_body = Option<Empty>,
    responses(
        (status = 200, description = "The approved request.", body = ProviderRequestOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "Already decided (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn approve(
    State(state): State<AppState>,
    Operator(operator): Operator,
    Path(id): Path<String>,
    OptionalJsonBody(Empty {}): OptionalJsonBody<Empty>,
) -> Result<Json<ProviderRequestOut>> {
    decide(&state, &operator.id, &id, "approved", None).await.map(Json)
}

/// Why a request or an offering is sent back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reject {
    /// Shown to the organisation (1 to 4000 characters).
    pub(crate) reason: String,
}

/// `pending → rejected` with the reason (operators).
#[utoipa::path(
    post,
    path = "/api/admin/provider-requests/{id}/reject",
    params(("id" = String, Path, description = "Provider request id.")),
    request_body = Reject,
    responses(
        (status = 200, description = "The rejected request.", body = ProviderRequestOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "Already decided (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn reject(
    State(state): State<AppState>,
    Operator(operator): Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reject>,
) -> Result<Json<ProviderRequestOut>> {
    let reason = required_text("reason", &body.reason, 4000)?;
    decide(&state, &operator.id, &id, "rejected", Some(reason)).await.map(Json)
}

async fn decide(
    state: &AppState,
    operator: &str,
    id: &str,
    status: &str,
    reason: Option<String>,
) -> Result<ProviderRequestOut> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let moved = sqlx::query(&format!(
        "UPDATE provider_request SET status = $1, reason = $2, decided_by = $3, updated_at = $4 \
         WHERE id = $5 AND status = 'pending' RETURNING {PROVIDER_REQUEST_COLUMNS}"
    ))
    .bind(status)
    .bind(reason)
    .bind(operator)
    .bind(now)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = moved else {
        let current: Option<String> = sqlx::query_scalar("SELECT status FROM provider_request WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match current {
            None => Error::NotFound(format!("no provider request `{id}`")),
            Some(current) => Error::InvalidTransition(format!(
                "the request is already {current}; only a pending request can be decided"
            )),
        });
    };
    let out = provider_request_out(&row)?;
    sqlx::query("UPDATE organization SET provider_status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(&out.organization_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(request = %id, organization = %out.organization_id, status, "provider request decided");
    Ok(out)
}
