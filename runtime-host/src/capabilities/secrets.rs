//! Secrets a run may use on the host side (API keys of model providers and
//! other services). They never enter the sandbox: a node names a secret
//! (a Langflow global variable such as `OPENAI_API_KEY`) and the host
//! resolves it. `Debug` never prints a value.

use super::http::HostPattern;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// One secret value, and where a node may send it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: Arc<str>,
    /// The hosts a node may send it to in a request header
    /// (`{{secret:FIELD}}`): `None` for any the egress policy allows,
    /// an empty list for none. The host's own uses (a model provider's key,
    /// sent to the provider the operator configured) are not bound by it.
    reach: Option<Arc<[HostPattern]>>,
}

impl Secret {
    /// Wraps `value`; a node may send it to any host the egress policy
    /// allows (keys the operator or an embedder configures).
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self { value: value.into(), reach: None }
    }

    /// Wraps `value`, which its owner lets nodes send only to `hosts`
    /// (none: only the host's own uses). An agent's secrets (the buyer's
    /// and the seller's) are this: the seller's code, and a buyer's
    /// tweaks, name where a request goes.
    pub fn for_hosts(value: impl Into<Arc<str>>, hosts: Vec<HostPattern>) -> Self {
        Self { value: value.into(), reach: Some(hosts.into()) }
    }

    /// The value, for the one place that sends it to its service.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The hosts a node may send it to; `None` for any.
    pub fn reach(&self) -> Option<&[HostPattern]> {
        self.reach.as_deref()
    }

    /// Whether it may go to `url`: a host its owner listed, over HTTPS on
    /// port 443 unless the listed pattern names a port (so a node cannot
    /// make a key for `api.example.com` leave in clear text, or to another
    /// port of that host).
    pub fn may_reach(&self, url: &reqwest::Url) -> bool {
        let Some(hosts) = self.reach.as_deref() else { return true };
        let tls = url.scheme() == "https" && url.port_or_known_default() == Some(443);
        hosts.iter().any(|h| h.matches(url) && (tls || h.port().is_some()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Named secrets: the buyer's and seller's global variables for one agent,
/// layered over the operator's.
#[derive(Debug, Clone, Default)]
pub struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    /// Adds or replaces `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: Secret) {
        self.0.insert(name.into(), value);
    }

    /// The secret called `name`.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    /// `self`, with `other`'s entries where `self` has none.
    #[must_use]
    pub fn or(mut self, other: &Secrets) -> Self {
        for (name, value) in &other.0 {
            self.0.entry(name.clone()).or_insert_with(|| value.clone());
        }
        self
    }
}

impl<N: Into<String>, V: Into<Arc<str>>> FromIterator<(N, V)> for Secrets {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(n, v)| (n.into(), Secret::new(v))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value() {
        let secrets: Secrets = [("OPENAI_API_KEY", "sk-very-secret")].into_iter().collect();
        let printed = format!("{secrets:?}");
        assert!(printed.contains("OPENAI_API_KEY"));
        assert!(!printed.contains("sk-very-secret"));
    }

    #[test]
    fn a_secret_goes_only_where_its_owner_lets_it() {
        let url = |u: &str| reqwest::Url::parse(u).expect("URL");
        let hosts = ["api.tavily.com", "*.assemblyai.com:443"].map(|h| h.parse().expect("pattern")).to_vec();
        let scoped = Secret::for_hosts("k", hosts);
        assert!(scoped.may_reach(&url("https://api.tavily.com/search")));
        assert!(scoped.may_reach(&url("https://eu.assemblyai.com/v2")));
        for elsewhere in [
            "http://api.tavily.com/",
            "https://api.tavily.com:8443/",
            "https://api.tavily.com.evil.example/",
            "https://evil.example/?to=api.tavily.com",
            "http://eu.assemblyai.com:8080/",
            "https://assemblyai.com/",
        ] {
            assert!(!scoped.may_reach(&url(elsewhere)), "{elsewhere}");
        }
        assert!(!Secret::for_hosts("k", Vec::new()).may_reach(&url("https://api.tavily.com/")));
        // A port the owner names is theirs to choose, scheme and all.
        let local = Secret::for_hosts("k", vec!["10.0.0.7:8080".parse().expect("pattern")]);
        assert!(local.may_reach(&url("http://10.0.0.7:8080/")));
        assert!(!local.may_reach(&url("http://10.0.0.7/")));
        assert!(Secret::new("k").may_reach(&url("https://anywhere.example/")));
        assert_eq!(format!("{scoped:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn own_secrets_win_over_fallbacks() {
        let own: Secrets = [("K", "buyer")].into_iter().collect();
        let operator: Secrets = [("K", "operator"), ("L", "operator")].into_iter().collect();
        let merged = own.or(&operator);
        assert_eq!(merged.get("K").map(Secret::expose), Some("buyer"));
        assert_eq!(merged.get("L").map(Secret::expose), Some("operator"));
    }
}
