//! `GET /api/users/me`.

use super::auth::UserOut;
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::Result;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("users", OpenApiRouter::new().routes(routes!(me)))
}

/// The signed-in user and their organisations.
#[derive(Debug, Serialize, ToSchema)]
struct Me {
    #[serde(flatten)]
    user: UserOut,
    organizations: Vec<MyOrganization>,
}

/// An organisation the user belongs to, with their role in it.
#[derive(Debug, Serialize, ToSchema)]
struct MyOrganization {
    id: String,
    name: String,
    role: String,
    provider_status: String,
}

/// The signed-in user and the organisations they belong to.
#[utoipa::path(get, path = "/api/users/me", responses((status = 200, description = "The user.", body = Me)))]
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
