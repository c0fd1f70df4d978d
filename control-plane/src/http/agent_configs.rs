//! `/api/customer-agent-configs/`: what buyers configure on each of their
//! agents (one config per resource): persona, branding and widget
//! ([`crate::agent_config`]). Members of the consumer organisation read;
//! owners and admins change. A change while the resource is `ok` is sent to
//! the runtime hosts as a new `agent.provisioned` in the same transaction
//! ([`lock`], [`announce`]); once the subscription is terminating,
//! terminated or erred (a failed termination), changes are refused.

use super::organizations::authorize;
use super::paging::{Page, PageParams, Paging};
use super::{JsonBody, Path, nullable};
use crate::AppState;
use crate::agent_config::{Branding, Persona, Widget};
use crate::auth::CurrentUser;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::feed;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("customer-agent-configs", OpenApiRouter::new().routes(routes!(list)).routes(routes!(show, update)))
}

/// A customer agent config as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigOut {
    /// Config id.
    pub id: String,
    /// The resource (subscription) it configures.
    pub resource_id: String,
    /// The consumer organisation.
    pub organization_id: String,
    /// The resource's state.
    pub resource_state: String,
    /// Persona sent to the runtime (null: none).
    pub persona: Option<Persona>,
    /// Branding.
    pub branding: Branding,
    /// Chat widget.
    pub widget: Widget,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

const CONFIG_COLUMNS: &str = "c.id, c.resource_id, c.organization_id, c.persona, c.branding, c.widget, \
     c.created_at, c.updated_at, r.state AS resource_state";

fn config_out(row: &AnyRow) -> Result<ConfigOut> {
    fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(Error::internal)
    }
    Ok(ConfigOut {
        id: row.try_get("id")?,
        resource_id: row.try_get("resource_id")?,
        organization_id: row.try_get("organization_id")?,
        resource_state: row.try_get("resource_state")?,
        persona: json(row, "persona")?,
        branding: json(row, "branding")?,
        widget: json(row, "widget")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// Loads a config of one of the caller's organisations (404 otherwise);
/// `manage` asks for owner or admin (403 otherwise).
pub async fn load(state: &AppState, user: &CurrentUser, id: &str, manage: bool) -> Result<ConfigOut> {
    let not_found = || Error::NotFound(format!("no customer agent config `{id}` among yours"));
    let row = sqlx::query(&format!(
        "SELECT {CONFIG_COLUMNS} FROM customer_agent_config c JOIN resource r ON r.id = c.resource_id WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(not_found)?;
    let config = config_out(&row)?;
    authorize(state, user, &config.organization_id, manage).await.map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        other => other,
    })?;
    Ok(config)
}

/// Configs of the caller's organisations, newest first.
#[utoipa::path(
    get,
    path = "/api/customer-agent-configs",
    params(PageParams),
    responses((status = 200, description = "The configs.", body = Vec<ConfigOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(State(state): State<AppState>, user: CurrentUser, paging: Paging) -> Result<Page<ConfigOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {CONFIG_COLUMNS} FROM customer_agent_config c JOIN resource r ON r.id = c.resource_id \
         WHERE c.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $1) \
         ORDER BY c.created_at DESC, c.id DESC"
    )))
    .bind(&user.id)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(config_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One config (members of the consumer organisation; operators read any).
#[utoipa::path(
    get,
    path = "/api/customer-agent-configs/{id}",
    params(("id" = String, Path, description = "Customer agent config id.")),
    responses((status = 200, description = "The config.", body = ConfigOut)),
)]
async fn show(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<ConfigOut>> {
    load(&state, &user, &id, false).await.map(Json)
}

/// Each section given replaces the stored one; `"persona": null` removes
/// the persona.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateConfig {
    #[serde(default, deserialize_with = "nullable")]
    persona: Option<Option<Persona>>,
    branding: Option<Branding>,
    widget: Option<Widget>,
}

