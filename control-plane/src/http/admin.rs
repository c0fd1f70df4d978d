//! `/api/admin/…`: what staff operators decide. Provider requests move
//! `pending → approved` or `pending → rejected`, once; the organisation's
//! `provider_status` follows in the same transaction.

use super::organizations::{PROVIDER_REQUEST_COLUMNS, ProviderRequestOut, provider_request_out};
use super::{JsonBody, OptionalJsonBody, required_text};
use super::{Path, Query};
use crate::AppState;
use crate::auth::Operator;
use crate::db::now_ms;
use crate::error::{Error, Result};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/provider-requests", get(list))
        .route("/api/admin/provider-requests/{id}/approve", post(approve))
        .route("/api/admin/provider-requests/{id}/reject", post(reject))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

/// Provider requests, newest first; `?status=pending` for the queue.
async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ProviderRequestOut>>> {
    if let Some(status) = &query.status
        && !["pending", "approved", "rejected"].contains(&status.as_str())
    {
        return Err(Error::Invalid("`status` must be pending, approved or rejected".into()));
    }
    let rows = sqlx::query(&format!(
        "SELECT {PROVIDER_REQUEST_COLUMNS} FROM provider_request WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(query.status)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(provider_request_out).collect::<Result<_>>().map(Json)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {}

async fn approve(
    State(state): State<AppState>,
    Operator(operator): Operator,
    Path(id): Path<String>,
    OptionalJsonBody(Approve {}): OptionalJsonBody<Approve>,
) -> Result<Json<ProviderRequestOut>> {
    decide(&state, &operator.id, &id, "approved", None).await.map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reject {
    reason: String,
}

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
    let mut tx = state.db.pool().begin().await?;
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
