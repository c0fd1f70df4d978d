//! What runtime hosts read, with the runtime bearer token:
//!
//! - `GET /api/runtime/changes/?after=<seq>&limit=<n>` (default 500, at
//!   most 1000; a larger `limit` gets 1000): `{"changes": [{"seq", "kind", …}], "last"}` in `seq`
//!   order, `last` being the highest `seq` returned or `after` when none
//!   (the shapes are in [`crate::feed`]);
//! - `GET /api/runtime/artifacts/{digest}`: the flow component
//!   (`application/wasm`) with that digest;
//! - `GET /api/runtime/agents/{id}/secrets`: `{"secrets": {"NAME":
//!   {"value", "hosts"}}}`, agent `id`'s secrets (its seller's, and the
//!   buyer's in the place of any of the same name), opened
//!   ([`crate::secrets`]); the one answer that carries their values;
//! - `GET /api/runtime/usage-totals/?month=YYYY-MM`: per tenant, the runs,
//!   fuel and tokens (in + out) the ledger holds for runs started in that
//!   UTC month, so a restarted host can seed its quota counters.

use super::{Path, Query};
use crate::AppState;
use crate::auth::RuntimeService;
use crate::db::sum_of;
use crate::error::{Error, Result};
use crate::stored_secrets::{self, OpenedSecret};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "runtime",
        OpenApiRouter::new()
            .routes(routes!(changes))
            .routes(routes!(artifact))
            .routes(routes!(agent_secrets))
            .routes(routes!(usage_totals)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// Changes returned when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 500;
/// Most changes one request returns.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    /// Changes after this `seq` (default 0).
    after: Option<i64>,
    /// At most this many (default 500; above 1000 gets 1000).
    limit: Option<i64>,
}

/// A page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
struct Changes {
    /// `{"seq", "kind", …}`: `agent.provisioned`, `agent.deprovisioned`,
    /// `key.revoked`, `quota.set`.
    #[schema(value_type = Vec<Object>)]
    changes: Vec<Value>,
    /// The highest `seq` returned, or `after` when none.
    last: i64,
}

/// The runtime change feed, in `seq` order (runtime hosts).
#[utoipa::path(
    get,
    path = "/api/runtime/changes",
    params(ChangesQuery),
    security(("runtime_token" = [])),
    responses(
        (status = 200, description = "The changes.", body = Changes),
        (status = 503, description = "No runtime token is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn changes(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Changes>> {
    let after = query.after.unwrap_or(0);
    // Asking for more than the most is answered with the most (the reader
    // pages on with `last`); nothing or less is a mistake.
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    if after < 0 || limit < 1 {
        return Err(Error::Invalid("`after` must be ≥ 0 and `limit` ≥ 1".into()));
    }
    let rows = sqlx::query("SELECT seq, body FROM runtime_change WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(state.db.pool())
        .await?;
    let mut last = after;
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        let body: String = row.try_get("body")?;
        let Value::Object(fields) = serde_json::from_str(&body).map_err(Error::internal)? else {
            return Err(Error::internal(format!("runtime change {seq} is not a JSON object")));
        };
        let mut change = Map::with_capacity(fields.len() + 1);
        change.insert("seq".into(), seq.into());
        change.extend(fields);
        changes.push(Value::Object(change));
        last = seq;
    }
    Ok(Json(Changes { changes, last }))
}

/// The flow component with this digest (runtime hosts).
#[utoipa::path(
    get,
    path = "/api/runtime/artifacts/{digest}",
    params(("digest" = String, Path, description = "`sha256:` digest of the component.")),
    security(("runtime_token" = [])),
    responses(
        (status = 200, description = "The component; `ETag` is its digest.", body = Vec<u8>,
         content_type = "application/wasm"),
        (status = 503, description = "No runtime token is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn artifact(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    Path(digest): Path<String>,
) -> Result<Response> {
    let bytes: Vec<u8> = sqlx::query_scalar("SELECT artifact FROM flow_version WHERE digest = $1 LIMIT 1")
        .bind(&digest)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("no flow component with digest `{digest}`")))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm".to_owned()), (header::ETAG, format!("\"{digest}\""))], bytes)
        .into_response())
}

/// An agent's secrets, opened. No `Debug`: it holds their values.
#[derive(Serialize, ToSchema)]
struct AgentSecrets {
    /// By name.
    secrets: BTreeMap<String, OpenedSecret>,
}

