//! `/api/customer-agent-configs/{id}/secrets/`: the buyer's secrets for
//! one agent ([`crate::secrets`]), the global variables its flow names.
//! Owners and admins of the consumer organisation list their names and
//! set or delete them; no answer ever carries a value. A change while the
//! hosts may serve the agent (the subscription ok, or a termination that
//! failed) is sent to them as a new `agent.provisioned` (names only) in
//! the same transaction ([`agent_configs::announce`]); the hosts then
//! fetch the values with `GET /api/runtime/agents/{id}/secrets`
//! ([`super::runtime`]).

use super::agent_configs;
use super::{JsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::secrets::{self, MAX_PER_AGENT};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type ErrorBody = crate::error::ErrorBody;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "customer-agent-configs",
        OpenApiRouter::new().routes(routes!(list_secrets)).routes(routes!(set_secret, delete_secret)),
    )
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretOut {
    /// The global variable name the flow uses.
    pub name: String,
    /// The hosts nodes may send it to (none: only model providers' keys).
    pub hosts: Vec<String>,
    /// First set.
    pub created_at_ms: i64,
    /// Last set.
    pub updated_at_ms: i64,
}

/// The buyer's secrets of an agent config, by name (owners and admins of
/// the consumer).
#[utoipa::path(
    get,
    path = "/api/customer-agent-configs/{id}/secrets",
    params(("id" = String, Path, description = "Customer agent config id.")),
    responses(
        (status = 200, description = "Names and dates, never values.", body = Vec<SecretOut>),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
    ),
)]
async fn list_secrets(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<SecretOut>>> {
    let config = agent_configs::load(&state, &user, &id, true).await?;
    let rows = sqlx::query(
        "SELECT name, hosts, created_at, updated_at FROM agent_secret WHERE resource_id = $1 ORDER BY name",
    )
    .bind(&config.resource_id)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SecretOut {
                name: row.try_get("name")?,
                hosts: stored_hosts(row)?,
                created_at_ms: row.try_get("created_at")?,
                updated_at_ms: row.try_get("updated_at")?,
            })
        })
        .collect::<Result<_>>()
        .map(Json)
}

/// A row's `hosts`, stored as a JSON array.
pub fn stored_hosts(row: &sqlx::any::AnyRow) -> Result<Vec<String>> {
    let text: String = row.try_get("hosts")?;
    serde_json::from_str(&text).map_err(Error::internal)
}

/// A secret's new value. Its `Debug` does not show it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetSecret {
    /// The value (trimmed; at most 16 KiB of visible ASCII and spaces).
    value: String,
    /// The hosts nodes may send it to in a request header: `api.example.com`,
    /// `*.example.com`, an IP address (`[…]` for IPv6) or `*`, optionally with `:port` (at
    /// most 16). Without any, only the host's own uses take it (a model
    /// provider's key): a seller's flow names where its requests go.
    #[serde(default)]
    hosts: Vec<String>,
}

/// Sets secret `name` and the hosts it may go to (creating or replacing
/// it; owners and admins of the consumer). At most 64 per agent.
#[utoipa::path(
    put,
    path = "/api/customer-agent-configs/{id}/secrets/{name}",
    params(
        ("id" = String, Path, description = "Customer agent config id."),
        ("name" = String, Path, description = "The global variable name, e.g. `TAVILY_API_KEY`."),
    ),
    request_body = SetSecret,
    responses(
        (status = 200, description = "Set; the value is not echoed.", body = SecretOut),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
        (status = 409, description = "The subscription is terminating, terminated or erred (`invalid_transition`).",
         body = ErrorBody),
        (status = 422, description = "A bad name, value or host, or the agent's 64 secrets are taken (`invalid`).",
         body = ErrorBody),
        (status = 503, description = "No --secrets-key is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn set_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetSecret>,
) -> Result<Json<SecretOut>> {
    let config = agent_configs::load(&state, &user, &id, true).await?;
    secrets::check_name(&name)?;
    let value = secrets::checked_value(&body.value)?;
    let hosts = secrets::checked_hosts(&body.hosts)?;
    let sealed = state.config.sealing_keys()?.seal(&config.resource_id, &name, &hosts, value)?;
    let hosts_text = serde_json::to_string(&hosts).map_err(Error::internal)?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // Locked before counting, so two new secrets cannot race past the cap.
    let standing = agent_configs::lock(&mut tx, &config.resource_id).await?;
    agent_configs::ended(&standing)?;
    let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_secret WHERE resource_id = $1 AND name <> $2")
        .bind(&config.resource_id)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?;
    if others >= MAX_PER_AGENT {
        return Err(Error::Invalid(format!(
            "this agent holds {others} secrets, the most it may; delete one it no longer needs"
        )));
    }
    let row = sqlx::query(
        "INSERT INTO agent_secret (resource_id, name, sealed, hosts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (resource_id, name) \
         DO UPDATE SET sealed = excluded.sealed, hosts = excluded.hosts, updated_at = excluded.updated_at \
         RETURNING created_at, updated_at",
    )
    .bind(&config.resource_id)
    .bind(&name)
    .bind(&sealed)
    .bind(&hosts_text)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let out =
        SecretOut { name, hosts, created_at_ms: row.try_get("created_at")?, updated_at_ms: row.try_get("updated_at")? };
    agent_configs::announce(&mut tx, &config.resource_id, &standing).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// Deletes secret `name` (owners and admins of the consumer); allowed
/// after the subscription ended too.
#[utoipa::path(
    delete,
    path = "/api/customer-agent-configs/{id}/secrets/{name}",
    params(
        ("id" = String, Path, description = "Customer agent config id."),
        ("name" = String, Path, description = "The global variable name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
        (status = 404, description = "No such secret on this agent (`not_found`).", body = ErrorBody),
    ),
)]
async fn delete_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    let config = agent_configs::load(&state, &user, &id, true).await?;
    let mut tx = state.db.begin().await?;
    let standing = agent_configs::lock(&mut tx, &config.resource_id).await?;
    let deleted = sqlx::query("DELETE FROM agent_secret WHERE resource_id = $1 AND name = $2")
        .bind(&config.resource_id)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound(format!(
            "this agent has no secret `{}`",
            name.chars().take(secrets::MAX_NAME_BYTES).collect::<String>().escape_debug()
        )));
    }
    agent_configs::announce(&mut tx, &config.resource_id, &standing).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
