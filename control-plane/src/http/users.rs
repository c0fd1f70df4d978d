//! `GET /api/users/me`.

use super::auth::UserOut;
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::Result;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::Row;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/users/me", get(me))
}

#[derive(Debug, Serialize)]
struct Me {
    #[serde(flatten)]
    user: UserOut,
    organizations: Vec<MyOrganization>,
}

#[derive(Debug, Serialize)]
struct MyOrganization {
    id: String,
    name: String,
    role: String,
    provider_status: String,
}

/// The signed-in user and the organisations they belong to.
async fn me(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Me>> {
    let rows = sqlx::query(
        "SELECT o.id, o.name, m.role, o.provider_status FROM membership m \
         JOIN organization o ON o.id = m.organization_id WHERE m.user_id = $1 ORDER BY o.name",
    )
    .bind(&user.id)
    .fetch_all(state.db.pool())
    .await?;
    let organizations = rows
        .iter()
        .map(|r| {
            Ok(MyOrganization {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                provider_status: r.try_get("provider_status")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(Me {
        user: UserOut { id: user.id, email: user.email, name: user.name, is_staff: user.is_staff },
        organizations,
    }))
}
