//! `GET/PUT /api/quotas/{organization_id}` (operators): what a tenant may
//! use per month and per run. A `PUT` replaces the quota (null: the runtime
//! host's default) and, in the same transaction, emits `quota.set` and a new
//! `agent.provisioned` for each of the tenant's `ok` resources, whose
//! per-run limits come from it.

use super::organizations::org_exists;
use super::{JsonBody, Path};
use crate::AppState;
use crate::auth::Operator;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::feed::{self, Holder};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("quotas", OpenApiRouter::new().routes(routes!(show, replace)))
}

/// A tenant's quota; every field is nullable (null: no limit of ours).
#[derive(Debug, Default, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Runs per calendar month (UTC).
    #[serde(default)]
    pub runs_per_month: Option<i64>,
    /// Fuel per month.
    #[serde(default)]
    pub fuel_per_month: Option<i64>,
    /// LLM tokens (in + out) per month.
    #[serde(default)]
    pub tokens_per_month: Option<i64>,
    /// Requests per minute for the tenant.
    #[serde(default)]
    pub requests_per_minute: Option<i64>,
    /// Linear memory one run may use, in bytes.
    #[serde(default)]
    pub memory_bytes_per_run: Option<i64>,
    /// Wall-clock deadline of one run, in milliseconds.
    #[serde(default)]
    pub deadline_ms: Option<i64>,
    /// Fuel one run may burn.
    #[serde(default)]
    pub fuel_per_run: Option<i64>,
}

const COLUMNS: [&str; 7] = [
    "runs_per_month",
    "fuel_per_month",
    "tokens_per_month",
    "requests_per_minute",
    "memory_bytes_per_run",
    "deadline_ms",
    "fuel_per_run",
];

impl Quota {
    fn values(&self) -> [Option<i64>; 7] {
        [
            self.runs_per_month,
            self.fuel_per_month,
            self.tokens_per_month,
            self.requests_per_minute,
            self.memory_bytes_per_run,
            self.deadline_ms,
            self.fuel_per_run,
        ]
    }

    fn check(&self) -> Result<()> {
        for (field, value) in COLUMNS.iter().zip(self.values()) {
            if value.is_some_and(|v| v < 0) {
                return Err(Error::Invalid(format!("`{field}` must not be negative (null: no limit)")));
            }
        }
        if self.requests_per_minute.is_some_and(|rpm| rpm < 1 || rpm > i64::from(u32::MAX)) {
            return Err(Error::Invalid("`requests_per_minute` must be from 1 to 4294967295, or null".into()));
        }
        Ok(())
    }
}

async fn ensure_org(state: &AppState, org: &str) -> Result<()> {
    if org_exists(state, org).await? { Ok(()) } else { Err(Error::NotFound(format!("no organisation `{org}`"))) }
}

/// The tenant's quota (operators); all null when none was set.
#[utoipa::path(
    get,
    path = "/api/quotas/{organization_id}",
    params(("organization_id" = String, Path, description = "Organisation id.")),
    responses(
        (status = 200, description = "The quota.", body = Quota),
        (status = 403, description = "Not an operator.", body = crate::error::ErrorBody),
    ),
)]
async fn show(State(state): State<AppState>, _operator: Operator, Path(org): Path<String>) -> Result<Json<Quota>> {
    ensure_org(&state, &org).await?;
    let row = sqlx::query(&format!("SELECT {} FROM quota WHERE organization_id = $1", COLUMNS.join(", ")))
        .bind(&org)
        .fetch_optional(state.db.pool())
        .await?;
    let Some(row) = row else { return Ok(Json(Quota::default())) };
    let get = |c: &str| row.try_get::<Option<i64>, _>(c);
    Ok(Json(Quota {
        runs_per_month: get("runs_per_month")?,
        fuel_per_month: get("fuel_per_month")?,
        tokens_per_month: get("tokens_per_month")?,
        requests_per_minute: get("requests_per_minute")?,
        memory_bytes_per_run: get("memory_bytes_per_run")?,
        deadline_ms: get("deadline_ms")?,
        fuel_per_run: get("fuel_per_run")?,
    }))
}

/// Replaces the tenant's quota (operators); the runtime hosts get it with
/// the tenant's agents.
#[utoipa::path(
    put,
    path = "/api/quotas/{organization_id}",
    params(("organization_id" = String, Path, description = "Organisation id.")),
    request_body = Quota,
    responses(
        (status = 200, description = "The quota.", body = Quota),
        (status = 403, description = "Not an operator.", body = crate::error::ErrorBody),
    ),
)]
async fn replace(
    State(state): State<AppState>,
    Operator(operator): Operator,
    Path(org): Path<String>,
    JsonBody(quota): JsonBody<Quota>,
) -> Result<Json<Quota>> {
    ensure_org(&state, &org).await?;
    quota.check()?;
    let now = now_ms();
    let params = (3..3 + COLUMNS.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let updates = COLUMNS.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO quota (organization_id, created_at, updated_at, {}) VALUES ($1, $2, $2, {params}) \
         ON CONFLICT (organization_id) DO UPDATE SET updated_at = excluded.updated_at, {updates}",
        COLUMNS.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(&org).bind(now);
    for value in quota.values() {
        query = query.bind(value);
    }
    let mut tx = state.db.begin().await?;
    query.execute(&mut *tx).await?;
    let agents = feed::lock_served_resources(&mut tx, Holder::Tenant(&org)).await?;
    feed::quota_set(&mut tx, &org).await?;
    feed::reprovision(&mut tx, &agents).await?;
    tx.commit().await?;
    tracing::info!(organization = %org, operator = %operator.id, agents = agents.len(), "quota set");
    Ok(Json(quota))
}
