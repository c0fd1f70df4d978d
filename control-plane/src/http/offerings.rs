//! `/api/offerings/`: what providers sell. An offering belongs to an
//! approved provider organisation, runs one of its provider agents (a
//! pinned flow version, or the agent's latest when it went up for review:
//! new orders get only the version the operators approved) and moves
//! `draft → pending_review → active ⇄ paused → archived` (draft,
//! pending_review and paused may also be archived; an operator may send a
//! pending_review offering back to draft with a reason).
//!
//! Members of the provider organisation see its offerings in every state,
//! owners and admins change them; operators see all and review; everyone
//! else sees only active offerings (404 for the rest).

use super::admin::Reject;
use super::organizations::{Role, authorize, role_in};
use super::paging::{Listing, Page, PageParams};
use super::provider_agents::{check_description, ensure_provider};
use super::{Empty, JsonBody, OptionalJsonBody, Path, nullable, required_text};
use crate::AppState;
use crate::auth::{CurrentUser, MaybeUser, Operator};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::transition::{OFFERING, transition};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "offerings",
        OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(show, update))
            .routes(routes!(submit))
            .routes(routes!(approve))
            .routes(routes!(reject))
            .routes(routes!(pause))
            .routes(routes!(resume))
            .routes(routes!(archive)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// An offering as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferingOut {
    /// Offering id.
    pub id: String,
    /// The provider organisation.
    pub organization_id: String,
    /// The provider agent it runs.
    pub provider_agent_id: String,
    /// The pinned flow version; `None` sells the agent's latest version as
    /// of the offering's review.
    pub flow_version_id: Option<String>,
    /// The flow version the pending review is about (the pinned one, or the
    /// agent's latest when the offering was submitted or resumed).
    pub review_flow_version_id: Option<String>,
    /// The flow version the operators last approved: what new orders get.
    pub approved_flow_version_id: Option<String>,
    /// Its category.
    pub category_id: Option<String>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether the provider approves each order.
    pub requires_approval: bool,
    /// `draft`, `pending_review`, `active`, `paused` or `archived`.
    pub state: String,
    /// Why an operator sent it back to draft.
    pub review_note: Option<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// Columns [`offering_out`] reads (unqualified, so `RETURNING` takes them
/// too).
pub const OFFERING_COLUMNS: &str = "id, organization_id, provider_agent_id, flow_version_id, \
     review_flow_version_id, approved_flow_version_id, category_id, name, description, requires_approval, state, \
     review_note, created_at, updated_at";

/// The flow version a review of the offering row being updated would
/// cover: the pinned one, or its agent's latest.
const VERSION_TO_REVIEW: &str = "COALESCE(flow_version_id, (SELECT v.id FROM flow_version v \
     WHERE v.provider_agent_id = offering.provider_agent_id ORDER BY v.version DESC LIMIT 1))";

/// Reads an `offering` row.
pub fn offering_out(row: &AnyRow) -> Result<OfferingOut> {
    Ok(OfferingOut {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        provider_agent_id: row.try_get("provider_agent_id")?,
        flow_version_id: row.try_get("flow_version_id")?,
        review_flow_version_id: row.try_get("review_flow_version_id")?,
        approved_flow_version_id: row.try_get("approved_flow_version_id")?,
        category_id: row.try_get("category_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        requires_approval: row.try_get::<i64, _>("requires_approval")? != 0,
        state: row.try_get("state")?,
        review_note: row.try_get("review_note")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// How the caller relates to an offering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// A member of the provider organisation, with this role.
    Provider(Role),
    /// A staff operator from outside the provider.
    Operator,
    /// Anyone else (or anonymous).
    Public,
}

async fn fetch(state: &AppState, id: &str) -> Result<Option<OfferingOut>> {
    let row = sqlx::query(&format!("SELECT {OFFERING_COLUMNS} FROM offering WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await?;
    row.as_ref().map(offering_out).transpose()
}

/// Loads an offering the caller may see (404 otherwise) and says how they
/// relate to it.
pub async fn load(state: &AppState, user: Option<&CurrentUser>, id: &str) -> Result<(OfferingOut, Viewer)> {
    let not_found = || Error::NotFound(format!("no offering `{id}`"));
    let offering = fetch(state, id).await?.ok_or_else(not_found)?;
    let viewer = match user {
        Some(user) => match role_in(state, &user.id, &offering.organization_id).await? {
            Some(role) => Viewer::Provider(role),
            None if user.is_staff => Viewer::Operator,
            None => Viewer::Public,
        },
        None => Viewer::Public,
    };
    if viewer == Viewer::Public && offering.state != "active" {
        return Err(not_found());
    }
    Ok((offering, viewer))
}

/// Loads an offering the caller may change: an owner or admin of its
/// provider organisation (403 for others who can see it, 404 for the rest).
pub async fn load_managed(state: &AppState, user: &CurrentUser, id: &str) -> Result<OfferingOut> {
    match load(state, Some(user), id).await? {
        (offering, Viewer::Provider(role)) if role.can_manage() => Ok(offering),
        _ => Err(Error::Forbidden("only an owner or admin of the provider organisation may do this".into())),
    }
}

/// Refuses (409) unless the offering may be edited: draft or paused.
pub fn ensure_editable(offering: &OfferingOut) -> Result<()> {
    if offering.state == "draft" || offering.state == "paused" {
        return Ok(());
    }
    Err(Error::InvalidTransition(format!(
        "the offering is {}; it (and its plans) can be changed only while draft or paused",
        offering.state
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this provider organisation's offerings.
    organization: Option<String>,
    /// Only offerings in this state.
    state: Option<String>,
}

/// Offerings the caller may see: active ones, all of their organisations',
/// and every one for operators; `?organization=` and `?state=` narrow it.
/// Anyone, even anonymous.
#[utoipa::path(
    get,
    path = "/api/offerings",
    params(ListQuery, PageParams),
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The offerings.", body = Vec<OfferingOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Listing { filters: query, paging }: Listing<ListQuery>,
) -> Result<Page<OfferingOut>> {
    let rows = sqlx::query(&paging.sql(&format!(
        "SELECT {OFFERING_COLUMNS} FROM offering o \
         WHERE (o.state = 'active' OR $1 = 1 \
                OR o.organization_id IN (SELECT organization_id FROM membership WHERE user_id = $2)) \
           AND (CAST($3 AS TEXT) IS NULL OR o.organization_id = $3) \
           AND (CAST($4 AS TEXT) IS NULL OR o.state = $4) \
         ORDER BY o.name, o.id"
    )))
    .bind(i64::from(user.as_ref().is_some_and(|u| u.is_staff)))
    .bind(user.as_ref().map_or("", |u| u.id.as_str()))
    .bind(query.organization)
    .bind(query.state)
    .fetch_all(state.db.pool())
    .await?;
    rows.iter().map(offering_out).collect::<Result<_>>().map(|items| paging.page(items))
}

/// One offering: an active one for anyone, any state for its provider's
/// members and operators.
#[utoipa::path(
    get,
    path = "/api/offerings/{id}",
    params(("id" = String, Path, description = "Offering id.")),
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The offering.", body = OfferingOut)),
)]
async fn show(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<OfferingOut>> {
    load(&state, user.as_ref(), &id).await.map(|(offering, _)| Json(offering))
}

/// Checks that the agent belongs to `org`, the version (if any) to the
/// agent, and the category (if any) exists.
async fn check_refs(
    state: &AppState,
    org: &str,
    agent: &str,
    version: Option<&str>,
    category: Option<&str>,
) -> Result<()> {
    let owner: Option<String> = sqlx::query_scalar("SELECT organization_id FROM provider_agent WHERE id = $1")
        .bind(agent)
        .fetch_optional(state.db.pool())
        .await?;
    if owner.as_deref() != Some(org) {
        return Err(Error::Invalid(format!("`provider_agent_id`: no agent `{agent}` in this organisation")));
    }
    if let Some(version) = version {
        let of: Option<String> = sqlx::query_scalar("SELECT provider_agent_id FROM flow_version WHERE id = $1")
            .bind(version)
            .fetch_optional(state.db.pool())
            .await?;
        if of.as_deref() != Some(agent) {
            return Err(Error::Invalid(format!("`flow_version_id`: the agent has no version `{version}`")));
        }
    }
    if let Some(category) = category {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM category WHERE id = $1")
            .bind(category)
            .fetch_optional(state.db.pool())
            .await?;
        if found.is_none() {
            return Err(Error::Invalid(format!("`category_id`: no category `{category}` (see GET /api/categories/)")));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOffering {
    organization_id: String,
    provider_agent_id: String,
    flow_version_id: Option<String>,
    category_id: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    requires_approval: bool,
}

/// Creates a draft offering (owner or admin of an approved provider).
#[utoipa::path(
    post,
    path = "/api/offerings",
    request_body = CreateOffering,
    responses(
        (status = 201, description = "The draft offering.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin, or not an approved provider.", body = ErrorBody),
        (status = 404, description = "The organisation is not one of the caller's (`not_found`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateOffering>,
) -> Result<(StatusCode, Json<OfferingOut>)> {
    authorize(&state, &user, &body.organization_id, true).await?;
    ensure_provider(&state, &body.organization_id).await?;
    let name = required_text("name", &body.name, 200)?;
    let description = check_description(&body.description)?;
    check_refs(
        &state,
        &body.organization_id,
        &body.provider_agent_id,
        body.flow_version_id.as_deref(),
        body.category_id.as_deref(),
    )
    .await?;
    let row = sqlx::query(&format!(
        "INSERT INTO offering (id, organization_id, provider_agent_id, flow_version_id, category_id, name, \
         description, requires_approval, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $9) RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(new_id())
    .bind(&body.organization_id)
    .bind(&body.provider_agent_id)
    .bind(&body.flow_version_id)
    .bind(&body.category_id)
    .bind(&name)
    .bind(&description)
    .bind(i64::from(body.requires_approval))
    .bind(now_ms())
    .fetch_one(state.db.pool())
    .await?;
    Ok((StatusCode::CREATED, Json(offering_out(&row)?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateOffering {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    category_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    flow_version_id: Option<Option<String>>,
    requires_approval: Option<bool>,
}

/// Changes a draft or paused offering (owners and admins of the provider).
#[utoipa::path(
    patch,
    path = "/api/offerings/{id}",
    params(("id" = String, Path, description = "Offering id.")),
    request_body = UpdateOffering,
    responses(
        (status = 200, description = "The offering.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not draft or paused (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateOffering>,
) -> Result<Json<OfferingOut>> {
    let offering = load_managed(&state, &user, &id).await?;
    ensure_editable(&offering)?;
    let name = body.name.as_deref().map(|n| required_text("name", n, 200)).transpose()?.unwrap_or(offering.name);
    let description = body.description.as_deref().map(check_description).transpose()?.unwrap_or(offering.description);
    let category = body.category_id.unwrap_or(offering.category_id);
    let version = body.flow_version_id.unwrap_or(offering.flow_version_id);
    let requires_approval = body.requires_approval.unwrap_or(offering.requires_approval);
    check_refs(&state, &offering.organization_id, &offering.provider_agent_id, version.as_deref(), category.as_deref())
        .await?;
    // The state guard again, in case it was submitted meanwhile.
    let row = sqlx::query(&format!(
        "UPDATE offering SET name = $1, description = $2, category_id = $3, flow_version_id = $4, \
         requires_approval = $5, updated_at = $6, {MARK_CHANGED} WHERE id = $7 AND state IN ('draft', 'paused') \
         RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(&name)
    .bind(&description)
    .bind(&category)
    .bind(&version)
    .bind(i64::from(requires_approval))
    .bind(now_ms())
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await?;
    match row {
        Some(row) => offering_out(&row).map(Json),
        None => Err(Error::InvalidTransition("the offering changed state meanwhile: reload it".into())),
    }
}

/// Remembers that a paused offering changed since its review, so that
/// resuming it sends it back to the operators (a draft is reviewed anyway).
const MARK_CHANGED: &str = "changed_since_review = CASE WHEN state = 'paused' THEN 1 ELSE changed_since_review END";

/// Records an edit of offering `id`'s plans in the edit's transaction:
/// refuses (409) unless the offering is still draft or paused, and marks
/// a paused one as changed since its review.
pub async fn mark_changed(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    let marked =
        sqlx::query(&format!("UPDATE offering SET {MARK_CHANGED} WHERE id = $1 AND state IN ('draft', 'paused')"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    if marked.rows_affected() == 0 {
        return Err(Error::InvalidTransition("the offering changed state meanwhile: reload it".into()));
    }
    Ok(())
}

/// What a move does to `review_note`.
enum Note {
    Keep,
    Clear,
    Set(String),
}

async fn change_state(
    state: &AppState,
    id: &str,
    from: &[&'static str],
    to: &'static str,
    note: Note,
) -> Result<Json<OfferingOut>> {
    let mut tx = state.db.begin().await?;
    transition(&mut tx, OFFERING, id, from, to).await?;
    let note = match note {
        Note::Keep => None,
        Note::Clear => Some(None),
        Note::Set(text) => Some(Some(text)),
    };
    if let Some(note) = note {
        sqlx::query("UPDATE offering SET review_note = $1 WHERE id = $2").bind(note).bind(id).execute(&mut *tx).await?;
    }
    if to == "active" {
        // Approved as it stands now: new orders get the version reviewed,
        // and later changes while paused count anew.
        sqlx::query(
            "UPDATE offering SET approved_flow_version_id = COALESCE(review_flow_version_id, approved_flow_version_id), \
             changed_since_review = 0 \
             WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    // Out of review, by approval or not: no review is pending any more.
    sqlx::query("UPDATE offering SET review_flow_version_id = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(offering = %id, state = to, "offering moved");
    fetch(state, id).await?.ok_or_else(|| Error::NotFound(format!("no offering `{id}`"))).map(Json)
}

/// `draft → pending_review`: needs a plan and a flow version to sell
/// (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/submit",
    params(("id" = String, Path, description = "Offering id.")),
    responses(
        (status = 200, description = "The offering, pending review.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not draft, or no plan or flow version (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn submit(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<OfferingOut>> {
    let offering = load_managed(&state, &user, &id).await?;
    let mut tx = state.db.begin().await?;
    transition(&mut tx, OFFERING, &id, &["draft"], "pending_review").await?;
    let plans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plan WHERE offering_id = $1 AND archived_at IS NULL")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    if plans == 0 {
        return Err(Error::InvalidTransition(format!(
            "the offering has no plan: add one with POST /api/offerings/{id}/plans/ before submitting"
        )));
    }
    let to_review: Option<String> = sqlx::query_scalar(&format!(
        "UPDATE offering SET review_flow_version_id = {VERSION_TO_REVIEW} WHERE id = $1 \
         RETURNING review_flow_version_id"
    ))
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    if to_review.is_none() {
        return Err(Error::InvalidTransition(format!(
            "the provider agent has no flow version: import one with POST /api/provider-agents/{}/import_flow/",
            offering.provider_agent_id
        )));
    }
    tx.commit().await?;
    fetch(&state, &id).await?.ok_or_else(|| Error::NotFound(format!("no offering `{id}`"))).map(Json)
}

/// `pending_review → active` (operators).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/approve",
    params(("id" = String, Path, description = "Offering id.")),
    request_body = Option<Empty>,
    responses(
        (status = 200, description = "The active offering.", body = OfferingOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "Not pending review (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn approve(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    OptionalJsonBody(Empty {}): OptionalJsonBody<Empty>,
) -> Result<Json<OfferingOut>> {
    change_state(&state, &id, &["pending_review"], "active", Note::Clear).await
}

/// `pending_review → draft` with the reason (operators).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/reject",
    params(("id" = String, Path, description = "Offering id.")),
    request_body = Reject,
    responses(
        (status = 200, description = "The offering, back in draft with the note.", body = OfferingOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "Not pending review (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn reject(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reject>,
) -> Result<Json<OfferingOut>> {
    let reason = required_text("reason", &body.reason, 4000)?;
    change_state(&state, &id, &["pending_review"], "draft", Note::Set(reason)).await
}

/// `active → paused`: no new orders; existing subscriptions keep running
/// (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/pause",
    params(("id" = String, Path, description = "Offering id.")),
    responses(
        (status = 200, description = "The paused offering.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not active (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn pause(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<OfferingOut>> {
    load_managed(&state, &user, &id).await?;
    change_state(&state, &id, &["active"], "paused", Note::Keep).await
}

/// `paused → active`, or `paused → pending_review` when the offering or
/// one of its plans changed while paused, or when its agent has a newer
/// flow version than the approved one and the offering pins none: buyers
/// see only what operators reviewed (owners and admins of the provider).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/resume",
    params(("id" = String, Path, description = "Offering id.")),
    responses(
        (status = 200, description = "The offering: active, or pending review when it or the version it would sell changed.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Not paused (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn resume(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Json<OfferingOut>> {
    load_managed(&state, &user, &id).await?;
    let mut tx = state.db.begin().await?;
    // The move holds the row, so no edit slips in between it and the check.
    transition(&mut tx, OFFERING, &id, &["paused"], "active").await?;
    let review = sqlx::query(&format!(
        "UPDATE offering SET state = 'pending_review', review_flow_version_id = {VERSION_TO_REVIEW} \
         WHERE id = $1 AND (changed_since_review = 1 OR approved_flow_version_id IS NULL \
                            OR approved_flow_version_id <> {VERSION_TO_REVIEW})"
    ))
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let to = if review.rows_affected() == 1 { "pending_review" } else { "active" };
    tracing::info!(offering = %id, state = to, "offering resumed");
    fetch(&state, &id).await?.ok_or_else(|| Error::NotFound(format!("no offering `{id}`"))).map(Json)
}

/// `draft | pending_review | paused → archived`, for good (owners and
/// admins of the provider).
#[utoipa::path(
    post,
    path = "/api/offerings/{id}/archive",
    params(("id" = String, Path, description = "Offering id.")),
    responses(
        (status = 200, description = "The archived offering.", body = OfferingOut),
        (status = 403, description = "Not an owner or admin of the provider.", body = ErrorBody),
        (status = 409, description = "Active or already archived (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn archive(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OfferingOut>> {
    load_managed(&state, &user, &id).await?;
    change_state(&state, &id, &["draft", "pending_review", "paused"], "archived", Note::Keep).await
}