/// Agent `id`'s secrets, opened: its seller's, and the buyer's in the
/// place of any of the same name (runtime hosts, when the feed's
/// `agent.provisioned` names some). A value no configured `--secrets-key`
/// opens (a key missing or malformed) is left out and logged, so a bad key
/// or row holds up no host; a run that needs it says the variable is not
/// set.
#[utoipa::path(
    get,
    path = "/api/runtime/agents/{id}/secrets",
    params(("id" = String, Path, description = "The agent (resource) id.")),
    security(("runtime_token" = [])),
    responses(
        (status = 200, description = "The values by name.", body = AgentSecrets),
        (status = 404, description = "No such agent (`not_found`).", body = ErrorBody),
        (status = 503, description = "No runtime token is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn agent_secrets(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    Path(id): Path<String>,
) -> Result<Json<AgentSecrets>> {
    let secrets = stored_secrets::opened(state.db.pool(), state.config.sealing_keys(), &id).await?;
    Ok(Json(AgentSecrets { secrets }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TotalsQuery {
    /// The UTC month, `YYYY-MM`.
    month: String,
}

/// What one tenant used in a month.
#[derive(Debug, Serialize, ToSchema)]
struct TenantTotals {
    runs: i64,
    fuel: i64,
    tokens: i64,
}

/// Per tenant, what the ledger holds for a month.
#[derive(Debug, Serialize, ToSchema)]
struct UsageTotals {
    tenants: BTreeMap<String, TenantTotals>,
}

/// Per tenant, the month's runs, fuel and tokens (runtime hosts, to seed
/// their quota counters).
#[utoipa::path(
    get,
    path = "/api/runtime/usage-totals",
    params(TotalsQuery),
    security(("runtime_token" = [])),
    responses(
        (status = 200, description = "The totals.", body = UsageTotals),
        (status = 503, description = "No runtime token is configured (`unavailable`).", body = ErrorBody),
    ),
)]
async fn usage_totals(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    Query(query): Query<TotalsQuery>,
) -> Result<Json<UsageTotals>> {
    let (start, end) = month_bounds_ms(&query.month)?;
    let rows = sqlx::query(concat!(
        "SELECT tenant, COUNT(*) AS runs, ",
        crate::sql_sum!("fuel"),
        " AS fuel, ",
        crate::sql_sum!("tokens_in"),
        " + ",
        crate::sql_sum!("tokens_out"),
        " AS tokens FROM usage_record WHERE started_at_ms >= $1 AND started_at_ms < $2 GROUP BY tenant",
    ))
    .bind(start)
    .bind(end)
    .fetch_all(state.db.pool())
    .await?;
    let mut tenants = BTreeMap::new();
    for row in &rows {
        tenants.insert(
            row.try_get("tenant")?,
            TenantTotals { runs: row.try_get("runs")?, fuel: sum_of(row, "fuel")?, tokens: sum_of(row, "tokens")? },
        );
    }
    Ok(Json(UsageTotals { tenants }))
}

/// The first millisecond of UTC month `YYYY-MM` and of the month after.
pub fn month_bounds_ms(month: &str) -> Result<(i64, i64)> {
    let refuse = || Error::Invalid(format!("a month is `YYYY-MM`, like `2026-11` (got `{month}`)"));
    let (year, mon) = month.split_once('-').ok_or_else(refuse)?;
    if year.len() != 4 || mon.len() != 2 {
        return Err(refuse());
    }
    let year: i64 = year.parse().map_err(|_| refuse())?;
    let mon: i64 = mon.parse().map_err(|_| refuse())?;
    if !(1..=12).contains(&mon) || year < 1970 {
        return Err(refuse());
    }
    let (next_year, next_mon) = if mon == 12 { (year + 1, 1) } else { (year, mon + 1) };
    Ok((days_from_civil(year, mon) * 86_400_000, days_from_civil(next_year, next_mon) * 86_400_000))
}

/// Days from 1970-01-01 to the first of `month` of `year` (proleptic
/// Gregorian; Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(month_bounds_ms("1970-01").unwrap(), (0, 31 * 86_400_000));
        // 2026-11-01T00:00:00Z and 2026-12-01T00:00:00Z.
        assert_eq!(month_bounds_ms("2026-11").unwrap(), (1_793_491_200_000, 1_796_083_200_000));
        assert_eq!(month_bounds_ms("2024-12").unwrap().1, 1_735_689_600_000);
        assert_eq!(month_bounds_ms("2024-02").unwrap().1 - month_bounds_ms("2024-02").unwrap().0, 29 * 86_400_000);
        for bad in ["2026", "2026-13", "2026-00", "26-11", "2026-1", "abcd-ef", "1969-12"] {
            assert!(month_bounds_ms(bad).is_err(), "{bad}");
        }
    }
}
