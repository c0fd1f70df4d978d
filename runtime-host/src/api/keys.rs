//! API keys: JWTs signed by the control plane (HS256, one secret per `kid`
//! so keys rotate without downtime), checked at the door, with a revocation
//! set that can change while the host runs.
//!
//! What it defends against: forged tokens (signature checked against the
//! key named by `kid`, never a key the token brings), `alg: none` and
//! algorithm confusion (only HS256 is accepted), replay after expiry (`exp`
//! required, no leeway), and revoked keys (checked on every request).
//!
//! A revocation that names the key's expiry is forgotten once the key has
//! expired (it could not verify any more), so the set holds only the
//! revoked keys that could still be used, however many are revoked over
//! the years.
//!
//! A key that verified once is remembered (by its exact text, so no other
//! token can match it) until it expires, the signing secrets change or it
//! is revoked, which every hit checks: repeat requests skip the HMAC and
//! the JSON decoding. The secrets carry a generation that every change
//! bumps, and a key is remembered with the generation it verified under,
//! so a key checked against a secret that was rotated out meanwhile is
//! never taken from memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What an API key grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The key's id (what revocation names).
    pub sub: String,
    /// The tenant (buyer organisation) the key belongs to.
    pub tenant: String,
    /// Agents the key may call; empty means every agent of the tenant.
    #[serde(default)]
    pub agents: Vec<String>,
    /// `run` for server keys, `widget` for publishable browser keys.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The subscription runs are billed to.
    #[serde(default)]
    pub subscription: Option<String>,
    /// Requests per minute this key may make; `None` uses the host default.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No key in the request.
    #[error("an API key is required: send it in the `x-api-key` header or as `Authorization: Bearer <key>`")]
    Missing,
    /// Malformed, forged, wrongly signed or expired.
    #[error("the API key is invalid: {0}")]
    Invalid(String),
    /// Revoked by its owner or the operator.
    #[error("the API key has been revoked")]
    Revoked,
}

/// Most verified keys remembered; past it the memory starts over.
pub const VERIFIED_CACHE: usize = 10_000;

/// Revocations held before the first sweep of expired ones; later sweeps
/// come when the set has doubled since the last.
const REVOKED_SWEEP_FROM: usize = 1_024;

/// Verifies keys against the signing secrets and the revocation set.
#[derive(Default)]
pub struct KeyVerifier {
    secrets: DashMap<String, DecodingKey>,
    /// Bumped by every change to `secrets`.
    generation: AtomicU64,
    /// Revoked key ids, with the key's expiry when the revocation said it.
    revoked: DashMap<String, Option<u64>>,
    /// The size of `revoked` after its last sweep.
    revoked_swept: AtomicUsize,
    verified: DashMap<String, Verified>,
}

/// A key that verified: what it grants, and the generation of the secrets
/// it verified under.
struct Verified {
    claims: Claims,
    generation: u64,
}

impl KeyVerifier {
    /// Adds (or rotates in) the secret for `kid`.
    pub fn add_secret(&self, kid: &str, secret: &[u8]) {
        self.secrets.insert(kid.to_owned(), DecodingKey::from_secret(secret));
        self.secrets_changed();
    }

    /// Retires the secret for `kid`: keys signed with it stop working.
    pub fn remove_secret(&self, kid: &str) {
        self.secrets.remove(kid);
        self.secrets_changed();
    }

