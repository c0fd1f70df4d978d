//! Plans: how an offering is priced and what a subscription may use.
//! `GET/POST /api/offerings/{id}/plans/`, `GET/PATCH /api/plans/{id}`,
//! `POST /api/plans/{id}/archive`.
//!
//! Money is in integer minor units of the plan's currency (`fixed_monthly`,
//! `per_run`, `per_1k_tokens`, `per_million_fuel`, all ≥ 0); monthly
//! allowances (`runs_per_month`, `tokens_per_month`, `fuel_per_month`) and
//! `requests_per_minute` are null for unlimited. Plans are added and
//! changed while their offering is draft or paused (buyers of an active
//! offering see what they ordered); a change re-sends the agents of the
//! plan's running subscriptions to the runtime (`agent.provisioned` with
//! the new rpm), and a paused offering changed so goes back to review when
//! resumed. Archiving stops new orders of a plan at any time.

use super::offerings::{Viewer, ensure_editable, load, load_managed, mark_changed};
use super::paging::{Page, PageParams, Paging};
use super::{Empty, JsonBody, OptionalJsonBody, Path, non_negative, nullable, required_text};
use crate::AppState;
use crate::auth::{CurrentUser, MaybeUser};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::feed::{self, Holder};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "plans",
        OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update)).routes(routes!(archive)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// A plan as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanOut {
    /// Plan id.
    pub id: String,
    /// Its offering.
    pub offering_id: String,
    /// Name.
    pub name: String,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// Per month, minor units.
    pub fixed_monthly: i64,
    /// Per run, minor units.
    pub per_run: i64,
    /// Per 1,000 LLM tokens, minor units.
    pub per_1k_tokens: i64,
    /// Per million fuel units, minor units.
    pub per_million_fuel: i64,
    /// Runs included per month (null: unlimited).
    pub runs_per_month: Option<i64>,
    /// Tokens included per month (null: unlimited).
    pub tokens_per_month: Option<i64>,
    /// Fuel included per month (null: unlimited).
    pub fuel_per_month: Option<i64>,
    /// Request rate limit (null: the runtime's default).
    pub requests_per_minute: Option<i64>,
    /// Whether it can no longer be ordered.
    pub archived: bool,
    /// When it was archived.
    pub archived_at_ms: Option<i64>,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// Columns [`plan_out`] reads.
pub const PLAN_COLUMNS: &str = "id, offering_id, name, currency, fixed_monthly, per_run, per_1k_tokens, \
     per_million_fuel, runs_per_month, tokens_per_month, fuel_per_month, requests_per_minute, archived_at, \
     created_at, updated_at";

/// Reads a `plan` row.
pub fn plan_out(row: &AnyRow) -> Result<PlanOut> {
    let archived_at_ms: Option<i64> = row.try_get("archived_at")?;
    Ok(PlanOut {
        id: row.try_get("id")?,
        offering_id: row.try_get("offering_id")?,
        name: row.try_get("name")?,
        currency: row.try_get("currency")?,
        fixed_monthly: row.try_get("fixed_monthly")?,
        per_run: row.try_get("per_run")?,
        per_1k_tokens: row.try_get("per_1k_tokens")?,
        per_million_fuel: row.try_get("per_million_fuel")?,
        runs_per_month: row.try_get("runs_per_month")?,
        tokens_per_month: row.try_get("tokens_per_month")?,
        fuel_per_month: row.try_get("fuel_per_month")?,
        requests_per_minute: row.try_get("requests_per_minute")?,
        archived: archived_at_ms.is_some(),
        archived_at_ms,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// A plan body: every field for `POST` (`name` required, the rest
/// defaulted: `usd`, prices 0, allowances and rpm null), any subset for
/// `PATCH`. Prices are integer minor units, at least 0; allowances null
/// for unlimited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    name: Option<String>,
    currency: Option<String>,
    fixed_monthly: Option<i64>,
    per_run: Option<i64>,
    per_1k_tokens: Option<i64>,
    per_million_fuel: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    runs_per_month: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    tokens_per_month: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    fuel_per_month: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    requests_per_minute: Option<Option<i64>>,
}

/// A plan's settable fields.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    currency: String,
    prices: [i64; 4],
    allowances: [Option<i64>; 3],
    requests_per_minute: Option<i64>,
}

impl Plan {
    fn from_out(plan: &PlanOut) -> Self {
        Self {
            name: plan.name.clone(),
            currency: plan.currency.clone(),
            prices: [plan.fixed_monthly, plan.per_run, plan.per_1k_tokens, plan.per_million_fuel],
            allowances: [plan.runs_per_month, plan.tokens_per_month, plan.fuel_per_month],
            requests_per_minute: plan.requests_per_minute,
        }
    }

    /// `self` with the body's fields applied, checked.
    fn apply(self, body: PlanBody) -> Result<Self> {
        let name = required_text("name", body.name.as_deref().unwrap_or(&self.name), 100)?;
        let currency = body.currency.unwrap_or(self.currency).trim().to_ascii_lowercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(Error::Invalid(format!(
                "`currency` must be a 3-letter ISO 4217 code like `usd` (got `{currency}`)"
            )));
        }
        let given = [body.fixed_monthly, body.per_run, body.per_1k_tokens, body.per_million_fuel];
        let mut prices = self.prices;
        for ((field, price), given) in ["fixed_monthly", "per_run", "per_1k_tokens", "per_million_fuel"]
            .into_iter()
            .zip(prices.iter_mut())
            .zip(given)
        {
            *price = non_negative(field, given.unwrap_or(*price))?;
        }
        let given = [body.runs_per_month, body.tokens_per_month, body.fuel_per_month];
        let mut allowances = self.allowances;
        for ((field, allowance), given) in
            ["runs_per_month", "tokens_per_month", "fuel_per_month"].into_iter().zip(allowances.iter_mut()).zip(given)
        {
            *allowance = given.unwrap_or(*allowance).map(|v| non_negative(field, v)).transpose()?;
        }
        let requests_per_minute = body.requests_per_minute.unwrap_or(self.requests_per_minute);
        if requests_per_minute.is_some_and(|rpm| rpm < 1 || rpm > i64::from(u32::MAX)) {
            return Err(Error::Invalid("`requests_per_minute` must be from 1 to 4294967295, or null".into()));
        }
        Ok(Self { name, currency, prices, allowances, requests_per_minute })
    }
}

/// Loads a plan and its offering as the caller may see them (404 otherwise).
async fn load_plan(state: &AppState, user: Option<&CurrentUser>, id: &str) -> Result<(PlanOut, Viewer)> {
    let not_found = || Error::NotFound(format!("no plan `{id}`"));
    let row = sqlx::query(&format!("SELECT {PLAN_COLUMNS} FROM plan WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(not_found)?;
    let plan = plan_out(&row)?;
    let (_, viewer) = load(state, user, &plan.offering_id).await.map_err(|_| not_found())?;
    if viewer == Viewer::Public && plan.archived {
        return Err(not_found());
    }
    Ok((plan, viewer))
}

/// The offering's plans: all of them for its provider and operators, the
/// ones that can be ordered for everyone else (anyone, even anonymous, for
/// an active offering).
#[utoipa::path(
    get,
    path = "/api/offerings/{id}/plans",
    params(("id" = String, Path, description = "Offering id."), PageParams),
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The plans.", body = Vec<PlanOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Page<PlanOut>> {
    let (_, viewer) = load(&state, user.as_ref(), &id).await?;
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan WHERE offering_id = $1 AND ($2 = 1 OR archived_at IS NULL) \
         ORDER BY created_at, id"
    )))
    .bind(&id)
    .bind(i64::from(viewer != Viewer::Public))
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(plan_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One plan, as its offering is seen (anyone for a live plan of an active
/// offering).
#[utoipa::path(
    get,
    path = "/api/plans/{id}",
    params(("id" = String, Path, description = "Plan id.")),
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The plan.", body = PlanOut)),
)]
async fn show(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<PlanOut>> {
    load_plan(&state, user.as_ref(), &id).await.map(|(plan, _)| Json(plan))
}

/// Adds a plan to a draft or paused offering (owners and admins of the
/// provider).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/plans",
    params(("id" = String, Path, description = "Offering id.")),
    request_body = PlanBody,
    responses(
        (status = 201, description = "The plan.", body = PlanOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "The offering is not draft or paused (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PlanBody>,
) -> Result<(StatusCode, Json<PlanOut>)> {
    let offering = load_managed(&state, &user, &id).await?;
    ensure_editable(&offering)?;
    if body.name.is_none() {
        return Err(Error::Invalid("the body is not valid: missing field `name`".into()));
    }
    let empty = Plan {
        name: String::new(),
        currency: "usd".into(),
        prices: [0; 4],
        allowances: [None; 3],
        requests_per_minute: None,
    };
    let plan = empty.apply(body)?;
    let [fixed_monthly, per_run, per_1k_tokens, per_million_fuel] = plan.prices;
    let [runs, tokens, fuel] = plan.allowances;
    let mut tx = state.db.begin().await?;
    mark_changed(&mut tx, &id).await?;
    let row = sqlx::query(&format!(
        "INSERT INTO plan (id, offering_id, name, currency, fixed_monthly, per_run, per_1k_tokens, per_million_fuel, \
         runs_per_month, tokens_per_month, fuel_per_month, requests_per_minute, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING {PLAN_COLUMNS}"
    ))
    .bind(new_id())
    .bind(&id)
    .bind(&plan.name)
    .bind(&plan.currency)
    .bind(fixed_monthly)
    .bind(per_run)
    .bind(per_1k_tokens)
    .bind(per_million_fuel)
    .bind(runs)
    .bind(tokens)
    .bind(fuel)
    .bind(plan.requests_per_minute)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(plan_out(&row)?)))
}

