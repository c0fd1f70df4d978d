//! `GET/PUT /api/admin/settings` (operators): platform-wide settings; for
//! now the commission taken on sales, in basis points (0 to 10,000).

use super::JsonBody;
use crate::AppState;
use crate::auth::Operator;
use crate::db::now_ms;
use crate::error::{Error, Result};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/settings", get(show).put(replace))
}

/// The platform settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The operator's commission on sales, in basis points (100 = 1 %).
    pub commission_bps: i64,
}

async fn show(State(state): State<AppState>, _operator: Operator) -> Result<Json<Settings>> {
    let commission_bps: i64 = sqlx::query_scalar("SELECT commission_bps FROM platform_settings WHERE id = 1")
        .fetch_one(state.db.pool())
        .await?;
    Ok(Json(Settings { commission_bps }))
}

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
