//! Agent API keys: `POST/GET /api/customer-agent-configs/{id}/api_keys`,
//! `GET /api/agent-api-keys/`, `DELETE /api/agent-api-keys/{id}` (revoke)
//! and `POST /api/agent-api-keys/{id}/regenerate`; owners and admins of
//! the consumer organisation only.
//!
//! A key is a JWT ([`crate::keys`]) for one resource: the runtime hosts
//! check it offline. Its text is shown once, at creation; the database
//! keeps its SHA-256 and its first 12 characters. Revoking emits
//! `key.revoked` to the runtime hosts in the same transaction.

use super::agent_configs;
use super::paging::{Page, PageParams, Paging};
use super::{Empty, JsonBody, OptionalJsonBody, Path, required_text};
use crate::AppState;
use crate::auth::{CurrentUser, token_hash};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::feed;
use crate::keys::{self, Claims};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "agent-api-keys",
        OpenApiRouter::new()
            .routes(routes!(list_for_config, create))
            .routes(routes!(list))
            .routes(routes!(revoke))
            .routes(routes!(regenerate)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// Characters of the key text kept to recognise it by.
pub const PREFIX_CHARS: usize = 12;
/// Lifetime of a key when `expires_in_days` is not given.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest lifetime.
pub const MAX_DAYS: u32 = 3650;
const DAY_MS: i64 = 86_400_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Run the agent from a server.
    Run,
    /// Run the agent from the chat widget in a browser.
    Widget,
}

/// A key as the API lists it (never its text).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyOut {
    id: String,
    config_id: String,
    resource_id: String,
    organization_id: String,
    name: String,
    /// The key's first 12 characters.
    prefix: String,
    scopes: Vec<Scope>,
    /// Which signing secret signed it.
    kid: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
}

/// A key just made: the listing plus its text, shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct NewKey {
    #[serde(flatten)]
    listing: KeyOut,
    /// The key (a JWT), for `x-api-key` on the runtime. Shown only now.
    key: String,
}

const KEY_COLUMNS: &str = "id, config_id, resource_id, organization_id, name, prefix, scopes, kid, created_at, \
     expires_at, revoked_at, last_used_at";

fn key_out(row: &AnyRow) -> Result<KeyOut> {
    let scopes: String = row.try_get("scopes")?;
    Ok(KeyOut {
        id: row.try_get("id")?,
        config_id: row.try_get("config_id")?,
        resource_id: row.try_get("resource_id")?,
        organization_id: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: serde_json::from_str(&scopes).map_err(Error::internal)?,
        kid: row.try_get("kid")?,
        created_at_ms: row.try_get("created_at")?,
        expires_at_ms: row.try_get("expires_at")?,
        revoked_at_ms: row.try_get("revoked_at")?,
        last_used_at_ms: row.try_get("last_used_at")?,
    })
}

/// What a new key is made of.
struct Spec<'a> {
    config_id: &'a str,
    resource_id: &'a str,
    organization_id: &'a str,
    name: &'a str,
    scopes: &'a [Scope],
    lifetime_ms: i64,
}

/// Signs and stores a key for an `ok` resource, inside `tx`.
async fn mint(state: &AppState, tx: &mut Transaction<'_, Any>, user: &CurrentUser, spec: &Spec<'_>) -> Result<NewKey> {
    // A guarded write, not a read: it holds the resource's row until the
    // key is committed, so a termination racing this waits for it and then
    // revokes this key too.
    let plan: Option<String> =
        sqlx::query_scalar("UPDATE resource SET updated_at = $1 WHERE id = $2 AND state = 'ok' RETURNING plan_id")
            .bind(now_ms())
            .bind(spec.resource_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(plan) = plan else {
        let resource_state: String = sqlx::query_scalar("SELECT state FROM resource WHERE id = $1")
            .bind(spec.resource_id)
            .fetch_one(&mut **tx)
            .await?;
        return Err(Error::InvalidTransition(format!(
            "the subscription is {resource_state}; keys are made only for subscriptions that are ok"
        )));
    };
    let rpm: Option<i64> = sqlx::query_scalar("SELECT requests_per_minute FROM plan WHERE id = $1")
        .bind(&plan)
        .fetch_one(&mut **tx)
        .await?;
    let rpm = rpm.map(u32::try_from).transpose().map_err(Error::internal)?;
    let id = new_id();
    let now = now_ms();
    let expires_at = now.saturating_add(spec.lifetime_ms);
    let scopes: Vec<String> =
        spec.scopes.iter().map(|s| if *s == Scope::Run { "run".to_owned() } else { "widget".to_owned() }).collect();
    let claims = Claims {
        sub: id.clone(),
        tenant: spec.organization_id.to_owned(),
        agents: vec![spec.resource_id.to_owned()],
        scopes,
        subscription: Some(spec.resource_id.to_owned()),
        rpm,
        exp: u64::try_from(expires_at / 1000).map_err(Error::internal)?,
    };
    let (text, kid) = keys::issue(&state.config, &claims)?;
    let prefix: String = text.chars().take(PREFIX_CHARS).collect();
    let row = sqlx::query(&format!(
        "INSERT INTO agent_api_key (id, config_id, resource_id, organization_id, name, prefix, key_hash, scopes, kid, \
         created_by, expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(&id)
    .bind(spec.config_id)
    .bind(spec.resource_id)
    .bind(spec.organization_id)
    .bind(spec.name)
    .bind(&prefix)
    .bind(token_hash(&text))
    .bind(serde_json::to_string(spec.scopes).map_err(Error::internal)?)
    .bind(&kid)
    .bind(&user.id)
    .bind(expires_at)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    tracing::info!(key = %id, resource = %spec.resource_id, %kid, "agent API key issued");
    Ok(NewKey { listing: key_out(&row)?, key: text })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    /// Default `["run"]`.
    scopes: Option<Vec<Scope>>,
    /// 1 to 3650, default 365.
    expires_in_days: Option<u32>,
}

/// Makes a key for the config's resource: 201 with its text, shown once
/// (owners and admins of the consumer).
#[utoipa::path(
    post,
    path = "/api/customer-agent-configs/{id}/api_keys",
    params(("id" = String, Path, description = "Customer agent config id.")),
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its text.", body = NewKey),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
        (status = 409, description = "The subscription is not ok (`invalid_transition`).", body = ErrorBody),
        (status = 503, description = "No key signing secret is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>)> {
    let config = agent_configs::load(&state, &user, &id, true).await?;
    let name = required_text("name", &body.name, 100)?;
    let mut scopes = body.scopes.unwrap_or_else(|| vec![Scope::Run]);
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::Invalid("`scopes` must hold `run`, `widget` or both".into()));
    }
    let days = body.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::Invalid(format!("`expires_in_days` must be from 1 to {MAX_DAYS}")));
    }
    let spec = Spec {
        config_id: &config.id,
        resource_id: &config.resource_id,
        organization_id: &config.organization_id,
        name: &name,
        scopes: &scopes,
        lifetime_ms: i64::from(days) * DAY_MS,
    };
    let mut tx = state.db.begin().await?;
    let key = mint(&state, &mut tx, &user, &spec).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// The config's keys, newest first (owners and admins of the consumer).
