//! Agents' secrets: the Langflow global variables a flow names
//! (`TAVILY_API_KEY`, `ASSEMBLYAI_API_KEY`, `OPENAI_API_KEY`), which the
//! runtime hosts fill in on the host side and never hand to a guest. A
//! seller sets them for every buyer of a provider agent (the services the
//! seller pays for); a buyer sets them for their own agent (their own
//! keys), and a buyer's takes the place of a seller's of the same name
//! ([`Owner`]; the rows are [`crate::stored_secrets`]).
//!
//! Values are sealed before they reach the database, with AES-256-GCM
//! under the operator's `--secrets-key` (`kid=<64 hex digits>`; the first
//! seals, every one opens, so a key can be rotated in). The sealed text
//! (`v1.<kid>.<hex>`: a random 96-bit nonce, the ciphertext, the tag) is
//! bound to its owner, name and hosts as associated data, so a value
//! copied onto another agent's row (or from a seller's table to a
//! buyer's), renamed, or given wider hosts, does not open. A database dump, a
//! backup or a log of SQL therefore holds no value; the key lives beside
//! the server (the data directory's `secrets-key` when none is given).
//! Values leave the control plane only to the runtime hosts, with their
//! token (`GET /api/runtime/agents/{id}/secrets`); the buyers' and
//! sellers' API lists names and dates, never values.

use crate::error::{Error, Result};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// Most secrets one agent holds.
pub const MAX_PER_AGENT: i64 = 64;
/// Most bytes of a name.
pub const MAX_NAME_BYTES: usize = 128;
/// Most bytes of a value.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Most hosts one secret lists.
pub const MAX_HOSTS: usize = 16;

const VERSION: &str = "v1";

/// Whose a secret is: what its value is sealed to, and where it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A buyer's, for their agent: a provisioned resource (`agent_secret`).
    Buyer(&'a str),
    /// A seller's, for every buyer's agent of one provider agent
    /// (`seller_secret`).
    Seller(&'a str),
}

impl Owner<'_> {
    /// What the seal binds: a buyer's resource id as it is (as sealed
    /// since secrets began), a seller's agent as `provider-agent/<id>`, so
    /// neither opens as the other: ids are UUIDs, which never start with
    /// `provider-agent/`.
    fn bound_to(self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Buyer(resource) => resource.to_owned().into(),
            Self::Seller(agent) => format!("provider-agent/{agent}").into(),
        }
    }
}

/// The operator's sealing keys: the first seals, any opens.
pub struct SealingKeys {
    keys: Vec<(String, LessSafeKey)>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("SealingKeys").field("kids", &kids).finish_non_exhaustive()
    }
}

