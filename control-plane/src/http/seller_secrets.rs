//! `/api/provider-agents/{id}/secrets/`: the seller's secrets for one
//! provider agent ([`crate::secrets`]): the global variables its flow
//! names for services the seller pays for (`TAVILY_API_KEY`), given to
//! every buyer's agent of it. A buyer's secret of the same name takes the
//! place of the seller's ([`super::agent_secrets`]). Owners and admins of
//! the provider organisation list their names and set or delete them (set
//! once it is an approved provider); no answer ever carries a value, and
//! buyers see only their names (`GET
//! /api/customer-agent-configs/{id}/variables`).
//!
//! A change is sent, in the same transaction, as a new `agent.provisioned`
//! (names only) for each buyer's agent of the provider agent that the
//! hosts may be serving ([`feed::lock_served_resources`]), and provisioning
//! locks the provider agent too, so a subscription provisioned meanwhile
//! starts with them or hears of the change; the hosts then
//! fetch the values with `GET /api/runtime/agents/{id}/secrets`
//! ([`super::runtime`]).

use super::agent_secrets::SetSecret;
use super::provider_agents::{ensure_provider, load};
use super::{JsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::feed::{self, Holder};
use crate::secrets::Owner;
use crate::stored_secrets::{self, SecretOut};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sqlx::{Any, Transaction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type ErrorBody = crate::error::ErrorBody;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "provider-agents",
        OpenApiRouter::new().routes(routes!(list_secrets)).routes(routes!(set_secret, delete_secret)),
    )
}

/// Locks provider agent `agent` for a change to its secrets (changes queue
/// here, so two new secrets cannot race past the cap) and returns its
/// buyers' agents that must hear of it, locked too.
async fn lock(tx: &mut Transaction<'_, Any>, agent: &str) -> Result<Vec<String>> {
    let locked = sqlx::query("UPDATE provider_agent SET updated_at = updated_at WHERE id = $1")
        .bind(agent)
        .execute(&mut **tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no provider agent `{agent}` among yours")));
    }
    feed::lock_served_resources(tx, Holder::Agent(agent)).await
}

/// The seller's secrets of a provider agent, by name (owners and admins).
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}/secrets",
    params(("id" = String, Path, description = "Provider agent id.")),
    responses(
        (status = 200, description = "Names and dates, never values.", body = Vec<SecretOut>),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
    ),
)]
async fn list_secrets(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<SecretOut>>> {
    let agent = load(&state, &user, &id, true).await?;
    stored_secrets::list(state.db.pool(), Owner::Seller(&agent.id)).await.map(Json)
}

/// Sets secret `name` for every buyer of the agent and the hosts it may go
/// to (creating or replacing it; owners and admins of an approved
/// provider). At most 64 per agent.
#[utoipa::path(
    put,
    path = "/api/provider-agents/{id}/secrets/{name}",
    params(
        ("id" = String, Path, description = "Provider agent id."),
        ("name" = String, Path, description = "The global variable name, e.g. `TAVILY_API_KEY`."),
    ),
    request_body = SetSecret,
    responses(
        (status = 200, description = "Set; the value is not echoed.", body = SecretOut),
        (status = 403, description = "Not an owner or admin of an approved provider.", body = ErrorBody),
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
    let agent = load(&state, &user, &id, true).await?;
    ensure_provider(&state, &agent.organization).await?;
    let owner = Owner::Seller(&agent.id);
    let (sealed, hosts) = body.sealed(&state, owner, &name)?;
    let mut tx = state.db.begin().await?;
    let buyers = lock(&mut tx, &agent.id).await?;
    let out = stored_secrets::put(&mut tx, owner, name, &sealed, hosts).await?;
    feed::reprovision(&mut tx, &buyers).await?;
    tx.commit().await?;
    tracing::info!(provider_agent = %agent.id, secret = %out.name, agents = buyers.len(), "seller secret set");
    Ok(Json(out))
}

/// Deletes secret `name` (owners and admins, whatever the provider's
/// standing): the buyers' agents lose it at once.
#[utoipa::path(
    delete,
    path = "/api/provider-agents/{id}/secrets/{name}",
    params(
        ("id" = String, Path, description = "Provider agent id."),
        ("name" = String, Path, description = "The global variable name."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 404, description = "No such secret on this agent (`not_found`).", body = ErrorBody),
    ),
)]
async fn delete_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    let agent = load(&state, &user, &id, true).await?;
    let mut tx = state.db.begin().await?;
    let buyers = lock(&mut tx, &agent.id).await?;
    stored_secrets::delete(&mut tx, Owner::Seller(&agent.id), &name).await?;
    feed::reprovision(&mut tx, &buyers).await?;
    tx.commit().await?;
    tracing::info!(provider_agent = %agent.id, secret = %name, agents = buyers.len(), "seller secret deleted");
    Ok(StatusCode::NO_CONTENT)
}
