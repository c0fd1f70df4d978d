//! `/api/orders/`: buying a plan. An order moves
//! `pending_consumer → pending_provider → executing → done`, or ends
//! `rejected`, `canceled` or `erred` (`erred → executing` on retry):
//!
//! - ordered by an owner or admin of the consumer organisation, it skips
//!   `pending_consumer`; ordered by a plain member, it waits there for an
//!   owner or admin (`approve_by_consumer` / `reject_by_consumer`);
//! - if the offering `requires_approval`, it then waits in
//!   `pending_provider` for an owner or admin of the provider
//!   (`approve_by_provider` / `reject_by_provider`);
//! - entering `executing` queues the durable `provision` job
//!   ([`crate::provisioning`]), which creates the resource and marks the
//!   order `done`, or `erred` with the error after its last attempt.
//!
//! Members of either organisation and operators see an order; others get
//! 404. Every move is a guarded update, so a second decision is a 409.

use super::organizations::{org_exists, role_in};
use super::paging::{Listing, Page, PageParams};
use super::parties::Parties;
use super::{JsonBody, OptionalJsonBody, Path};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::{Dialect, new_id, now_ms};
use crate::error::{Error, Result};
use crate::jobs::{self, PROVISION};
use crate::transition::{ORDER, transition};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "orders",
        OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(show))
            .routes(routes!(approve_by_consumer))
            .routes(routes!(reject_by_consumer))
            .routes(routes!(approve_by_provider))
            .routes(routes!(reject_by_provider))
            .routes(routes!(cancel))
            .routes(routes!(retry)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderOut {
    id: String,
    plan_id: String,
    offering_id: String,
    /// The consumer (buyer) organisation.
    organization_id: String,
    provider_organization_id: String,
    /// `pending_consumer`, `pending_provider`, `executing`, `done`,
    /// `rejected`, `canceled` or `erred`.
    state: String,
    created_by: String,
    /// Why it was rejected or canceled.
    reason: Option<String>,
    /// The last provisioning error.
    error: Option<String>,
    /// The resource it provisioned.
    resource_id: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

const ORDER_COLUMNS: &str = "o.id, o.plan_id, o.offering_id, o.organization_id, o.provider_organization_id, \
     o.state, o.created_by, o.reason, o.error, o.created_at, o.updated_at, \
     (SELECT r.id FROM resource r WHERE r.order_id = o.id) AS resource_id";

fn order_out(row: &AnyRow) -> Result<OrderOut> {
    Ok(OrderOut {
        id: row.try_get("id")?,
        plan_id: row.try_get("plan_id")?,
        offering_id: row.try_get("offering_id")?,
        organization_id: row.try_get("organization_id")?,
        provider_organization_id: row.try_get("provider_organization_id")?,
        state: row.try_get("state")?,
        created_by: row.try_get("created_by")?,
        reason: row.try_get("reason")?,
        error: row.try_get("error")?,
        resource_id: row.try_get("resource_id")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

async fn fetch(state: &AppState, id: &str) -> Result<Option<OrderOut>> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM customer_order o WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?;
    row.as_ref().map(order_out).transpose()
}

/// Loads an order the caller may see (404 otherwise), with their roles.
async fn load(state: &AppState, user: &CurrentUser, id: &str) -> Result<(OrderOut, Parties)> {
    let not_found = || Error::NotFound(format!("no order `{id}` among yours"));
    let order = fetch(state, id).await?.ok_or_else(not_found)?;
    let parties = Parties::of(state, user, &order.organization_id, &order.provider_organization_id).await?;
    if !parties.sees() {
        return Err(not_found());
    }
    Ok((order, parties))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only orders in this state.
    state: Option<String>,
}

/// Orders the caller's organisations placed or received (every order for
/// operators), newest first.
#[utoipa::path(
    get,
    path = "/api/orders",
    params(ListQuery, PageParams),
    responses((status = 200, description = "The orders.", body = Vec<OrderOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Listing { filters: query, paging }: Listing<ListQuery>,
) -> Result<Page<OrderOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {ORDER_COLUMNS} FROM customer_order o \
         WHERE ($1 = 1 OR o.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $2) \
                OR o.provider_organization_id IN (SELECT organization_id FROM membership WHERE user_id = $2)) \
           AND (CAST($3 AS TEXT) IS NULL OR o.state = $3) \
         ORDER BY o.created_at DESC, o.id DESC"
    )))
    .bind(i64::from(user.is_staff))
    .bind(&user.id)
    .bind(query.state)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(order_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One order (members of either organisation, operators).
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    params(("id" = String, Path, description = "Order id.")),
    responses((status = 200, description = "The order.", body = OrderOut)),
)]
async fn show(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<OrderOut>> {
    load(&state, &user, &id).await.map(|(order, _)| Json(order))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOrder {
    plan_id: String,
    /// The consumer organisation, which the caller must belong to.
    organization_id: String,
}

/// Where an order goes once the consumer side has agreed.
fn after_consumer(requires_approval: bool) -> &'static str {
    if requires_approval { "pending_provider" } else { "executing" }
}

/// Queues provisioning when an order entered `executing` in `tx`.
async fn provision_if_executing(tx: &mut Transaction<'_, Any>, id: &str, to: &str) -> Result<()> {
    if to == "executing" {
        jobs::enqueue(tx, PROVISION, &json!({ "order_id": id })).await?;
    }
    Ok(())
}

/// Orders a plan of an active offering for one of the caller's
/// organisations (any member; a plain member's order waits for an owner or
/// admin).
#[utoipa::path(
    post,
    path = "/api/orders",
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Makes the request safe to retry: the organisation's order placed with this key \
                           (1 to 255 visible ASCII characters) is answered with 200 instead of a second order.")),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "The order.", body = OrderOut),
        (status = 200, description = "The order this Idempotency-Key placed before.", body = OrderOut),
        (status = 403, description = "An operator who is not a member of the organisation.", body = ErrorBody),
        (status = 404, description = "Not one of the caller's organisations, or no such plan in the catalog.",
         body = ErrorBody),
        (status = 409, description = "The offering is not active, the plan is archived, or the Idempotency-Key \
         placed an order for another plan (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateOrder>,
) -> Result<(StatusCode, Json<OrderOut>)> {
    let key = idempotency_key(&headers)?;
    let Some(role) = role_in(&state, &user.id, &body.organization_id).await? else {
        // Operators see every organisation (403), others only theirs (404).
        if user.is_staff && org_exists(&state, &body.organization_id).await? {
            return Err(Error::Forbidden("only members of the organisation may order for it".into()));
        }
        return Err(Error::NotFound(format!("no organisation `{}` among yours", body.organization_id)));
    };
    // A retry of an order already placed gets that order, whatever the
    // catalog has done since.
    if let Some(key) = &key
        && let Some(order) = placed_with(&state, &body, key).await?
    {
        return Ok((StatusCode::OK, Json(order)));
    }
    let plan = orderable(&state, &user.id, &body.plan_id).await?;
    let initial = if role.can_manage() { after_consumer(plan.requires_approval) } else { "pending_consumer" };
    let id = new_id();
    let mut tx = state.db.begin().await?;
    // Placed only if the plan is still orderable as read above: an offering
    // paused (and its plans edited) or a plan archived meanwhile takes no
    // order, and the database, not this request, decides which came first.
    // PostgreSQL waits for a pause in progress (`FOR SHARE`) and reads the
    // offering as it leaves it; SQLite has one writer at a time.
    let lock = match state.db.dialect() {
        Dialect::Postgres => " FOR SHARE OF o, p",
        Dialect::Sqlite => "",
    };
    let inserted = sqlx::query(&format!(
        "INSERT INTO customer_order (id, plan_id, offering_id, organization_id, provider_organization_id, state, \
         created_by, created_at, updated_at, idempotency_key) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, $9 FROM plan p JOIN offering o ON o.id = p.offering_id \
         WHERE p.id = $2 AND o.state = 'active' AND p.archived_at IS NULL AND o.requires_approval = $10{lock}"
    ))
    .bind(&id)
    .bind(&body.plan_id)
    .bind(&plan.offering)
    .bind(&body.organization_id)
    .bind(&plan.provider)
    .bind(initial)
    .bind(&user.id)
    .bind(now_ms())
    .bind(&key)
    .bind(i64::from(plan.requires_approval))
    .execute(&mut *tx)
    .await;
    match (inserted, &key) {
        (Ok(done), _) if done.rows_affected() == 1 => {}
        // The offering or plan changed since it was read: say how.
        (Ok(_), _) => {
            drop(tx);
            orderable(&state, &user.id, &body.plan_id).await?;
            return Err(Error::InvalidTransition(
                "the offering changed while the order was placed; look at it again and place the order anew".into(),
            ));
        }
        // The same key, placed by a request racing this one: its order.
        (Err(sqlx::Error::Database(e)), Some(key)) if e.is_unique_violation() => {
            drop(tx);
            let order = placed_with(&state, &body, key).await?;
            return order
                .map(|o| (StatusCode::OK, Json(o)))
                .ok_or_else(|| Error::internal("the racing order vanished"));
        }
        (Err(e), _) => return Err(e.into()),
    }
    provision_if_executing(&mut tx, &id, initial).await?;
    tx.commit().await?;
    jobs::wake(&state);
    tracing::info!(order = %id, state = initial, "order placed");
    let order = fetch(&state, &id).await?.ok_or_else(|| Error::internal("the new order vanished"))?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// A plan that can be ordered now: its offering and provider.
struct Orderable {
    offering: String,
    provider: String,
    requires_approval: bool,
}

/// The plan `plan_id`, if `user` may order it now; otherwise the refusal
/// they may see (only its provider learns that an inactive offering
/// exists).
async fn orderable(state: &AppState, user: &str, plan_id: &str) -> Result<Orderable> {
    let no_plan = || Error::NotFound(format!("no plan `{plan_id}` in the catalog"));
    let plan = sqlx::query(
        "SELECT p.archived_at, o.id AS offering_id, o.organization_id AS provider, o.state, o.requires_approval \
         FROM plan p JOIN offering o ON o.id = p.offering_id WHERE p.id = $1",
    )
    .bind(plan_id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(no_plan)?;
    let provider: String = plan.try_get("provider")?;
    let offering_state: String = plan.try_get("state")?;
    if offering_state != "active" {
        if role_in(state, user, &provider).await?.is_none() {
            return Err(no_plan());
        }
        return Err(Error::InvalidTransition(format!(
            "the offering is {offering_state}; only active offerings can be ordered"
        )));
    }
    if plan.try_get::<Option<i64>, _>("archived_at")?.is_some() {
        return Err(Error::InvalidTransition("the plan is archived; choose another plan of the offering".into()));
    }
    Ok(Orderable {
        offering: plan.try_get("offering_id")?,
        provider,
        requires_approval: plan.try_get::<i64, _>("requires_approval")? != 0,
    })
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| Error::Invalid("`Idempotency-Key` must be 1 to 255 visible ASCII characters".into()))
}

/// The order the organisation placed with `key`, if any; a 409 when that
/// order was for another plan (the key was reused for a different order).
async fn placed_with(state: &AppState, body: &CreateOrder, key: &str) -> Result<Option<OrderOut>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM customer_order WHERE organization_id = $1 AND idempotency_key = $2")
            .bind(&body.organization_id)
            .bind(key)
            .fetch_optional(state.db.pool())
            .await?;
    let Some(id) = id else { return Ok(None) };
    let order = fetch(state, &id).await?.ok_or_else(|| Error::internal("the order vanished"))?;
    if order.plan_id != body.plan_id {
        return Err(Error::InvalidTransition(format!(
            "this Idempotency-Key placed order `{id}` for another plan; use a new key for a new order"
        )));
    }
    Ok(Some(order))
}

/// Moves an order in one transaction (recording `reason` if given, queuing
/// provisioning when it enters `executing`) and returns it.
async fn move_order(
    state: &AppState,
    id: &str,
    from: &[&'static str],
    to: &'static str,
    reason: Option<String>,
) -> Result<Json<OrderOut>> {
    let mut tx = state.db.begin().await?;
    if to == "executing" {
        ensure_orderable(&mut tx, id).await?;
    }
    transition(&mut tx, ORDER, id, from, to).await?;
    if let Some(reason) = reason {
        sqlx::query("UPDATE customer_order SET reason = $1 WHERE id = $2")
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    provision_if_executing(&mut tx, id, to).await?;
    tx.commit().await?;
    jobs::wake(state);
    tracing::info!(order = %id, state = to, "order moved");
    fetch(state, id).await?.ok_or_else(|| Error::NotFound(format!("no order `{id}`"))).map(Json)
}

/// Refuses (409) to carry an order on to provisioning once its offering
/// is no longer active or its plan is archived: an approval (or a retry)
/// that comes after the seller withdrew what was ordered.
async fn ensure_orderable(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    let row = sqlx::query(
        "SELECT o.state, p.archived_at FROM customer_order c JOIN plan p ON p.id = c.plan_id \
         JOIN offering o ON o.id = c.offering_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("no order `{id}`")))?;
    let offering_state: String = row.try_get("state")?;
    if offering_state != "active" {
        return Err(Error::InvalidTransition(format!(
            "the offering is {offering_state}; its orders go on only while it is active"
        )));
    }
    if row.try_get::<Option<i64>, _>("archived_at")?.is_some() {
        return Err(Error::InvalidTransition("the plan was archived since the order was placed".into()));
    }
    Ok(())
}

/// A decision on an order; the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Decision {
    /// Why (kept for rejections and cancellations; at most 4000 characters).
    reason: Option<String>,
}

impl Decision {
    fn reason(self) -> Result<Option<String>> {
        match self.reason.as_deref().map(str::trim) {
            Some(reason) if reason.chars().count() > 4000 => {
                Err(Error::Invalid("`reason` must be at most 4000 characters".into()))
            }
            Some(reason) if !reason.is_empty() => Ok(Some(reason.to_owned())),
            _ => Ok(None),
        }
    }
}

const CONSUMER_MANAGER: &str = "an owner or admin of the ordering organisation";
const PROVIDER_MANAGER: &str = "an owner or admin of the provider organisation";

async fn requires_approval(state: &AppState, offering: &str) -> Result<bool> {
    let flag: i64 = sqlx::query_scalar("SELECT requires_approval FROM offering WHERE id = $1")
        .bind(offering)
        .fetch_one(state.db.pool())
        .await?;
    Ok(flag != 0)
}

/// `pending_consumer → pending_provider | executing` (owners and admins of
/// the ordering organisation).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/approve_by_consumer",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The order, moved on.", body = OrderOut),
        (status = 403, description = "Not an owner or admin of the ordering organisation.", body = ErrorBody),
        (status = 409, description = "Not pending_consumer (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn approve_by_consumer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Decision { .. }): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (order, parties) = load(&state, &user, &id).await?;
    Parties::require(parties.consumer_manager(), CONSUMER_MANAGER)?;
    let to = after_consumer(requires_approval(&state, &order.offering_id).await?);
    move_order(&state, &id, &["pending_consumer"], to, None).await
}

/// `pending_consumer → rejected` (owners and admins of the ordering
/// organisation).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/reject_by_consumer",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The rejected order.", body = OrderOut),
        (status = 403, description = "Not an owner or admin of the ordering organisation.", body = ErrorBody),
        (status = 409, description = "Not pending_consumer (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn reject_by_consumer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(decision): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (_, parties) = load(&state, &user, &id).await?;
    Parties::require(parties.consumer_manager(), CONSUMER_MANAGER)?;
    move_order(&state, &id, &["pending_consumer"], "rejected", decision.reason()?).await
}

/// `pending_provider → executing` (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/approve_by_provider",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The order, executing.", body = OrderOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not pending_provider (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn approve_by_provider(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Decision { .. }): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (_, parties) = load(&state, &user, &id).await?;
    Parties::require(parties.provider_manager(), PROVIDER_MANAGER)?;
    move_order(&state, &id, &["pending_provider"], "executing", None).await
}

/// `pending_provider → rejected` (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/reject_by_provider",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The rejected order.", body = OrderOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not pending_provider (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn reject_by_provider(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(decision): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (_, parties) = load(&state, &user, &id).await?;
    Parties::require(parties.provider_manager(), PROVIDER_MANAGER)?;
    move_order(&state, &id, &["pending_provider"], "rejected", decision.reason()?).await
}

/// Withdraws a pending order (its creator, or an owner or admin of the
/// ordering organisation).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/cancel",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The canceled order.", body = OrderOut),
        (status = 403, description = "Not the order's creator or an owner or admin of its organisation.", body = ErrorBody),
        (status = 409, description = "Not pending (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(decision): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (order, parties) = load(&state, &user, &id).await?;
    let own = parties.consumer.is_some() && order.created_by == user.id;
    Parties::require(
        own || parties.consumer_manager(),
        "the order's creator or an owner or admin of its organisation",
    )?;
    move_order(&state, &id, &["pending_consumer", "pending_provider"], "canceled", decision.reason()?).await
}

/// Tries an `erred` order again (owner or admin of the ordering
/// organisation, or an operator).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/retry",
    params(("id" = String, Path, description = "Order id.")),
    request_body = Option<Decision>,
    responses(
        (status = 200, description = "The order, executing again.", body = OrderOut),
        (status = 403, description = "Not an owner or admin of the ordering organisation or an operator.", body = ErrorBody),
        (status = 409, description = "Not erred (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn retry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(Decision { .. }): OptionalJsonBody<Decision>,
) -> Result<Json<OrderOut>> {
    let (_, parties) = load(&state, &user, &id).await?;
    Parties::require(
        parties.consumer_manager() || parties.staff,
        "an owner or admin of the ordering organisation or an operator",
    )?;
    move_order(&state, &id, &["erred"], "executing", None).await
}
