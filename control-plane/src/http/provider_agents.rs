//! `/api/provider-agents/`: the agents a provider organisation sells, their
//! immutable flow versions, validation, import and usage stats.
//!
//! Members of the owning organisation read; owners and admins write, and
//! only once the organisation is an approved provider. Anyone signed in may
//! validate a flow. An import compiles the Langflow export and stores a new
//! version (number, `sha256:` digest, manifest, diagnostics, the export and
//! the component bytes); versions are never changed. Importing the flow the
//! latest version already holds returns that version instead of a copy.

use super::Path;
use super::organizations::authorize;
use super::paging::{Listing, Page, PageParams, Paging};
use super::{JsonBody, RawJson, required_text};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::{new_id, now_ms, sum_of};
use crate::error::{Error, Result};
use crate::secrets::Owner;
use crate::stored_secrets;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sandflow_flow_compiler::{CompileError, CompileOptions, Diagnostics};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "provider-agents",
        OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(validate_flow))
            .routes(routes!(show, update, remove))
            .routes(routes!(import_flow))
            .routes(routes!(versions))
            .routes(routes!(version))
            .routes(routes!(artifact))
            .routes(routes!(stats)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// A provider agent as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AgentOut {
    pub(super) id: String,
    pub(super) organization: String,
    name: String,
    description: String,
    /// The newest flow version's number (null: none imported yet).
    latest_version: Option<i64>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

const AGENT_COLUMNS: &str = "a.id, a.organization_id, a.name, a.description, a.created_at, a.updated_at, \
     (SELECT MAX(v.version) FROM flow_version v WHERE v.provider_agent_id = a.id) AS latest_version";

fn agent_out(row: &AnyRow) -> Result<AgentOut> {
    Ok(AgentOut {
        id: row.try_get("id")?,
        organization: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        latest_version: row.try_get("latest_version")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// Loads an agent the caller may see (404 otherwise) and checks the role.
pub(super) async fn load(state: &AppState, user: &CurrentUser, id: &str, need_manage: bool) -> Result<AgentOut> {
    let row = sqlx::query(&format!("SELECT {AGENT_COLUMNS} FROM provider_agent a WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("no provider agent `{id}` among yours")))?;
    let agent = agent_out(&row)?;
    authorize(state, user, &agent.organization, need_manage).await.map_err(|e| match e {
        Error::NotFound(_) => Error::NotFound(format!("no provider agent `{id}` among yours")),
        other => other,
    })?;
    Ok(agent)
}

/// Refuses (403) unless `org` is an approved service provider.
pub(crate) async fn ensure_provider(state: &AppState, org: &str) -> Result<()> {
    let status: String = sqlx::query_scalar("SELECT provider_status FROM organization WHERE id = $1")
        .bind(org)
        .fetch_one(state.db.pool())
        .await?;
    if status != "approved" {
        return Err(Error::Forbidden(format!(
            "the organisation is not an approved service provider (status `{status}`): \
             POST /api/organizations/{org}/provider-request and wait for an operator"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this organisation's agents (members; operators read any).
    organization: Option<String>,
}

/// Agents of the caller's organisations (or of one, `?organization=`).
#[utoipa::path(
    get,
    path = "/api/provider-agents",
    params(ListQuery, PageParams),
    responses(
        (status = 200, description = "The agents.", body = Vec<AgentOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any."))),
        (status = 404, description = "`organization` is not one of the caller's (`not_found`).", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Listing { filters: query, paging }: Listing<ListQuery>,
) -> Result<Page<AgentOut>> {
    if let Some(org) = &query.organization {
        authorize(&state, &user, org, false).await?;
    }
    // `organization` was authorised above: an operator may read any.
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {AGENT_COLUMNS} FROM provider_agent a \
         WHERE CASE WHEN $2 = '' \
               THEN a.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $1) \
               ELSE a.organization_id = $2 END \
         ORDER BY a.name, a.id"
    )))
    .bind(&user.id)
    .bind(query.organization.as_deref().unwrap_or(""))
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(agent_out).collect::<Result<_>>().map(|items| paging.page(items))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    /// The owning organisation (an approved provider).
    organization: String,
    name: String,
    #[serde(default)]
    description: String,
}

/// Creates an agent (owners and admins of an approved provider).
#[utoipa::path(
    post,
    path = "/api/provider-agents",
    request_body = CreateAgent,
    responses(
        (status = 201, description = "The agent.", body = AgentOut),
        (status = 403, description = "Not an owner or admin, or not an approved provider.", body = ErrorBody),
        (status = 404, description = "The organisation is not one of the caller's (`not_found`).", body = ErrorBody),
        (status = 409, description = "The name is taken (`conflict`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<AgentOut>)> {
    authorize(&state, &user, &body.organization, true).await?;
    ensure_provider(&state, &body.organization).await?;
    let name = required_text("name", &body.name, 200)?;
    let description = check_description(&body.description)?;
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO provider_agent (id, organization_id, name, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(&body.organization)
    .bind(&name)
    .bind(&description)
    .bind(now)
    .execute(state.db.pool())
    .await?;
    let agent = AgentOut {
        id,
        organization: body.organization,
        name,
        description,
        latest_version: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Trims a description and bounds it to 10,000 characters.
pub(crate) fn check_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > 10_000 {
        return Err(Error::Invalid("`description` must be at most 10000 characters".into()));
    }
    Ok(description.to_owned())
}

/// One agent (members of its organisation; operators read any).
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}",
    params(("id" = String, Path, description = "Provider agent id.")),
    responses((status = 200, description = "The agent.", body = AgentOut)),
)]
async fn show(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<AgentOut>> {
    load(&state, &user, &id, false).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    name: Option<String>,
    description: Option<String>,
}

/// Renames or re-describes an agent (owners and admins).
#[utoipa::path(
    patch,
    path = "/api/provider-agents/{id}",
    params(("id" = String, Path, description = "Provider agent id.")),
    request_body = UpdateAgent,
    responses(
        (status = 200, description = "The agent.", body = AgentOut),
        (status = 403, description = "Not an owner or admin.", body = ErrorBody),
        (status = 409, description = "The name is taken (`conflict`).", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateAgent>,
) -> Result<Json<AgentOut>> {
    let agent = load(&state, &user, &id, true).await?;
    let name = body.name.as_deref().map(|n| required_text("name", n, 200)).transpose()?.unwrap_or(agent.name);
    let description = body.description.as_deref().map(check_description).transpose()?.unwrap_or(agent.description);
    sqlx::query("UPDATE provider_agent SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
        .bind(&name)
        .bind(&description)
        .bind(now_ms())
        .bind(&id)
        .execute(state.db.pool())
        .await?;
    load(&state, &user, &id, false).await.map(Json)
}

/// Deletes an agent that has no flow versions yet (versions are immutable
/// records that usage and, later, orders refer to), with its seller's
/// secrets. Owners and admins.
#[utoipa::path(
    delete,
    path = "/api/provider-agents/{id}",
    params(("id" = String, Path, description = "Provider agent id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an owner or admin.", body = ErrorBody),
        (status = 409, description = "It has flow versions (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn remove(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<StatusCode> {
    let agent = load(&state, &user, &id, true).await?;
    if agent.latest_version.is_some() {
        return Err(Error::InvalidTransition(
            "the agent has imported flow versions, which are kept: it cannot be deleted".into(),
        ));
    }
    // Locked before its secrets, as a change to them does. The seller's
    // secrets go with the agent (no buyer has it); the guard repeats the
    // check, in case an import landed in between, and then keeps them.
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE provider_agent SET updated_at = updated_at WHERE id = $1").bind(&id).execute(&mut *tx).await?;
    stored_secrets::delete_all(&mut tx, Owner::Seller(&id)).await?;
    let deleted = sqlx::query(
        "DELETE FROM provider_agent WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM flow_version WHERE provider_agent_id = $1)",
    )
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::InvalidTransition("the agent has imported flow versions: it cannot be deleted".into()));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A flow that would compile, with its warnings.
#[derive(Debug, Serialize, ToSchema)]
struct Validation {
    valid: bool,
    error_count: usize,
    warning_count: usize,
    /// Every diagnostic: code, node, field, JSON pointer, what to do.
    #[schema(value_type = Vec<Object>)]
    diagnostics: Diagnostics,
}

/// Checks a Langflow export (the body) and returns every diagnostic:
/// 200 when it would compile (warnings allowed), 422 with the same
/// diagnostics when it would not. Anyone signed in.
#[utoipa::path(
    post,
    path = "/api/provider-agents/validate_flow",
    request_body(content = Object, description = "A Langflow export, as Langflow's Export writes it."),
    responses(
        (status = 200, description = "The flow would compile.", body = Validation),
        (status = 422, description = "The flow has errors (`invalid_flow`, every one in `diagnostics`).",
         body = ErrorBody),
    ),
)]
async fn validate_flow(_user: CurrentUser, RawJson(source): RawJson) -> Result<Json<Validation>> {
    let diagnostics = tokio::task::spawn_blocking(move || {
        let (_plan, diagnostics) = sandflow_flow_compiler::check(&source, &CompileOptions::default());
        diagnostics
    })
    .await
    .map_err(Error::internal)?;
    if diagnostics.has_errors() {
        return Err(Error::InvalidFlow(diagnostics));
    }
    let warning_count = diagnostics.iter().count();
    Ok(Json(Validation { valid: true, error_count: 0, warning_count, diagnostics }))
}

/// An immutable flow version.
#[derive(Debug, Serialize, ToSchema)]
struct VersionOut {
    provider_agent: String,
    /// 1, 2, … per agent.
    version: i64,
    /// `sha256:` digest of the component.
    digest: String,
    /// The component's manifest (inputs, outputs, capabilities, nodes).
    #[schema(value_type = Object)]
    manifest: serde_json::Value,
    /// The compiler's warnings.
    #[schema(value_type = Vec<Object>)]
    diagnostics: serde_json::Value,
    created_by: String,
    created_at_ms: i64,
}

const VERSION_COLUMNS: &str = "provider_agent_id, version, digest, manifest, diagnostics, created_by, created_at";

fn version_out(row: &AnyRow) -> Result<VersionOut> {
    let json = |column: &str| -> Result<serde_json::Value> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(Error::internal)
    };
    Ok(VersionOut {
        provider_agent: row.try_get("provider_agent_id")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        manifest: json("manifest")?,
        diagnostics: json("diagnostics")?,
        created_by: row.try_get("created_by")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Compiles the export (the body) and stores it as the agent's next
/// version: 201 with the version, or 200 with the latest version when it
/// already holds this very component; 422 with diagnostics when the flow
/// does not compile (nothing is stored). Owners and admins of an approved
/// provider.
#[utoipa::path(
    post,
    path = "/api/provider-agents/{id}/import_flow",
    params(("id" = String, Path, description = "Provider agent id.")),
    request_body(content = Object, description = "A Langflow export, as Langflow's Export writes it."),
    responses(
        (status = 201, description = "The new version.", body = VersionOut),
        (status = 200, description = "The latest version already holds this component.", body = VersionOut),
        (status = 403, description = "Not an owner or admin, or not an approved provider.", body = ErrorBody),
        (status = 409, description = "Another import took the number (`conflict`).", body = ErrorBody),
        (status = 422, description = "The flow has errors (`invalid_flow`, every one in `diagnostics`).",
         body = ErrorBody),
    ),
)]
async fn import_flow(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    RawJson(source): RawJson,
) -> Result<Response> {
    let agent = load(&state, &user, &id, true).await?;
    ensure_provider(&state, &agent.organization).await?;
    let source = source.to_vec();
    let (source, compiled) = tokio::task::spawn_blocking(move || {
        let compiled = sandflow_flow_compiler::compile(&source, &CompileOptions::default());
        (source, compiled)
    })
    .await
    .map_err(Error::internal)?;
    let (artifact, diagnostics) = match compiled {
        Ok(done) => done,
        Err(CompileError::Invalid(diagnostics)) => return Err(Error::InvalidFlow(diagnostics)),
        Err(CompileError::Codegen(e)) => return Err(Error::internal(format!("compiler bug: {e}"))),
    };
    let manifest = serde_json::to_string(&artifact.manifest).map_err(Error::internal)?;
    let diagnostics = serde_json::to_string(&diagnostics).map_err(Error::internal)?;
    let digest = artifact.manifest.digest.clone();

    let mut tx = state.db.begin().await?;
    let latest = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM flow_version WHERE provider_agent_id = $1 ORDER BY version DESC LIMIT 1"
    ))
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(latest) = &latest
        && latest.try_get::<String, _>("digest")? == digest
    {
        return Ok(Json(version_out(latest)?).into_response());
    }
    let next = match &latest {
        Some(latest) => latest.try_get::<i64, _>("version")? + 1,
        None => 1,
    };
    // Two imports racing for the same number: the unique (agent, version)
    // key lets one win and answers the other with 409.
    let row = sqlx::query(&format!(
        "INSERT INTO flow_version (id, provider_agent_id, version, digest, manifest, diagnostics, source, artifact, \
         created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         RETURNING {VERSION_COLUMNS}"
    ))
    .bind(new_id())
    .bind(&id)
    .bind(next)
    .bind(&digest)
    .bind(&manifest)
    .bind(&diagnostics)
    .bind(source)
    .bind(artifact.component)
    .bind(&user.id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    let out = version_out(&row)?;
    sqlx::query("UPDATE provider_agent SET updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(agent = %id, version = next, %digest, "flow version imported");
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// The agent's versions, oldest first (members; operators read any).
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}/versions",
    params(("id" = String, Path, description = "Provider agent id."), PageParams),
    responses((status = 200, description = "The versions.", body = Vec<VersionOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn versions(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Page<VersionOut>> {
    load(&state, &user, &id, false).await?;
    let rows = sqlx::query(
        &paging
            .sql(&format!("SELECT {VERSION_COLUMNS} FROM flow_version WHERE provider_agent_id = $1 ORDER BY version")),
    )
    .bind(&id)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(version_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One version (members; operators read any).
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}/versions/{version}",
    params(("id" = String, Path, description = "Provider agent id."), ("version" = i64, Path, description = "Version number.")),
    responses((status = 200, description = "The version.", body = VersionOut)),
)]
async fn version(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Json<VersionOut>> {
    load(&state, &user, &id, false).await?;
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM flow_version WHERE provider_agent_id = $1 AND version = $2"
    ))
    .bind(&id)
    .bind(version)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| Error::NotFound(format!("the agent has no version {version}")))?;
    version_out(&row).map(Json)
}

/// The compiled component (`flow.wasm`) of one version (members;
/// operators read any).
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}/versions/{version}/artifact",
    params(("id" = String, Path, description = "Provider agent id."), ("version" = i64, Path, description = "Version number.")),
    responses(
        (status = 200, description = "The component; `ETag` is its digest.", body = Vec<u8>,
         content_type = "application/wasm"),
    ),
)]
async fn artifact(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Response> {
    load(&state, &user, &id, false).await?;
    let row = sqlx::query("SELECT digest, artifact FROM flow_version WHERE provider_agent_id = $1 AND version = $2")
        .bind(&id)
        .bind(version)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("the agent has no version {version}")))?;
    let digest: String = row.try_get("digest")?;
    let bytes: Vec<u8> = row.try_get("artifact")?;
    Ok(([(header::CONTENT_TYPE, "application/wasm".to_owned()), (header::ETAG, format!("\"{digest}\""))], bytes)
        .into_response())
}

/// Usage sums of a flow version or agent.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = AgentUsage)]
struct Totals {
    runs: i64,
    completed: i64,
    failed: i64,
    tenants: i64,
    fuel: i64,
    tokens_in: i64,
    tokens_out: i64,
    wall_micros: i64,
    bytes_in: i64,
    bytes_out: i64,
    http_bytes: i64,
    last_run_at_ms: Option<i64>,
}

/// An agent's usage, in total and per version.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AgentStats)]
struct Stats {
    provider_agent: String,
    #[serde(flatten)]
    totals: Totals,
    by_version: Vec<VersionStats>,
}

/// One version's usage.
#[derive(Debug, Serialize, ToSchema)]
struct VersionStats {
    flow_version: String,
    #[serde(flatten)]
    totals: Totals,
}

const TOTALS: &str = concat!(
    "COUNT(*) AS runs, \
     CAST(COALESCE(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS completed, \
     COUNT(DISTINCT tenant) AS tenants, ",
    crate::sql_sum!("fuel"),
    " AS fuel, ",
    crate::sql_sum!("tokens_in"),
    " AS tokens_in, ",
    crate::sql_sum!("tokens_out"),
    " AS tokens_out, ",
    crate::sql_sum!("wall_micros"),
    " AS wall_micros, ",
    crate::sql_sum!("bytes_in"),
    " AS bytes_in, ",
    crate::sql_sum!("bytes_out"),
    " AS bytes_out, ",
    crate::sql_sum!("http_bytes"),
    " AS http_bytes, MAX(started_at_ms) AS last_run_at_ms"
);

/// The ledger's runs of agent `$1`: of the resources its offerings were
/// ordered as (the ledger's `subscription`, or without one its `agent`, is
/// the resource id), on its own flow versions. A digest alone is not
/// enough: another seller who imports the very same export has the same
/// digest, and their buyers' runs are not this agent's.
const OWN_RUNS: &str = "COALESCE(subscription, agent) IN (SELECT r.id FROM resource r \
     JOIN offering o ON o.id = r.offering_id WHERE o.provider_agent_id = $1) \
     AND flow_version IN (SELECT digest FROM flow_version WHERE provider_agent_id = $1)";

fn totals(row: &AnyRow) -> Result<Totals> {
    let runs: i64 = row.try_get("runs")?;
    let completed: i64 = row.try_get("completed")?;
    Ok(Totals {
        runs,
        completed,
        failed: runs - completed,
        tenants: row.try_get("tenants")?,
        fuel: sum_of(row, "fuel")?,
        tokens_in: sum_of(row, "tokens_in")?,
        tokens_out: sum_of(row, "tokens_out")?,
        wall_micros: sum_of(row, "wall_micros")?,
        bytes_in: sum_of(row, "bytes_in")?,
        bytes_out: sum_of(row, "bytes_out")?,
        http_bytes: sum_of(row, "http_bytes")?,
        last_run_at_ms: row.try_get("last_run_at_ms")?,
    })
}

/// Usage of the agent by its buyers, from the ledger: runs (each counted
/// once) of the resources ordered from its offerings, outcomes, distinct
/// tenants and resources used, in total and per version digest. Members;
/// operators read any.
#[utoipa::path(
    get,
    path = "/api/provider-agents/{id}/stats",
    params(("id" = String, Path, description = "Provider agent id.")),
    responses((status = 200, description = "The usage.", body = Stats)),
)]
async fn stats(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<Stats>> {
    load(&state, &user, &id, false).await?;
    let rows = sqlx::query(&format!(
        "SELECT flow_version, {TOTALS} FROM usage_record WHERE {OWN_RUNS} GROUP BY flow_version ORDER BY flow_version"
    ))
    .bind(&id)
    .fetch_all(state.db.pool())
    .await?;
    let by_version = rows
        .iter()
        .map(|r| Ok(VersionStats { flow_version: r.try_get("flow_version")?, totals: totals(r)? }))
        .collect::<Result<Vec<_>>>()?;
    let row = sqlx::query(&format!("SELECT {TOTALS} FROM usage_record WHERE {OWN_RUNS}"))
        .bind(&id)
        .fetch_one(state.db.pool())
        .await?;
    Ok(Json(Stats { provider_agent: id, totals: totals(&row)?, by_version }))
}
