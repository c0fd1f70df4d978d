//! `GET /api/analytics/usage/?organization=<id>&period=YYYY-MM`: usage from
//! the ledger for one UTC month. For an organisation (its members, or
//! operators): as a buyer, totals per resource of its runs; as a seller,
//! totals per offering over every buyer's resources. Without
//! `organization`, operators get the platform's totals.
//!
//! The ledger's `subscription` (or, without one, its `agent`) is the
//! resource id, as the runtime hosts report the agents the control plane
//! provisioned.

use super::Query;
use super::organizations::authorize;
use super::runtime::month_bounds_ms;
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::sum_of;
use crate::error::{Error, Result};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("analytics", OpenApiRouter::new().routes(routes!(usage)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// The organisation (its members, operators); left out, the platform's
    /// totals (operators only).
    organization: Option<String>,
    /// The UTC month, `YYYY-MM`.
    period: String,
}

/// Usage sums.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageSums)]
struct Totals {
    runs: i64,
    fuel: i64,
    tokens_in: i64,
    tokens_out: i64,
}

const TOTALS: &str = concat!(
    "COUNT(*) AS runs, ",
    crate::sql_sum!("u.fuel"),
    " AS fuel, ",
    crate::sql_sum!("u.tokens_in"),
    " AS tokens_in, ",
    crate::sql_sum!("u.tokens_out"),
    " AS tokens_out"
);

/// Ledger rows of the month joined to the resource they ran for.
const JOINED: &str = "usage_record u JOIN resource r ON r.id = COALESCE(u.subscription, u.agent)";

fn totals(row: &AnyRow) -> Result<Totals> {
    Ok(Totals {
        runs: row.try_get("runs")?,
        fuel: sum_of(row, "fuel")?,
        tokens_in: sum_of(row, "tokens_in")?,
        tokens_out: sum_of(row, "tokens_out")?,
    })
}

/// A bought subscription's usage.
#[derive(Debug, Serialize, ToSchema)]
struct ResourceUsage {
    resource_id: String,
    offering_id: String,
    #[serde(flatten)]
    totals: Totals,
}

/// A sold offering's usage, over every buyer.
#[derive(Debug, Serialize, ToSchema)]
struct OfferingUsage {
    offering_id: String,
    name: String,
    #[serde(flatten)]
    totals: Totals,
}

/// An organisation's usage as buyer and seller, or the platform's totals.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageReport)]
#[serde(untagged)]
enum Report {
    Organization { organization: String, period: String, as_buyer: Vec<ResourceUsage>, as_seller: Vec<OfferingUsage> },
    Platform { period: String, platform: Totals },
}

/// Usage of one UTC month from the ledger.
#[utoipa::path(
    get,
    path = "/api/analytics/usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "The report.", body = Report),
        (status = 404, description = "`organization` is not one of the caller's (`not_found`).",
         body = crate::error::ErrorBody),
    ),
)]
async fn usage(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Report>> {
    let (start, end) = month_bounds_ms(&query.period)?;
    let Some(org) = query.organization else {
        if !user.is_staff {
            return Err(Error::Invalid("give `?organization=<id>`: platform totals are for operators".into()));
        }
        let row = sqlx::query(&format!(
            "SELECT {TOTALS} FROM usage_record u WHERE u.started_at_ms >= $1 AND u.started_at_ms < $2"
        ))
        .bind(start)
        .bind(end)
        .fetch_one(state.db.pool())
        .await?;
        return Ok(Json(Report::Platform { period: query.period, platform: totals(&row)? }));
    };
    authorize(&state, &user, &org, false).await?;
    let bought = sqlx::query(&format!(
        "SELECT r.id AS resource_id, r.offering_id, {TOTALS} FROM {JOINED} \
         WHERE u.tenant = $1 AND u.started_at_ms >= $2 AND u.started_at_ms < $3 \
         GROUP BY r.id, r.offering_id ORDER BY r.id"
    ))
    .bind(&org)
    .bind(start)
    .bind(end)
    .fetch_all(state.db.pool())
    .await?;
    let sold = sqlx::query(&format!(
        "SELECT o.id AS offering_id, o.name, {TOTALS} FROM {JOINED} JOIN offering o ON o.id = r.offering_id \
         WHERE o.organization_id = $1 AND u.started_at_ms >= $2 AND u.started_at_ms < $3 \
         GROUP BY o.id, o.name ORDER BY o.name, o.id"
    ))
    .bind(&org)
    .bind(start)
    .bind(end)
    .fetch_all(state.db.pool())
    .await?;
    let as_buyer = bought
        .iter()
        .map(|r| {
            Ok(ResourceUsage {
                resource_id: r.try_get("resource_id")?,
                offering_id: r.try_get("offering_id")?,
                totals: totals(r)?,
            })
        })
        .collect::<Result<_>>()?;
    let as_seller = sold
        .iter()
        .map(|r| {
            Ok(OfferingUsage { offering_id: r.try_get("offering_id")?, name: r.try_get("name")?, totals: totals(r)? })
        })
        .collect::<Result<_>>()?;
    Ok(Json(Report::Organization { organization: org, period: query.period, as_buyer, as_seller }))
}