/// Replaces the sections given (owners and admins of the consumer); while
/// the subscription is ok the runtime hosts get the change.
#[utoipa::path(
    patch,
    path = "/api/customer-agent-configs/{id}",
    params(("id" = String, Path, description = "Customer agent config id.")),
    request_body = UpdateConfig,
    responses(
        (status = 200, description = "The config.", body = ConfigOut),
        (status = 403, description = "Not an owner or admin of the consumer.", body = crate::error::ErrorBody),
        (status = 409, description = "The subscription is terminating, terminated or erred (`invalid_transition`).",
         body = crate::error::ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateConfig>,
) -> Result<Json<ConfigOut>> {
    let current = load(&state, &user, &id, true).await?;
    let persona = body.persona.unwrap_or(current.persona).map(Persona::checked).transpose()?;
    let branding = body.branding.unwrap_or(current.branding).checked()?;
    let widget = body.widget.unwrap_or(current.widget).checked()?;
    let mut tx = state.db.begin().await?;
    let standing = lock(&mut tx, &current.resource_id).await?;
    ended(&standing)?;
    sqlx::query(
        "UPDATE customer_agent_config SET persona = $1, branding = $2, widget = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(text(&persona)?)
    .bind(text(&branding)?)
    .bind(text(&widget)?)
    .bind(now_ms())
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    announce(&mut tx, &current.resource_id, &standing).await?;
    tx.commit().await?;
    load(&state, &user, &id, false).await.map(Json)
}

/// Where a buyer's agent stands when its configuration changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The subscription is ok: the hosts must hear of the change.
    Ok,
    /// Not provisioned yet: provisioning sends what the database holds.
    NotYet,
    /// The subscription is `terminating`, `terminated` or `erred` (a
    /// termination that failed, whose agent the hosts may still serve):
    /// it takes no new configuration.
    Ended(String),
}

impl Standing {
    /// Whether the hosts may be serving the agent: ok, terminating (until
    /// its `agent.deprovisioned`), or a termination failed (`erred`); as
    /// [`feed::SERVED_STATES`].
    fn served(&self) -> bool {
        match self {
            Self::Ok => true,
            Self::Ended(state) => state == "terminating" || state == "erred",
            Self::NotYet => false,
        }
    }
}

/// Locks resource `resource` in `tx` for a change to its agent's
/// configuration and says where it stands. Changes to one agent queue
/// here, and so does a termination racing them, whose
/// `agent.deprovisioned` therefore cannot come before their
/// `agent.provisioned`. Call it before the change's writes and
/// [`announce`] after them.
pub async fn lock(tx: &mut Transaction<'_, Any>, resource: &str) -> Result<Standing> {
    let state: String = sqlx::query_scalar("UPDATE resource SET updated_at = $1 WHERE id = $2 RETURNING state")
        .bind(now_ms())
        .bind(resource)
        .fetch_one(&mut **tx)
        .await?;
    Ok(match state.as_str() {
        "ok" => Standing::Ok,
        "terminating" | "terminated" | "erred" => Standing::Ended(state),
        _ => Standing::NotYet,
    })
}

/// Sends the hosts a new `agent.provisioned` for `resource` while they
/// may be serving it (the feed's lock is the transaction's last): while
/// it terminates and after a failed termination too, so that a secret the
/// buyer deletes then does not stay on the hosts until the termination
/// succeeds.
pub async fn announce(tx: &mut Transaction<'_, Any>, resource: &str, standing: &Standing) -> Result<()> {
    if standing.served() {
        feed::agent_provisioned(tx, resource).await?;
    }
    Ok(())
}

/// 409 for a change to an agent whose subscription has ended.
pub fn ended(standing: &Standing) -> Result<()> {
    match standing {
        Standing::Ended(state) => {
            Err(Error::InvalidTransition(format!("the subscription is {state}; its agent can no longer be configured")))
        }
        _ => Ok(()),
    }
}

/// A section as the JSON text it is stored as.
fn text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::internal)
}
