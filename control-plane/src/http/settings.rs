//! `GET/PUT /api/admin/settings` (operators): platform-wide settings; for
//! now the commission taken on sales, in basis points (0 to 10,000).

use super::JsonBody;
use crate::AppState;
use crate::auth::Operator;
use crate::db::now_ms;
use crate::error::{Error, Result};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("admin", OpenApiRouter::new().routes(routes!(show, replace)))
}

/// The platform settings.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The operator's commission on sales, in basis points (100 = 1 %).
    pub commission_bps: i64,
}

/// The platform settings (operators).
#[utoipa::path(
    get,
    path = "/api/admin/settings",
    responses(
        (status = 200, description = "The settings.", body = Settings),
        (status = 403, description = "Not an operator.", body = crate::error::ErrorBody),
    ),
)]
async fn show(State(state): State<AppState>, _operator: Operator) -> Result<Json<Settings>> {
    let commission_bps: i64 = sqlx::query_scalar("SELECT commission_bps FROM platform_settings WHERE id = 1")
        .fetch_one(state.db.pool())
        .await?;
    Ok(Json(Settings { commission_bps }))
}

/// Replaces the platform settings (operators).
#[utoipa::path(
    put,
    path = "/api/admin/settings",
    request_body = Settings,
    responses(
        (status = 200, description = "The settings.", body = Settings),
        (status = 403, description = "Not an operator.", body = crate::error::ErrorBody),
    ),
)]
async fn replace(
    State(state): State<AppState>,
    Operator(operator): Operator,
    JsonBody(settings): JsonBody<Settings>,
) -> Result<Json<Settings>> {
    if !(0..=10_000).contains(&settings.commission_bps) {
        return Err(Error::Invalid("`commission_bps` must be from 0 to 10000 (basis points)".into()));
    }
    sqlx::query("UPDATE platform_settings SET commission_bps = $1, updated_at = $2 WHERE id = 1")
        .bind(settings.commission_bps)
        .bind(now_ms())
        .execute(state.db.pool())
        .await?;
    tracing::info!(operator = %operator.id, commission_bps = settings.commission_bps, "platform settings changed");
    Ok(Json(settings))
}