impl SealingKeys {
    /// Keys from `kid=<64 hex digits>` entries; an error text saying what
    /// is wrong with one (never the key itself).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut keys: Vec<(String, LessSafeKey)> = Vec::new();
        for (at, entry) in entries.iter().enumerate() {
            let position = at + 1;
            let (kid, hex_key) = entry
                .split_once('=')
                .ok_or_else(|| format!("--secrets-key number {position} is not `kid=<64 hex digits>`"))?;
            let kid = kid.trim();
            // The kid is not quoted: a key given as base64 ends in `=`,
            // which would make the key itself the "kid".
            if !well_formed_kid(kid) {
                return Err(format!(
                    "the kid of --secrets-key number {position} must be 1 to 32 letters, digits, `-` or `_`, \
                     and the key 64 hex digits"
                ));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(format!("two --secrets-key entries have the kid `{kid}`; each needs its own"));
            }
            let bytes = hex::decode(hex_key.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| format!("the --secrets-key `{kid}` must be 64 hex digits (32 random bytes)"))?;
            let key =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| format!("the --secrets-key `{kid}` is unusable"))?;
            keys.push((kid.to_owned(), LessSafeKey::new(key)));
        }
        if keys.is_empty() {
            return Err("no --secrets-key is configured".into());
        }
        Ok(Self { keys })
    }

    /// A new random key as `kid=<hex>`, its kid `<prefix>-<8 random hex
    /// digits>` so that keys generated apart never share a kid.
    pub fn generate(prefix: &str) -> Result<String, String> {
        let mut bytes = [0u8; 36];
        SystemRandom::new().fill(&mut bytes).map_err(|_| "the system's random source failed")?;
        let (kid, key) = bytes.split_at(4);
        Ok(format!("{prefix}-{}={}", hex::encode(kid), hex::encode(key)))
    }

    /// `value` sealed for secret `name` of `owner`, sent only to `hosts`.
    pub fn seal(&self, owner: Owner<'_>, name: &str, hosts: &[String], value: &str) -> Result<String> {
        let (kid, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| Error::internal("the system's random source failed"))?;
        let mut sealed = value.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), associated(owner, name, hosts), &mut sealed)
            .map_err(|_| Error::internal("sealing a secret failed"))?;
        Ok(format!("{VERSION}.{kid}.{}{}", hex::encode(nonce), hex::encode(sealed)))
    }

    /// The value of a row [`Self::seal`] made for the same owner, name and
    /// hosts; an error text when no configured key opens it (a key missing
    /// from `--secrets-key`, or a row changed outside the control plane).
    pub fn open(&self, owner: Owner<'_>, name: &str, hosts: &[String], sealed: &str) -> Result<String, String> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("it is not a sealed secret of this version".into());
        };
        let (_, key) =
            self.keys.iter().find(|(k, _)| k == kid).ok_or_else(|| {
                format!("it was sealed with key `{kid}`, which is not among the --secrets-key entries")
            })?;
        let bytes = hex::decode(body).map_err(|_| "its sealed text is not hex".to_owned())?;
        if bytes.len() < NONCE_LEN {
            return Err("its sealed text is too short".into());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "its nonce is malformed".to_owned())?;
        let mut rest = rest.to_vec();
        let plain = key
            .open_in_place(nonce, associated(owner, name, hosts), &mut rest)
            .map_err(|_| format!("it does not open with key `{kid}` for this owner, name and hosts"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| "its value is not UTF-8".into())
    }
}

/// Whether `kid` may name a key (it is shown in sealed text and messages).
pub fn well_formed_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 32 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a sealed value is bound to: its owner, its name and its hosts
/// (none of which holds a NUL or, for hosts, a comma).
fn associated(owner: Owner<'_>, name: &str, hosts: &[String]) -> Aad<Vec<u8>> {
    Aad::from([owner.bound_to().as_bytes(), b"\0", name.as_bytes(), b"\0", hosts.join(",").as_bytes()].concat())
}

/// Checks a secret's name: a global variable name as flows write it.
pub fn check_name(name: &str) -> Result<()> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if well_formed {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the secret name `{}` must start with a letter or `_` and hold only letters, digits, `_`, `-` and `.` \
         (at most {MAX_NAME_BYTES} bytes), like the global variable the flow names",
        name.chars().take(MAX_NAME_BYTES).collect::<String>().escape_debug()
    )))
}

/// The hosts a secret may be sent to, as stored: lower case, each
/// `name`, `*.name` (its subdomains), an IP address or `*` (any host the
/// operator's egress policy allows), optionally with `:port`; duplicates
/// dropped. Empty: nodes may not send it at all, only the host's own uses
/// (a model provider's key) take it.
pub fn checked_hosts(hosts: &[String]) -> Result<Vec<String>> {
    if hosts.len() > MAX_HOSTS {
        return Err(Error::Invalid(format!("`hosts` lists {} hosts; a secret lists at most {MAX_HOSTS}", hosts.len())));
    }
    let mut checked: Vec<String> = Vec::new();
    for given in hosts {
        let host = checked_host(given)?;
        if !checked.contains(&host) {
            checked.push(host);
        }
    }
    Ok(checked)
}

