//! `/api/customer-agent-configs/{id}/secrets/`: the buyer's secrets for
//! one agent ([`crate::secrets`]), the global variables its flow names,
//! which take the place of the seller's of the same name
//! ([`super::seller_secrets`]). Owners and admins of the consumer
//! organisation list their names and set or delete them; no answer ever
//! carries a value. A change while the hosts may serve the agent (the
//! subscription ok, or a termination that failed) is sent to them as a new
//! `agent.provisioned` (names only) in the same transaction
//! ([`agent_configs::announce`]); the hosts then fetch the values with
//! `GET /api/runtime/agents/{id}/secrets` ([`super::runtime`]).
//! `GET …/{id}/variables` says which global variables the agent's flow
//! reads and whose secret fills each, so a buyer knows what to bring.

use super::agent_configs;
use super::{JsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::secrets::{self, Owner};
use crate::stored_secrets::{self, SecretOut};
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
        OpenApiRouter::new()
            .routes(routes!(list_secrets))
            .routes(routes!(set_secret, delete_secret))
            .routes(routes!(list_variables)),
    )
}

/// A secret's new value. Its `Debug` does not show it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetSecret {
    /// The value (trimmed; at most 16 KiB of visible ASCII and spaces).
    value: String,
    /// The hosts nodes may send it to in a request header: `api.example.com`,
    /// `*.example.com`, an IP address (`[…]` for IPv6) or `*`, optionally with `:port` (at
    /// most 16). Without any, only the host's own uses take it (a model
    /// provider's key): a seller's flow names where its requests go.
    #[serde(default)]
    hosts: Vec<String>,
}

impl SetSecret {
    /// The value checked and sealed for `owner`'s secret `name`, and the
    /// checked hosts it is sealed with.
    pub(super) fn sealed(&self, state: &AppState, owner: Owner<'_>, name: &str) -> Result<(String, Vec<String>)> {
        secrets::check_name(name)?;
        let value = secrets::checked_value(&self.value)?;
        let hosts = secrets::checked_hosts(&self.hosts)?;
        let sealed = state.config.sealing_keys()?.seal(owner, name, &hosts, value)?;
        Ok((sealed, hosts))
    }
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
    stored_secrets::list(state.db.pool(), Owner::Buyer(&config.resource_id)).await.map(Json)
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
    let owner = Owner::Buyer(&config.resource_id);
    let (sealed, hosts) = body.sealed(&state, owner, &name)?;
    let mut tx = state.db.begin().await?;
    // Locked before counting, so two new secrets cannot race past the cap.
    let standing = agent_configs::lock(&mut tx, &config.resource_id).await?;
    agent_configs::ended(&standing)?;
    let out = stored_secrets::put(&mut tx, owner, name, &sealed, hosts).await?;
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
    stored_secrets::delete(&mut tx, Owner::Buyer(&config.resource_id), &name).await?;
    agent_configs::announce(&mut tx, &config.resource_id, &standing).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A global variable the agent's flow reads, and whose secret fills it.
#[derive(Debug, Serialize, ToSchema)]
struct Variable {
    /// The global variable name.
    name: String,
    /// Whose secret its runs take: the buyer's (in the place of any
    /// seller's), the seller's, or none yet (null: a run whose node needs
    /// it says it is not set, unless the operator's host provides it, as
    /// for a model provider's key).
    set_by: Option<SetBy>,
}

/// Who set a secret.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum SetBy {
    Buyer,
    Seller,
}

/// The global variables the agent's flow version reads (from its
/// manifest), and whose secret fills each (owners and admins of the
/// consumer). Versions imported before manifests named them list none.
#[utoipa::path(
    get,
    path = "/api/customer-agent-configs/{id}/variables",
    params(("id" = String, Path, description = "Customer agent config id.")),
    responses(
        (status = 200, description = "The variables, sorted by name.", body = Vec<Variable>),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
    ),
)]
async fn list_variables(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<Variable>>> {
    let config = agent_configs::load(&state, &user, &id, true).await?;
    let row = sqlx::query(
        "SELECT v.manifest, v.provider_agent_id FROM resource r JOIN flow_version v ON v.id = r.flow_version_id \
         WHERE r.id = $1",
    )
    .bind(&config.resource_id)
    .fetch_one(state.db.pool())
    .await?;
    let manifest: String = row.try_get("manifest")?;
    let manifest: sandflow_flow_compiler::Manifest = serde_json::from_str(&manifest).map_err(Error::internal)?;
    let agent: String = row.try_get("provider_agent_id")?;
    let names = |secrets: Vec<SecretOut>| secrets.into_iter().map(|s| s.name).collect::<Vec<_>>();
    let buyers = names(stored_secrets::list(state.db.pool(), Owner::Buyer(&config.resource_id)).await?);
    let sellers = names(stored_secrets::list(state.db.pool(), Owner::Seller(&agent)).await?);
    let variables = manifest
        .variables
        .into_iter()
        .map(|name| {
            let set_by = if buyers.contains(&name) {
                Some(SetBy::Buyer)
            } else if sellers.contains(&name) {
                Some(SetBy::Seller)
            } else {
                None
            };
            Variable { name, set_by }
        })
        .collect();
    Ok(Json(variables))
}
