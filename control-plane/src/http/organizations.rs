//! `/api/organizations/`: organisations, their members and roles, and the
//! request for service-provider status.
//!
//! Roles: an `owner` may do everything, including managing owners; an
//! `admin` manages members (but not owners), provider agents and the
//! provider request; a `member` reads. An organisation always keeps at
//! least one owner. Someone who is not a member gets 404, as if the
//! organisation did not exist; staff operators may read every organisation.

use super::Path;
use super::paging::{Page, PageParams, Paging};
use super::{JsonBody, OptionalJsonBody, required_text};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
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
        "organizations",
        OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(show))
            .routes(routes!(members, add_member))
            .routes(routes!(change_role, remove_member))
            .routes(routes!(provider_request, request_provider)),
    )
}

type ErrorBody = crate::error::ErrorBody;

/// A member's role in an organisation, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including managing owners.
    Owner,
    /// Manages members, agents and the provider request.
    Admin,
    /// Reads.
    Member,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// The role a stored name stands for.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            other => Err(Error::internal(format!("unknown role `{other}` in the database"))),
        }
    }

    /// Whether this role may manage the organisation (members, agents).
    pub fn can_manage(self) -> bool {
        self <= Self::Admin
    }
}

/// The caller's role in `org`: `NotFound` for someone outside it, who may
/// not know it exists; `Forbidden` when `need_manage` and the role is too
/// weak. Staff operators from outside read as members (so they may read,
/// and are told 403, not 404, when they may not act).
pub async fn authorize(state: &AppState, user: &CurrentUser, org: &str, need_manage: bool) -> Result<Role> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2")
            .bind(org)
            .bind(&user.id)
            .fetch_optional(state.db.pool())
            .await?;
    let role = match role {
        Some(role) => Role::parse(&role)?,
        None if user.is_staff && org_exists(state, org).await? => Role::Member,
        None => return Err(Error::NotFound(format!("no organisation `{org}` among yours"))),
    };
    if need_manage && !role.can_manage() {
        return Err(Error::Forbidden("only an owner or admin of the organisation may do this".into()));
    }
    Ok(role)
}

/// The user's own role in `org`, if they are a member (staff status does
/// not count here).
pub async fn role_in(state: &AppState, user: &str, org: &str) -> Result<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(state.db.pool())
            .await?;
    role.as_deref().map(Role::parse).transpose()
}

/// Whether organisation `org` exists.
pub(crate) async fn org_exists(state: &AppState, org: &str) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM organization WHERE id = $1")
        .bind(org)
        .fetch_optional(state.db.pool())
        .await?;
    Ok(found.is_some())
}

/// An organisation as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationOut {
    id: String,
    name: String,
    /// `none`, `pending`, `approved` or `rejected`.
    provider_status: String,
    /// The caller's role (`member` for an operator from outside).
    role: Option<Role>,
    created_at_ms: i64,
}