    /// Keys verified against the secrets as they were must verify again.
    fn secrets_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.verified.clear();
    }

    /// Revokes the key whose `sub` is `key_id`; `expires` is its `exp`
    /// when known, after which the revocation is forgotten.
    pub fn revoke(&self, key_id: &str, expires: Option<u64>) {
        self.revoke_at(key_id, expires, unix_seconds());
    }

    fn revoke_at(&self, key_id: &str, expires: Option<u64>, now: u64) {
        if expires.is_some_and(|exp| exp <= now) {
            return; // Expired: refused as such already.
        }
        self.revoked.insert(key_id.to_owned(), expires);
        let swept = self.revoked_swept.load(Ordering::Relaxed).max(REVOKED_SWEEP_FROM / 2);
        if self.revoked.len() >= 2 * swept {
            self.revoked.retain(|_, exp| exp.is_none_or(|exp| exp > now));
            self.revoked_swept.store(self.revoked.len(), Ordering::Relaxed);
        }
    }

    /// Revocations held (those of keys that have not expired, and those
    /// whose expiry was not said).
    pub fn revoked_len(&self) -> usize {
        self.revoked.len()
    }

    /// Checks a token and returns what it grants.
    pub fn verify(&self, token: &str) -> Result<Claims, KeyError> {
        // Read before the check: a rotation during it makes the entry stale.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(known) = self.verified.get(token) {
            let live = known.generation == generation && known.claims.exp > unix_seconds();
            if live && !self.revoked.contains_key(&known.claims.sub) {
                return Ok(known.claims.clone());
            }
        }
        let claims = self.verify_signed(token)?;
        self.remember(token, &claims, generation);
        Ok(claims)
    }

    fn remember(&self, token: &str, claims: &Claims, generation: u64) {
        if self.verified.len() >= VERIFIED_CACHE {
            self.verified.clear();
        }
        self.verified.insert(token.to_owned(), Verified { claims: claims.clone(), generation });
    }

    fn verify_signed(&self, token: &str) -> Result<Claims, KeyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| KeyError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(KeyError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| KeyError::Invalid("the key names no signing key (`kid`)".into()))?;
        let secret =
            self.secrets.get(&kid).ok_or_else(|| KeyError::Invalid(format!("signing key `{kid}` is unknown")))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &secret, &validation)
            .map_err(|e| KeyError::Invalid(e.to_string()))?
            .claims;
        if self.revoked.contains_key(&claims.sub) {
            return Err(KeyError::Revoked);
        }
        Ok(claims)
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Signs `claims` with `secret` under `kid` (the control plane's side; also
/// used by `sandflow demo` and tests).
pub fn issue(claims: &Claims, kid: &str, secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "key-1".into(),
            tenant: "t1".into(),
            agents: vec![],
            scopes: vec!["run".into()],
            subscription: None,
            rpm: None,
            exp,
        }
    }

    fn far_future() -> u64 {
        4_000_000_000
    }

    #[test]
    fn accepts_a_good_key_and_refuses_forgeries() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        let token = issue(&claims(far_future()), "k1", b"secret-one").unwrap();
        assert_eq!(v.verify(&token).unwrap().tenant, "t1");

        let forged = issue(&claims(far_future()), "k1", b"guessed").unwrap();
        assert!(matches!(v.verify(&forged), Err(KeyError::Invalid(_))));
        let unknown_kid = issue(&claims(far_future()), "k9", b"secret-one").unwrap();
        assert!(matches!(v.verify(&unknown_kid), Err(KeyError::Invalid(m)) if m.contains("k9")));
        let expired = issue(&claims(1), "k1", b"secret-one").unwrap();
        assert!(matches!(v.verify(&expired), Err(KeyError::Invalid(m)) if m.contains("xpired")));
        assert!(matches!(v.verify("not a jwt"), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn refuses_alg_none() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        use base64_free::encode;
        let header = encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let body = encode(br#"{"sub":"key-1","tenant":"t1","exp":4000000000}"#);
        assert!(matches!(v.verify(&format!("{header}.{body}.")), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn revocation_and_rotation_apply_at_once() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        let token = issue(&claims(far_future()), "k1", b"secret-one").unwrap();
        assert!(v.verify(&token).is_ok(), "verified, and now remembered");
        v.revoke("key-1", Some(far_future()));
        assert_eq!(v.verify(&token), Err(KeyError::Revoked));
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        assert!(v.verify(&token).is_ok());
        v.remove_secret("k1");
        assert!(v.verify(&token).is_err());
        // Rotating the secret under the same kid forgets keys signed with the old one.
        v.add_secret("k1", b"secret-one");
        assert!(v.verify(&token).is_ok());
        v.add_secret("k1", b"secret-two");
        assert!(matches!(v.verify(&token), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn revocations_of_expired_keys_are_forgotten() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        let token = issue(&claims(far_future()), "k1", b"secret-one").unwrap();
        let now = 1_000_000;
        // Revocations without an expiry, or of a key still live, stay.
        v.revoke_at("key-1", None, now);
        v.revoke_at("still-live", Some(now + 60), now);
        // An expired key's revocation is not even stored.
        v.revoke_at("gone", Some(now), now);
        assert_eq!(v.revoked_len(), 2);
        // Years of revocations of keys that expire: the set sweeps itself.
        // (A thousand revocations a second, of keys a second from expiry.)
        for i in 0..100_000 {
            let at = now + 10 + i / 1_000;
            v.revoke_at(&format!("old-{i}"), Some(at + 1), at);
        }
        assert!(v.revoked_len() < 3 * REVOKED_SWEEP_FROM, "{} held", v.revoked_len());
        assert_eq!(v.verify(&token), Err(KeyError::Revoked), "a revocation without expiry is kept");
        assert!(!v.revoked.contains_key("still-live"), "swept once it expired");
    }

    #[test]
    fn a_key_checked_while_its_secret_rotated_is_not_remembered() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        let token = issue(&claims(far_future()), "k1", b"secret-one").unwrap();
        // One request reads the generation and checks the key against the
        // old secret; the secret rotates before it stores what it found.
        let generation = v.generation.load(Ordering::SeqCst);
        let checked = v.verify_signed(&token).unwrap();
        v.add_secret("k1", b"secret-two");
        v.remember(&token, &checked, generation);
        assert!(matches!(v.verify(&token), Err(KeyError::Invalid(_))), "the old secret's key is refused");
    }

    #[test]
    fn remembered_keys_still_expire() {
        let v = KeyVerifier::default();
        v.add_secret("k1", b"secret-one");
        let soon = unix_seconds() + 1;
        let token = issue(&claims(soon), "k1", b"secret-one").unwrap();
        assert!(v.verify(&token).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(matches!(v.verify(&token), Err(KeyError::Invalid(m)) if m.contains("xpired")));
    }

    /// Base64url without padding, enough to hand-craft a token.
    mod base64_free {
        pub fn encode(bytes: &[u8]) -> String {
            const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
