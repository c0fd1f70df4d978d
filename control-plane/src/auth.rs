//! Identity: password hashing, session tokens, and the extractors that
//! authenticate a request ([`CurrentUser`], [`Operator`], [`RuntimeService`]).
//!
//! A login creates a random 256-bit token. The client gets it twice: in the
//! body (for `Authorization: Bearer …`, the API's way) and as an `HttpOnly`
//! `SameSite=Lax` cookie (the console's way, out of reach of page scripts).
//! The database keeps only its SHA-256, so a leaked database does not leak
//! live sessions. Cross-site request forgery against cookie sessions is
//! stopped by `SameSite=Lax`, by bodies being JSON only (a cross-site form
//! cannot send `application/json` without a CORS preflight) and, for the
//! requests a form can still send (no body, or `multipart/form-data`) from
//! a sibling subdomain, which `SameSite` counts as the same site, by
//! [`check_cookie_origin`]: a cookie authenticates a request that changes
//! something only when the browser says it comes from this origin.

use crate::AppState;
use crate::db::now_ms;
use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::OnceLock;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sandflow_session";

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, 2 passes),
/// salted with 16 random bytes. CPU-heavy: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(Error::internal)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(Error::internal)
}

/// Whether `password` matches `hash` (from [`hash_password`]).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash to verify against when the account does not exist, so that a
/// wrong email takes as long as a wrong password (no account enumeration
/// by timing).
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// A new session token (64 hex characters, 256 random bits).
pub fn new_token() -> Result<String> {
    Ok(hex::encode(random_bytes::<32>()?))
}

/// What the database stores for a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(Error::internal)?;
    Ok(buf)
}

/// The token a request presents: the bearer token if there is an
/// `Authorization` header (a bad one is not overridden by a cookie), else
/// the session cookie.
fn presented_token(parts: &Parts) -> Result<Option<String>> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        return Ok(Some(token.to_owned()));
    }
    let token = session_cookie(parts);
    if token.is_some() {
        check_cookie_origin(parts)?;
    }
    Ok(token)
}

/// Refuses (403) a cookie-authenticated request that may change something
/// (any method but `GET`, `HEAD`, `OPTIONS`) when the browser says it
/// comes from another origin: `Sec-Fetch-Site` other than `same-origin`
/// or `none`, or, from browsers that do not send that, an `Origin` whose
/// host is not the request's `Host`. Clients that send neither (scripts,
/// curl) are not browsers a page can drive.
fn check_cookie_origin(parts: &Parts) -> Result<()> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let same_origin = match (header("sec-fetch-site"), header("origin")) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            header("host").is_some_and(|own| own.eq_ignore_ascii_case(host))
        }
        (None, None) => true,
    };
    if same_origin {
        return Ok(());
    }
    Err(Error::Forbidden(
        "the session cookie is accepted only from this console's own pages; other sites' pages and apps send \
         `Authorization: Bearer <token>`"
            .into(),
    ))
}

fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The signed-in user making the request (bearer token or session cookie).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Account id.
    pub id: String,
    /// Email (lower case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether this is a staff operator.
    pub is_staff: bool,
    /// Hash of the token used, so logout can end exactly this session.
    pub token_hash: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = presented_token(parts)?.ok_or_else(|| {
            Error::Unauthorized("sign in first: send `Authorization: Bearer <token>` or the session cookie".into())
        })?;
        let hash = token_hash(&token);
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.is_staff FROM session_token s \
             JOIN user_account u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(&hash)
        .bind(now_ms())
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| Error::Unauthorized("the session is unknown, expired or signed out: sign in again".into()))?;
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            is_staff: row.try_get::<i64, _>("is_staff")? != 0,
            token_hash: hash,
        })
    }
}

/// The signed-in user if the request presents credentials, `None` for an
/// anonymous request (for routes anyone may read). Credentials that are
/// presented but wrong are still a 401.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if presented_token(parts)?.is_none() {
            return Ok(Self(None));
        }
        CurrentUser::from_request_parts(parts, state).await.map(|user| Self(Some(user)))
    }
}

/// A signed-in staff operator; anyone else is refused with 403.
#[derive(Debug, Clone)]
pub struct Operator(pub CurrentUser);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_staff {
            return Err(Error::Forbidden("only staff operators may do this".into()));
        }
        Ok(Self(user))
    }
}

/// A runtime host, authenticated by the configured runtime token.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeService;

impl FromRequestParts<AppState> for RuntimeService {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Some(expected) = &state.config.runtime_token else {
            return Err(Error::Unavailable(
                "the runtime API (usage ingestion, change feed) is off: start the control plane with \
                 --runtime-token (SANDFLOW_RUNTIME_TOKEN)"
                    .into(),
            ));
        };
        let presented = presented_token(parts)?
            .filter(|_| parts.headers.contains_key(header::AUTHORIZATION))
            .ok_or_else(|| Error::Unauthorized("send the runtime token as `Authorization: Bearer <token>`".into()))?;
        // Compare digests, so the time taken does not depend on how much of
        // the token matched.
        if Sha256::digest(presented.as_bytes()) != Sha256::digest(expected.expose().as_bytes()) {
            return Err(Error::Unauthorized("the runtime token is wrong".into()));
        }
        Ok(Self)
    }
}

/// Creates a staff operator account, or makes an existing account staff and
/// sets its password. For the CLI (`sandflow admin …`) and first setup.
pub async fn bootstrap_operator(db: &crate::db::Db, email: &str, password: &str) -> Result<String> {
    let email = crate::http::auth::normalize_email(email)?;
    crate::http::auth::check_password(password)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(Error::internal)??;
    let now = now_ms();
    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM user_account WHERE email = $1")
        .bind(&email)
        .fetch_optional(db.pool())
        .await?;
    if let Some(id) = existing {
        sqlx::query("UPDATE user_account SET is_staff = 1, password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&hash)
            .bind(now)
            .bind(&id)
            .execute(db.pool())
            .await?;
        return Ok(id);
    }
    let id = crate::db::new_id();
    let name = email.split('@').next().unwrap_or_default().to_owned();
    sqlx::query(
        "INSERT INTO user_account (id, email, name, password_hash, is_staff, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(&id)
    .bind(&email)
    .bind(&name)
    .bind(&hash)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