/// One entry of `hosts` in its stored form, by the runtime hosts' own
/// rules (`HostPattern`): labels of letters, digits and inner `-`; an IPv6
/// address in brackets; a port of digits, stored as a number.
fn checked_host(given: &str) -> Result<String> {
    let given = given.trim().to_ascii_lowercase();
    let not_a_host = || {
        Error::Invalid(format!(
            "`{}` in `hosts` is not a host: give `api.example.com`, `*.example.com` (its subdomains), an IP \
             address (`[…]` for IPv6) or `*`, optionally with `:port`, not a URL",
            given.chars().take(100).collect::<String>().escape_debug()
        ))
    };
    let (host, port) = match given.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']').ok_or_else(not_a_host)?;
            let address: std::net::Ipv6Addr = address.parse().map_err(|_| not_a_host())?;
            let port = if after.is_empty() { None } else { Some(after.strip_prefix(':').ok_or_else(not_a_host)?) };
            (format!("[{address}]"), port)
        }
        None => {
            let (name, port) = given.rsplit_once(':').map_or((given.as_str(), None), |(n, p)| (n, Some(p)));
            let (prefix, domain) = name.strip_prefix("*.").map_or(("", name), |d| ("*.", d));
            let domain = domain.trim_end_matches('.');
            if name != "*" && !domain_name(domain) {
                return Err(not_a_host());
            }
            (if name == "*" { "*".to_owned() } else { format!("{prefix}{domain}") }, port)
        }
    };
    match port {
        None => Ok(host),
        Some(port) => {
            let number = Some(port)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(not_a_host)?;
            Ok(format!("{host}:{number}"))
        }
    }
}