#[utoipa::path(
    get,
    path = "/api/customer-agent-configs/{id}/api_keys",
    params(("id" = String, Path, description = "Customer agent config id."), PageParams),
    responses(
        (status = 200, description = "The keys (never their text).", body = Vec<KeyOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any."))),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
    ),
)]
async fn list_for_config(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Page<KeyOut>> {
    agent_configs::load(&state, &user, &id, true).await?;
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {KEY_COLUMNS} FROM agent_api_key WHERE config_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(&id)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(key_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// Keys of every organisation the caller owns or administers.
#[utoipa::path(
    get,
    path = "/api/agent-api-keys",
    params(PageParams),
    responses((status = 200, description = "The keys (never their text).", body = Vec<KeyOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(State(state): State<AppState>, user: CurrentUser, paging: Paging) -> Result<Page<KeyOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {KEY_COLUMNS} FROM agent_api_key WHERE organization_id IN \
         (SELECT organization_id FROM membership WHERE user_id = $1 AND role IN ('owner', 'admin')) \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(&user.id)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(key_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// Loads a key the caller manages (404 for keys of other organisations,
/// 403 for plain members).
async fn load(state: &AppState, user: &CurrentUser, id: &str) -> Result<KeyOut> {
    let not_found = || Error::NotFound(format!("no agent API key `{id}` among yours"));
    let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM agent_api_key WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(not_found)?;
    let key = key_out(&row)?;
    super::organizations::authorize(state, user, &key.organization_id, true).await.map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        other => other,
    })?;
    Ok(key)
}

/// Revokes `id` inside `tx` (a guarded update: 409 when already revoked)
/// and tells the runtime hosts.
async fn revoke_in(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    let now = now_ms();
    let expires_at: i64 = sqlx::query_scalar(
        "UPDATE agent_api_key SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL \
         RETURNING expires_at",
    )
    .bind(now)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::InvalidTransition("the key is already revoked".into()))?;
    feed::key_revoked(tx, id, expires_at).await?;
    Ok(())
}

/// Revokes a key; the runtime hosts stop taking it within a poll interval
/// (owners and admins of the consumer).
#[utoipa::path(
    delete,
    path = "/api/agent-api-keys/{id}",
    params(("id" = String, Path, description = "Agent API key id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
        (status = 409, description = "Already revoked (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn revoke(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<StatusCode> {
    load(&state, &user, &id).await?;
    let mut tx = state.db.begin().await?;
    revoke_in(&mut tx, &id).await?;
    tx.commit().await?;
    tracing::info!(key = %id, "agent API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the key and makes a new one like it (name, scopes, lifetime);
/// owners and admins of the consumer.
#[utoipa::path(
    post,
    path = "/api/agent-api-keys/{id}/regenerate",
    params(("id" = String, Path, description = "Agent API key id.")),
    request_body = Option<Empty>,
    responses(
        (status = 201, description = "The new key, with its text.", body = NewKey),
        (status = 403, description = "Not an owner or admin of the consumer.", body = ErrorBody),
        (status = 409, description = "Already revoked, or the subscription is not ok (`invalid_transition`).",
         body = ErrorBody),
        (status = 503, description = "No key signing secret is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn regenerate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Empty {}): OptionalJsonBody<Empty>,
) -> Result<(StatusCode, Json<NewKey>)> {
    let old = load(&state, &user, &id).await?;
    let spec = Spec {
        config_id: &old.config_id,
        resource_id: &old.resource_id,
        organization_id: &old.organization_id,
        name: &old.name,
        scopes: &old.scopes,
        lifetime_ms: (old.expires_at_ms - old.created_at_ms).max(DAY_MS),
    };
    let mut tx = state.db.begin().await?;
    // The resource's row before the key's, the order deprovisioning takes
    // them in, so the two cannot deadlock.
    let key = mint(&state, &mut tx, &user, &spec).await?;
    revoke_in(&mut tx, &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(key)))
}