/// The plan, if the caller manages its offering and the plan can change.
async fn load_editable(state: &AppState, user: &CurrentUser, id: &str) -> Result<PlanOut> {
    let (plan, _) = load_plan(state, Some(user), id).await?;
    let offering = load_managed(state, user, &plan.offering_id).await?;
    ensure_editable(&offering)?;
    if plan.archived {
        return Err(Error::InvalidTransition("the plan is archived; it can no longer be changed".into()));
    }
    Ok(plan)
}

/// Changes a live plan of a draft or paused offering (owners and admins of
/// the provider); running subscriptions get the new rate limit.
#[utoipa::path(
    patch,
    path = "/api/plans/{id}",
    params(("id" = String, Path, description = "Plan id.")),
    request_body = PlanBody,
    responses(
        (status = 200, description = "The plan.", body = PlanOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Archived, or the offering is not draft or paused (`invalid_transition`).",
         body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PlanBody>,
) -> Result<Json<PlanOut>> {
    let current = load_editable(&state, &user, &id).await?;
    let plan = Plan::from_out(&current).apply(body)?;
    let [fixed_monthly, per_run, per_1k_tokens, per_million_fuel] = plan.prices;
    let [runs, tokens, fuel] = plan.allowances;
    let mut tx = state.db.begin().await?;
    mark_changed(&mut tx, &current.offering_id).await?;
    let row = sqlx::query(&format!(
        "UPDATE plan SET name = $1, currency = $2, fixed_monthly = $3, per_run = $4, per_1k_tokens = $5, \
         per_million_fuel = $6, runs_per_month = $7, tokens_per_month = $8, fuel_per_month = $9, \
         requests_per_minute = $10, updated_at = $11 WHERE id = $12 AND archived_at IS NULL RETURNING {PLAN_COLUMNS}"
    ))
    .bind(&plan.name)
    .bind(&plan.currency)
    .bind(fixed_monthly)
    .bind(per_run)
    .bind(per_1k_tokens)
    .bind(per_million_fuel)
    .bind(runs)
    .bind(tokens)
    .bind(fuel)
    .bind(plan.requests_per_minute)
    .bind(now_ms())
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::InvalidTransition("the plan was archived meanwhile".into()))?;
    // Running subscriptions of the plan take its new rate limit.
    let agents = feed::lock_served_resources(&mut tx, Holder::Plan(&id)).await?;
    feed::reprovision(&mut tx, &agents).await?;
    tx.commit().await?;
    plan_out(&row).map(Json)
}

/// Archives a plan: it can no longer be ordered; subscriptions keep it
/// (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/plans/{id}/archive",
    params(("id" = String, Path, description = "Plan id.")),
    request_body = Option<Empty>,
    responses(
        (status = 200, description = "The archived plan.", body = PlanOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Already archived (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn archive(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Empty {}): OptionalJsonBody<Empty>,
) -> Result<Json<PlanOut>> {
    let (plan, _) = load_plan(&state, Some(&user), &id).await?;
    load_managed(&state, &user, &plan.offering_id).await?;
    let now = now_ms();
    let row = sqlx::query(&format!(
        "UPDATE plan SET archived_at = $1, updated_at = $1 WHERE id = $2 AND archived_at IS NULL RETURNING {PLAN_COLUMNS}"
    ))
    .bind(now)
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| Error::InvalidTransition("the plan is already archived".into()))?;
    plan_out(&row).map(Json)
}