/// Whether `name` is a DNS name: labels of letters, digits and inner `-`.
fn domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A secret's value as stored: trimmed (as a key written into a flow is),
/// and refused when it is empty, too long, or holds anything but visible
/// ASCII and inner spaces. It goes into request headers: a line break
/// would start a header of its own, and a pasted zero-width space would
/// fail every request that sends it.
pub fn checked_value(value: &str) -> Result<&str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Invalid("`value` is empty; delete the secret instead".into()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::Invalid(format!(
            "`value` is {} bytes; a secret holds at most {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "`value` holds a control character (a line break, a tab, NUL); secrets are sent in request headers, \
             so paste the key alone"
                .into(),
        ));
    }
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(Error::Invalid(
            "`value` holds a character outside visible ASCII (a typographic quote, a zero-width space?); \
             paste the key alone"
                .into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[&str]) -> SealingKeys {
        SealingKeys::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).expect("keys parse")
    }

    const A: &str = "a=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "b=1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn sealed_values_open_only_for_their_owner_name_and_hosts() {
        let keys = keys(&[A]);
        let hosts = ["api.tavily.com".to_owned()];
        let sealed = keys.seal(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, "tvly-123").expect("seals");
        assert!(sealed.starts_with("v1.a.") && !sealed.contains("tvly"), "{sealed}");
        assert_ne!(
            sealed,
            keys.seal(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, "tvly-123").expect("seals"),
            "fresh nonce"
        );
        assert_eq!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, &sealed).as_deref(), Ok("tvly-123"));
        assert!(keys.open(Owner::Buyer("res-2"), "TAVILY_API_KEY", &hosts, &sealed).is_err(), "another agent's row");
        assert!(keys.open(Owner::Buyer("res-1"), "OTHER", &hosts, &sealed).is_err(), "renamed");
        let widened = ["api.tavily.com".to_owned(), "evil.example".to_owned()];
        assert!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &widened, &sealed).is_err(), "hosts widened");
        assert!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &[], &sealed).is_err(), "hosts changed");
        // "res-1\0X" + "Y" must not equal "res-1" + "X\0Y".
        assert!(keys.open(Owner::Buyer("res-1\0TAVILY_API_KEY"), "", &hosts, &sealed).is_err());
        // A seller's value does not open as a buyer's, nor the other way.
        let sellers = keys.seal(Owner::Seller("res-1"), "TAVILY_API_KEY", &hosts, "tvly-9").expect("seals");
        assert_eq!(keys.open(Owner::Seller("res-1"), "TAVILY_API_KEY", &hosts, &sellers).as_deref(), Ok("tvly-9"));
        assert!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, &sellers).is_err(), "seller's as buyer's");
        assert!(keys.open(Owner::Seller("res-1"), "TAVILY_API_KEY", &hosts, &sealed).is_err(), "buyer's as seller's");
        let mut tampered = sealed.clone();
        let last = tampered.pop().expect("a digit");
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, &tampered).is_err(), "tampered");
        for bad in ["", "v1.a", "v1.a.zz", "v1.a.00", "v2.a.00", "v1.c.00"] {
            assert!(keys.open(Owner::Buyer("res-1"), "TAVILY_API_KEY", &hosts, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rotated_key_still_opens_what_the_old_one_sealed() {
        let sealed = keys(&[A]).seal(Owner::Buyer("r"), "K", &[], "v").expect("seals");
        let rotated = keys(&[B, A]);
        assert_eq!(rotated.open(Owner::Buyer("r"), "K", &[], &sealed).as_deref(), Ok("v"));
        assert!(
            rotated.seal(Owner::Buyer("r"), "K", &[], "v").expect("seals").starts_with("v1.b."),
            "the first key seals"
        );
        let message = keys(&[B]).open(Owner::Buyer("r"), "K", &[], &sealed).expect_err("key a is gone");
        assert!(message.contains("`a`"), "{message}");
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        for (entry, needle) in [
            ("a", "kid=<64 hex digits>"),
            ("=00", "kid"),
            ("a.b=00", "kid"),
            ("a=00", "64 hex digits"),
            ("a=zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "64 hex digits"),
            // A key given as base64 (what `openssl rand -base64 32` prints).
            ("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", "64 hex digits"),
        ] {
            let message = SealingKeys::parse(&[entry.to_owned()]).expect_err(entry);
            assert!(message.contains(needle), "{entry}: {message}");
            assert!(!message.contains("0102") && !message.contains("AQID"), "{message}");
        }
        assert!(SealingKeys::parse(&[]).is_err());
        let twice = SealingKeys::parse(&[A.to_owned(), A.to_owned()]).expect_err("one kid twice");
        assert!(twice.contains("`a`"), "{twice}");
        let (one, two) =
            (SealingKeys::generate("local").expect("random"), SealingKeys::generate("local").expect("random"));
        assert!(one.starts_with("local-") && one.split('=').next() != two.split('=').next(), "{one} {two}");
        assert!(SealingKeys::parse(&[one, two]).is_ok());
    }

    #[test]
    fn hosts() {
        let given = |hosts: &[&str]| checked_hosts(&hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            given(&[" API.Tavily.com ", "*.assemblyai.com:443", "10.0.0.7", "*", "api.tavily.com"]).expect("ok"),
            ["api.tavily.com", "*.assemblyai.com:443", "10.0.0.7", "*"]
        );
        assert_eq!(given(&[]).expect("none"), Vec::<String>::new());
        for bad in
            ["https://api.tavily.com", "api.tavily.com/x", "a,b", "", "a..b", "*.*.x", "x:0", "x:99999", "user@x"]
        {
            assert!(given(&[bad]).is_err(), "{bad}");
        }
        assert!(given(&["a.example"; 17]).is_err(), "too many");
    }

    #[test]
    fn names_and_values() {
        for good in ["TAVILY_API_KEY", "_x", "openai.key-2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1KEY", "A B", "A/B", "ÄKEY", &"K".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(checked_value(" sk-123\n").ok(), Some("sk-123"), "trimmed");
        assert_eq!(checked_value("Bearer x y").ok(), Some("Bearer x y"));
        for bad in ["", "  ", "a\r\nX-Evil: 1", "a\0", "sk-\u{200b}1", "“sk-1”", &"k".repeat(MAX_VALUE_BYTES + 1)] {
            assert!(checked_value(bad).is_err(), "{bad}");
        }
    }
}
