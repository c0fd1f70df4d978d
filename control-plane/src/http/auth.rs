//! `POST /api/auth/register`, `POST /api/auth/login`, `POST /api/auth/logout`.

use super::{JsonBody, required_text};
use crate::AppState;
use crate::auth::{CurrentUser, SESSION_COOKIE, dummy_hash, hash_password, new_token, token_hash, verify_password};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("auth", OpenApiRouter::new().routes(routes!(register)).routes(routes!(login)).routes(routes!(logout)))
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (bounds the hashing work a request can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Lower-cases and checks an email address.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(Error::Invalid("`email` must be an email address like ada@example.com".into())) }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::Invalid(format!("`password` must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Invalid(format!("`password` must be at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Register {
    email: String,
    password: String,
    name: String,
}

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Account id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Staff operator.
    pub is_staff: bool,
}

/// Creates an account. The first account of a fresh installation is the
/// staff operator (so a new install can be administered at all); later ones
/// are not. Operators can also be made with
/// [`bootstrap_operator`](crate::bootstrap_operator).
#[utoipa::path(
    post,
    path = "/api/auth/register",
    security(()),
    request_body = Register,
    responses(
        (status = 201, description = "The account.", body = UserOut),
        (status = 409, description = "The email is taken (`conflict`).", body = crate::error::ErrorBody),
    ),
)]
async fn register(State(state): State<AppState>, JsonBody(body): JsonBody<Register>) -> Result<Response> {
    let email = normalize_email(&body.email)?;
    let name = required_text("name", &body.name, 200)?;
    check_password(&body.password)?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(Error::internal)??;
    let id = new_id();
    let now = now_ms();
    // The emptiness check and the insert are one statement. SQLite runs
    // writers one at a time, so only one account can be first there; on
    // PostgreSQL two registrations racing on an empty installation could
    // both be made staff, which is why an installation reachable by others
    // should create its operator with `bootstrap_operator` first.
    let row = sqlx::query(
        "INSERT INTO user_account (id, email, name, password_hash, is_staff, created_at, updated_at) \
         SELECT $1, $2, $3, $4, CASE WHEN EXISTS (SELECT 1 FROM user_account) THEN 0 ELSE 1 END, $5, $5 \
         RETURNING is_staff",
    )
    .bind(&id)
    .bind(&email)
    .bind(&name)
    .bind(&hash)
    .bind(now)
    .fetch_one(state.db.pool())
    .await?;
    let is_staff = row.try_get::<i64, _>("is_staff")? != 0;
    tracing::info!(user = %id, is_staff, "account registered");
    Ok((StatusCode::CREATED, Json(UserOut { id, email, name, is_staff })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct LoginOut {
    token: String,
    token_type: &'static str,
    expires_at_ms: i64,
    user: UserOut,
}

/// Signs in: the token is in the body (for `Authorization: Bearer`) and in
/// an `HttpOnly` session cookie (for the console).
#[utoipa::path(
    post,
    path = "/api/auth/login",
    security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Signed in; the session cookie is set too.", body = LoginOut,
         headers(("set-cookie" = String, description = "`sandflow_session=<token>; HttpOnly; SameSite=Lax`"))),
        (status = 401, description = "Wrong email or password (`unauthorized`).", body = crate::error::ErrorBody),
    ),
)]
async fn login(State(state): State<AppState>, JsonBody(body): JsonBody<Login>) -> Result<Response> {
    let refused = || Error::Unauthorized("wrong email or password".into());
    let email = normalize_email(&body.email).map_err(|_| refused())?;
    if body.password.len() > MAX_PASSWORD_BYTES {
        return Err(refused());
    }
    let row = sqlx::query("SELECT id, email, name, password_hash, is_staff FROM user_account WHERE email = $1")
        .bind(&email)
        .fetch_optional(state.db.pool())
        .await?;
    let stored = match &row {
        Some(row) => row.try_get::<String, _>("password_hash")?,
        None => dummy_hash().to_owned(),
    };
    let password = body.password;
    let matches =
        tokio::task::spawn_blocking(move || verify_password(&password, &stored)).await.map_err(Error::internal)?;
    let row = row.filter(|_| matches).ok_or_else(refused)?;
    let user = UserOut {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        is_staff: row.try_get::<i64, _>("is_staff")? != 0,
    };
    let token = new_token()?;
    let now = now_ms();
    let lifetime_ms = i64::from(state.config.session_hours) * 3_600_000;
    let expires_at_ms = now.saturating_add(lifetime_ms);
    sqlx::query(
        "INSERT INTO session_token (token_hash, user_id, expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(token_hash(&token))
    .bind(&user.id)
    .bind(expires_at_ms)
    .bind(now)
    .execute(state.db.pool())
    .await?;
    // Expired sessions of this user are of no use to anyone.
    sqlx::query("DELETE FROM session_token WHERE user_id = $1 AND expires_at <= $2")
        .bind(&user.id)
        .bind(now)
        .execute(state.db.pool())
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        lifetime_ms / 1000,
        if state.config.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = Json(LoginOut { token, token_type: "Bearer", expires_at_ms, user }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(Error::internal)?);
    Ok(response)
}

/// Ends the session the request was made with and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    responses((status = 204, description = "Signed out; the cookie is cleared.")),
)]
async fn logout(State(state): State<AppState>, user: CurrentUser) -> Result<Response> {
    sqlx::query("DELETE FROM session_token WHERE token_hash = $1")
        .bind(&user.token_hash)
        .execute(state.db.pool())
        .await?;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(Error::internal)?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(normalize_email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@example", "ada@.com", "a da@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough password").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
