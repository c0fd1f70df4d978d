//! Secrets a run may use on the host side (API keys of model providers and
//! other services). They never enter the sandbox: a node names a secret
//! (a Langflow global variable such as `OPENAI_API_KEY`) and the host
//! resolves it. `Debug` never prints a value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// One secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it to its service.
    pub fn expose(&self) -> &str {
        &self.0
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
    fn own_secrets_win_over_fallbacks() {
        let own: Secrets = [("K", "buyer")].into_iter().collect();
        let operator: Secrets = [("K", "operator"), ("L", "operator")].into_iter().collect();
        let merged = own.or(&operator);
        assert_eq!(merged.get("K").map(Secret::expose), Some("buyer"));
        assert_eq!(merged.get("L").map(Secret::expose), Some("operator"));
    }
}