fn org_out(row: &AnyRow, role: Option<Role>) -> Result<OrganizationOut> {
    Ok(OrganizationOut {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        provider_status: row.try_get("provider_status")?,
        role,
        created_at_ms: row.try_get("created_at")?,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOrganization {
    name: String,
}

/// Creates an organisation; its creator is its owner.
#[utoipa::path(
    post,
    path = "/api/organizations",
    request_body = CreateOrganization,
    responses((status = 201, description = "The organisation.", body = OrganizationOut)),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateOrganization>,
) -> Result<(StatusCode, Json<OrganizationOut>)> {
    let name = required_text("name", &body.name, 200)?;
    let id = new_id();
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    sqlx::query("INSERT INTO organization (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
        .bind(&id)
        .bind(&name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO membership (organization_id, user_id, role, created_at, updated_at) VALUES ($1, $2, 'owner', $3, $3)",
    )
    .bind(&id)
    .bind(&user.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let out = OrganizationOut { id, name, provider_status: "none".into(), role: Some(Role::Owner), created_at_ms: now };
    Ok((StatusCode::CREATED, Json(out)))
}

/// The caller's organisations.
#[utoipa::path(
    get,
    path = "/api/organizations",
    params(PageParams),
    responses((status = 200, description = "The organisations.", body = Vec<OrganizationOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(State(state): State<AppState>, user: CurrentUser, paging: Paging) -> Result<Page<OrganizationOut>> {
    let rows = sqlx::query(&paging.sql(
        "SELECT o.id, o.name, o.provider_status, o.created_at, m.role FROM organization o \
         JOIN membership m ON m.organization_id = o.id WHERE m.user_id = $1 ORDER BY o.name, o.id",
    ))
    .bind(&user.id)
    .fetch_all(state.db.pool())
    .await?;
    let orgs: Result<Vec<_>> =
        rows.iter().map(|r| org_out(r, Some(Role::parse(&r.try_get::<String, _>("role")?)?))).collect();
    orgs.map(|items| paging.page(items))
}

/// One of the caller's organisations (members; operators read any).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}",
    params(("id" = String, Path, description = "Organisation id.")),
    responses((status = 200, description = "The organisation.", body = OrganizationOut)),
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<OrganizationOut>> {
    let role = authorize(&state, &user, &id, false).await?;
    let row = sqlx::query("SELECT id, name, provider_status, created_at FROM organization WHERE id = $1")
        .bind(&id)
        .fetch_one(state.db.pool())
        .await?;
    org_out(&row, Some(role)).map(Json)
}

/// A member and their role.
#[derive(Debug, Serialize, ToSchema)]
struct MemberOut {
    user_id: String,
    email: String,
    name: String,
    role: Role,
}

/// The organisation's members (members; operators read any).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/members",
    params(("id" = String, Path, description = "Organisation id."), PageParams),
    responses((status = 200, description = "The members.", body = Vec<MemberOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn members(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    paging: Paging,
) -> Result<Page<MemberOut>> {
    authorize(&state, &user, &id, false).await?;
    let rows = sqlx::query(&paging.sql(
        "SELECT u.id, u.email, u.name, m.role FROM membership m JOIN user_account u ON u.id = m.user_id \
         WHERE m.organization_id = $1 ORDER BY u.email, u.id",
    ))
    .bind(&id)
    .fetch_all(state.db.pool())
    .await?;
    let members = rows
        .iter()
        .map(|r| {
            Ok(MemberOut {
                user_id: r.try_get("id")?,
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                role: Role::parse(&r.try_get::<String, _>("role")?)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(paging.page(members))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddMember {
    email: String,
    role: Role,
}

/// Adds an existing account to the organisation (owners and admins; only
/// an owner makes owners).
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/members",
    params(("id" = String, Path, description = "Organisation id.")),
    request_body = AddMember,
    responses(
        (status = 201, description = "The new member.", body = MemberOut),
        (status = 403, description = "Not an owner or admin, or an admin making an owner.", body = ErrorBody),
        (status = 409, description = "Already a member (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn add_member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<(StatusCode, Json<MemberOut>)> {
    let mine = authorize(&state, &user, &id, true).await?;
    if body.role == Role::Owner && mine != Role::Owner {
        return Err(Error::Forbidden("only an owner may make someone an owner".into()));
    }
    let email = super::auth::normalize_email(&body.email)?;
    let row = sqlx::query("SELECT id, name FROM user_account WHERE email = $1")
        .bind(&email)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| Error::Invalid(format!("no account with email `{email}`: ask them to register first")))?;
    let user_id: String = row.try_get("id")?;
    let inserted = sqlx::query(
        "INSERT INTO membership (organization_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (organization_id, user_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&user_id)
    .bind(body.role.as_str())
    .bind(now_ms())
    .execute(state.db.pool())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::InvalidTransition(format!(
            "`{email}` is already a member: change their role with PATCH …/members/{user_id}"
        )));
    }
    Ok((StatusCode::CREATED, Json(MemberOut { user_id, email, name: row.try_get("name")?, role: body.role })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeRole {
    role: Role,
}

/// A member's new role.
#[derive(Debug, Serialize, ToSchema)]
struct MemberRole {
    user_id: String,
    role: Role,
}

/// Changes a member's role (owners and admins; only an owner touches
/// owners). The organisation keeps an owner.
#[utoipa::path(
    patch,
    path = "/api/organizations/{id}/members/{user_id}",
    params(("id" = String, Path, description = "Organisation id."), ("user_id" = String, Path, description = "The member's account id.")),
    request_body = ChangeRole,
    responses(
        (status = 200, description = "The new role.", body = MemberRole),
        (status = 403, description = "Not an owner or admin, or an admin touching an owner.", body = ErrorBody),
        (status = 409, description = "It would leave no owner (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn change_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, member)): Path<(String, String)>,
    JsonBody(body): JsonBody<ChangeRole>,
) -> Result<Json<MemberRole>> {
    let mine = authorize(&state, &user, &id, true).await?;
    let mut tx = state.db.begin().await?;
    let current = member_role(&mut tx, &id, &member).await?;
    if mine != Role::Owner && (current == Role::Owner || body.role == Role::Owner) {
        return Err(Error::Forbidden("only an owner may change an owner's role or make someone an owner".into()));
    }
    sqlx::query("UPDATE membership SET role = $1, updated_at = $2 WHERE organization_id = $3 AND user_id = $4")
        .bind(body.role.as_str())
        .bind(now_ms())
        .bind(&id)
        .bind(&member)
        .execute(&mut *tx)
        .await?;
    ensure_an_owner_remains(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(Json(MemberRole { user_id: member, role: body.role }))
}

/// Removes a member (admins and owners), or leaves (anyone, themselves).
#[utoipa::path(
    delete,
    path = "/api/organizations/{id}/members/{user_id}",
    params(("id" = String, Path, description = "Organisation id."), ("user_id" = String, Path, description = "The member's account id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Not an owner or admin, or an admin removing an owner.", body = ErrorBody),
        (status = 409, description = "It would leave no owner (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn remove_member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode> {
    let leaving = member == user.id;
    let mine = authorize(&state, &user, &id, !leaving).await?;
    let mut tx = state.db.begin().await?;
    let current = member_role(&mut tx, &id, &member).await?;
    if !leaving && current == Role::Owner && mine != Role::Owner {
        return Err(Error::Forbidden("only an owner may remove an owner".into()));
    }
    sqlx::query("DELETE FROM membership WHERE organization_id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&member)
        .execute(&mut *tx)
        .await?;
    ensure_an_owner_remains(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn member_role(tx: &mut Transaction<'_, Any>, org: &str, member: &str) -> Result<Role> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2")
            .bind(org)
            .bind(member)
            .fetch_optional(&mut **tx)
            .await?;
    Role::parse(&role.ok_or_else(|| Error::NotFound(format!("`{member}` is not a member of this organisation")))?)
}

async fn ensure_an_owner_remains(tx: &mut Transaction<'_, Any>, org: &str) -> Result<()> {
    let owners: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM membership WHERE organization_id = $1 AND role = 'owner'")
            .bind(org)
            .fetch_one(&mut **tx)
            .await?;
    if owners == 0 {
        return Err(Error::InvalidTransition(
            "the organisation would have no owner left: make someone else an owner first".into(),
        ));
    }
    Ok(())
}

/// A request for service-provider status as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRequestOut {
    /// Request id.
    pub id: String,
    /// The organisation asking.
    pub organization_id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// What the organisation wrote.
    pub note: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// Which operator decided.
    pub decided_by: Option<String>,
    /// When it was asked.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// Columns [`provider_request_out`] reads.
pub const PROVIDER_REQUEST_COLUMNS: &str =
    "id, organization_id, status, note, reason, requested_by, decided_by, created_at, updated_at";

/// Reads a `provider_request` row.
pub fn provider_request_out(row: &AnyRow) -> Result<ProviderRequestOut> {
    Ok(ProviderRequestOut {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        status: row.try_get("status")?,
        note: row.try_get("note")?,
        reason: row.try_get("reason")?,
        requested_by: row.try_get("requested_by")?,
        decided_by: row.try_get("decided_by")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RequestProvider {
    /// What the organisation sells, for the operators.
    #[serde(default)]
    note: String,
}

/// Asks the operators to make this organisation a service provider. Allowed
/// when it is not one and has no open request (after a rejection, again).
/// Owners and admins; the body may be left out.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/provider-request",
    params(("id" = String, Path, description = "Organisation id.")),
    request_body = Option<RequestProvider>,
    responses(
        (status = 201, description = "The pending request.", body = ProviderRequestOut),
        (status = 403, description = "Not an owner or admin.", body = ErrorBody),
        (status = 409, description = "Already pending or approved (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn request_provider(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<RequestProvider>,
) -> Result<(StatusCode, Json<ProviderRequestOut>)> {
    authorize(&state, &user, &id, true).await?;
    let note = body.note.trim().to_owned();
    if note.chars().count() > 4000 {
        return Err(Error::Invalid("`note` must be at most 4000 characters".into()));
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // The guarded update is the state check: it fails if another request
    // changed the status first.
    let moved = sqlx::query(
        "UPDATE organization SET provider_status = 'pending', updated_at = $1 \
         WHERE id = $2 AND provider_status IN ('none', 'rejected')",
    )
    .bind(now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        let status: String = sqlx::query_scalar("SELECT provider_status FROM organization WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        return Err(Error::InvalidTransition(match status.as_str() {
            "pending" => "a provider request is already pending: wait for an operator's decision".into(),
            "approved" => "the organisation is already a service provider".into(),
            other => format!("cannot request provider status from status `{other}`"),
        }));
    }
    let request_id = new_id();
    let row = sqlx::query(&format!(
        "INSERT INTO provider_request (id, organization_id, status, note, requested_by, created_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, $4, $5, $5) RETURNING {PROVIDER_REQUEST_COLUMNS}"
    ))
    .bind(&request_id)
    .bind(&id)
    .bind(&note)
    .bind(&user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let out = provider_request_out(&row)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The organisation's latest provider request (members; operators read
/// any).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/provider-request",
    params(("id" = String, Path, description = "Organisation id.")),
    responses((status = 200, description = "The latest request.", body = ProviderRequestOut)),
)]
async fn provider_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ProviderRequestOut>> {
    authorize(&state, &user, &id, false).await?;
    let row = sqlx::query(&format!(
        "SELECT {PROVIDER_REQUEST_COLUMNS} FROM provider_request WHERE organization_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| Error::NotFound("this organisation has not asked to become a provider".into()))?;
    provider_request_out(&row).map(Json)
}
