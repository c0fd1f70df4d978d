//! Agent API keys: HS256 JWTs the runtime hosts verify with the same
//! `--key-secret` list (header `kid` names the secret). The control plane
//! signs with the first secret and stores only the SHA-256 of the key text.

use crate::config::Config;
use crate::error::{Error, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// What a key grants; the names are the runtime host's
/// (`sandflow_runtime_host::api::keys::Claims`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The key's id (what `key.revoked` names).
    pub sub: String,
    /// The tenant: the consumer organisation.
    pub tenant: String,
    /// The agents the key may call: its resource.
    pub agents: Vec<String>,
    /// `run` (server keys) and/or `widget` (browser keys).
    pub scopes: Vec<String>,
    /// The subscription runs are billed to: its resource.
    pub subscription: Option<String>,
    /// Requests per minute (the plan's), or the host's default.
    pub rpm: Option<u32>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Signs `claims` with the first configured key secret; returns the key
/// text and the `kid` it was signed under. 503 when no secret is set.
pub fn issue(config: &Config, claims: &Claims) -> Result<(String, String)> {
    let (kid, secret) = config
        .signing_key()
        .ok_or_else(|| {
            Error::Unavailable(
                "agent API keys are off: start the control plane with --key-secret kid=secret (SANDFLOW_KEY_SECRETS)"
                    .into(),
            )
        })?
        .map_err(Error::Unavailable)?;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let token =
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).map_err(Error::internal)?;
    Ok((token, kid.to_owned()))
}
