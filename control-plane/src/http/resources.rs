//! `/api/resources/`: subscriptions, one per provisioned order. A resource
//! moves `creating → ok ⇄ updating → terminating → terminated`, or `erred`.
//! Consumer members see theirs, provider members the resources of their
//! offerings, operators all; `terminate` (an owner or admin of the consumer,
//! or an operator) queues the durable `deprovision` job, which revokes the
//! resource's keys and tells the runtime hosts to drop the agent.

use super::paging::{Page, PageParams, Paging};
use super::parties::Parties;
use super::{Empty, OptionalJsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::jobs::{self, DEPROVISION};
use crate::transition::{RESOURCE, transition};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "resources",
        OpenApiRouter::new().routes(routes!(list)).routes(routes!(show)).routes(routes!(terminate)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// A resource as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceOut {
    id: String,
    order_id: String,
    /// The consumer organisation (the runtime's tenant).
    organization_id: String,
    offering_id: String,
    provider_organization_id: String,
    plan_id: String,
    flow_version_id: String,
    /// `creating`, `ok`, `updating`, `terminating`, `terminated` or `erred`.
    state: String,
    /// Its customer agent config (shown to the consumer's members and
    /// operators only: the provider has no business with it).
    config_id: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

const RESOURCE_COLUMNS: &str = "r.id, r.order_id, r.organization_id, r.offering_id, r.plan_id, r.flow_version_id, \
     r.state, r.created_at, r.updated_at, o.organization_id AS provider_organization_id, \
     (SELECT c.id FROM customer_agent_config c WHERE c.resource_id = r.id) AS config_id";

fn resource_out(row: &AnyRow) -> Result<ResourceOut> {
    Ok(ResourceOut {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        organization_id: row.try_get("organization_id")?,
        offering_id: row.try_get("offering_id")?,
        provider_organization_id: row.try_get("provider_organization_id")?,
        plan_id: row.try_get("plan_id")?,
        flow_version_id: row.try_get("flow_version_id")?,
        state: row.try_get("state")?,
        config_id: row.try_get("config_id")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

async fn load(state: &AppState, user: &CurrentUser, id: &str) -> Result<(ResourceOut, Parties)> {
    let not_found = || Error::NotFound(format!("no resource `{id}` among yours"));
    let row = sqlx::query(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM resource r JOIN offering o ON o.id = r.offering_id WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(not_found)?;
    let mut resource = resource_out(&row)?;
    let parties = Parties::of(state, user, &resource.organization_id, &resource.provider_organization_id).await?;
    if !parties.sees() {
        return Err(not_found());
    }
    if parties.consumer.is_none() && !parties.staff {
        resource.config_id = None;
    }
    Ok((resource, parties))
}

/// Resources the caller's organisations bought or sold (all for
/// operators), newest first.
#[utoipa::path(
    get,
    path = "/api/resources",
    params(PageParams),
    responses((status = 200, description = "The resources.", body = Vec<ResourceOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(State(state): State<AppState>, user: CurrentUser, paging: Paging) -> Result<Page<ResourceOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {RESOURCE_COLUMNS}, CASE WHEN $1 = 1 OR r.organization_id IN \
         (SELECT organization_id FROM membership WHERE user_id = $2) THEN 1 ELSE 0 END AS consumer_side \
         FROM resource r JOIN offering o ON o.id = r.offering_id \
         WHERE $1 = 1 OR r.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $2) \
            OR o.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $2) \
         ORDER BY r.created_at DESC, r.id DESC"
    )))
    .bind(i64::from(user.is_staff))
    .bind(&user.id)
    .fetch_all(state.db.pool())
    .await?;
    let resources = rows.iter().map(|row| {
        let mut resource = resource_out(row)?;
        if row.try_get::<i64, _>("consumer_side")? == 0 {
            resource.config_id = None;
        }
        Ok(resource)
    });
    resources.collect::<Result<_>>().map(|items| paging.page(items))
}

/// One resource (members of either organisation, operators).
#[utoipa::path(
    get,
    path = "/api/resources/{id}",
    params(("id" = String, Path, description = "Resource id.")),
    responses((status = 200, description = "The resource.", body = ResourceOut)),
)]
async fn show(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<ResourceOut>> {
    load(&state, &user, &id).await.map(|(resource, _)| Json(resource))
}

/// `ok | erred → terminating`, then the `deprovision` job finishes it
/// (owners and admins of the consumer, operators).
#[utoipa::path(
    post,
    path = "/api/resources/{id}/terminate",
    params(("id" = String, Path, description = "Resource id.")),
    request_body = Option<Empty>,
    responses(
        (status = 200, description = "The resource, terminating.", body = ResourceOut),
        (status = 403, description = "Not an owner or admin of the consumer, nor an operator.", body = ErrorBody),
        (status = 409, description = "Not ok or erred (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn terminate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Empty {}): OptionalJsonBody<Empty>,
) -> Result<Json<ResourceOut>> {
    let (_, parties) = load(&state, &user, &id).await?;
    Parties::require(
        parties.consumer_manager() || parties.staff,
        "an owner or admin of its organisation or an operator",
    )?;
    let mut tx = state.db.begin().await?;
    transition(&mut tx, RESOURCE, &id, &["ok", "erred"], "terminating").await?;
    jobs::enqueue(&mut tx, DEPROVISION, &json!({ "resource_id": id })).await?;
    tx.commit().await?;
    jobs::wake(&state);
    tracing::info!(resource = %id, "resource terminating");
    load(&state, &user, &id).await.map(|(resource, _)| Json(resource))
}
