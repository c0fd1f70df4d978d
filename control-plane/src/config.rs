//! Settings of the control plane, ready to be flattened into a clap command
//! (`#[command(flatten)]`).

use crate::secrets::well_formed_kid;
use clap::Args;
use std::fmt;
use std::path::PathBuf;

/// How the control plane runs. Its `Debug` hides every secret.
#[derive(Clone, Args)]
pub struct Config {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Without
    /// it, the SQLite file `control-plane.db` in the data directory is used
    /// (created and migrated on start).
    #[arg(long = "database-url", env = "SANDFLOW_DATABASE_URL")]
    pub database_url: Option<Secret>,

    /// Directory for the embedded database and other local state.
    #[arg(long = "data-dir", env = "SANDFLOW_DATA_DIR", default_value = "sandflow-data")]
    pub data_dir: PathBuf,

    /// Bearer token the runtime hosts present when they post usage to
    /// `/api/runtime/usage/`. Without it, usage ingestion is refused, so
    /// that nobody can write the ledger that invoices are rated from.
    #[arg(long = "runtime-token", env = "SANDFLOW_RUNTIME_TOKEN")]
    pub runtime_token: Option<Secret>,

    /// Largest request body accepted, in bytes (Langflow exports included).
    /// Bounds the memory one request can make the server hold.
    #[arg(long = "max-body-bytes", env = "SANDFLOW_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Mark the session cookie `Secure` (sent only over HTTPS). Turn off
    /// only for local development over plain HTTP.
    #[arg(long = "secure-cookies", env = "SANDFLOW_SECURE_COOKIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// How long a login lasts, in hours.
    #[arg(long = "session-hours", env = "SANDFLOW_SESSION_HOURS", default_value_t = 24 * 14)]
    pub session_hours: u32,

    /// Agent API key signing secrets, `kid=secret` (repeatable;
    /// comma-separated in the environment). The first one signs new keys;
    /// the runtime hosts take the same list to verify them. Without one,
    /// key creation answers 503.
    #[arg(long = "key-secret", env = "SANDFLOW_KEY_SECRETS", value_delimiter = ',', hide_env_values = true)]
    pub key_secrets: Vec<String>,

    /// Keys that seal buyers' agent secrets at rest, `kid=<64 hex
    /// digits>` (32 random bytes; repeatable, comma-separated in the
    /// environment). The first seals new values; every one opens, so a new
    /// key goes first and the old one stays until its values are set
    /// again. Without one, setting a secret answers 503.
    #[arg(long = "secrets-key", env = "SANDFLOW_SECRETS_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub secrets_keys: Vec<String>,

    /// How many times a background job (provisioning, deprovisioning) is
    /// tried before it is marked failed.
    #[arg(long = "job-max-attempts", env = "SANDFLOW_JOB_MAX_ATTEMPTS", default_value_t = 5)]
    pub job_max_attempts: u32,

    /// Delay before a failed job's first retry, in milliseconds; it doubles
    /// with each further attempt.
    #[arg(long = "job-backoff-ms", env = "SANDFLOW_JOB_BACKOFF_MS", default_value_t = 2_000)]
    pub job_backoff_ms: u64,

    /// The document index training documents are written into:
    /// `sqlite://PATH` or `postgres://…` (a database of its own). Without
    /// it, `documents.db` in the data directory, which a runtime on the
    /// same machine reads; a runtime elsewhere needs the same URL.
    #[arg(long = "documents-url", env = "SANDFLOW_DOCUMENTS_URL")]
    pub documents_url: Option<Secret>,

    /// Largest training document accepted, in bytes (413 above it).
    #[arg(long = "max-document-bytes", env = "SANDFLOW_MAX_DOCUMENT_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_document_bytes: usize,
}

impl Config {
    /// The key new agent API keys are signed with: the first
    /// `--key-secret`, split into `(kid, secret)`. `None` when none is
    /// configured; an error text when it is not `kid=secret`.
    pub fn signing_key(&self) -> Option<Result<(&str, &str), String>> {
        let first = self.key_secrets.first()?;
        Some(
            first
                .split_once('=')
                .filter(|(kid, secret)| !kid.trim().is_empty() && !secret.is_empty())
                .map(|(kid, secret)| (kid.trim(), secret))
                .ok_or_else(|| "a --key-secret must be `kid=secret` with a non-empty kid and secret".to_owned()),
        )
    }
}

impl Config {
    /// The keys agent secrets are sealed with (503 when none is configured
    /// or one is malformed).
    pub fn sealing_keys(&self) -> crate::error::Result<crate::secrets::SealingKeys> {
        crate::secrets::SealingKeys::parse(&self.secrets_keys).map_err(|e| {
            crate::Error::Unavailable(format!("agent secrets are off: {e}; the operator sets --secrets-key"))
        })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key and sealing secrets show only their kid, like `Secret` shows nothing.
        // A kid that is not one (a base64 key's own text before its `=`) is not shown either.
        fn kids(pairs: &[String]) -> Vec<String> {
            fn kid(pair: &str) -> &str {
                pair.split_once('=').map(|(kid, _)| kid.trim()).filter(|k| well_formed_kid(k)).unwrap_or("?")
            }
            pairs.iter().map(|pair| format!("{}=***", kid(pair))).collect()
        }
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("data_dir", &self.data_dir)
            .field("runtime_token", &self.runtime_token)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_hours", &self.session_hours)
            .field("key_secrets", &kids(&self.key_secrets))
            .field("secrets_keys", &kids(&self.secrets_keys))
            .field("job_max_attempts", &self.job_max_attempts)
            .field("job_backoff_ms", &self.job_backoff_ms)
            .field("documents_url", &self.documents_url)
            .field("max_document_bytes", &self.max_document_bytes)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from("sandflow-data"),
            runtime_token: None,
            max_body_bytes: 16 * 1024 * 1024,
            secure_cookies: true,
            session_hours: 24 * 14,
            key_secrets: Vec::new(),
            secrets_keys: Vec::new(),
            job_max_attempts: 5,
            job_backoff_ms: 2_000,
            documents_url: None,
            max_document_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A secret setting: its `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config = Config {
            runtime_token: Some(Secret::new("hunter2")),
            key_secrets: vec!["k1=swordfish".into()],
            secrets_keys: vec!["s1=00ff00ff".into(), "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".into()],
            ..Config::default()
        };
        let debug = format!("{config:?}");
        for shown in ["hunter2", "swordfish", "00ff", "AQID"] {
            assert!(!debug.contains(shown), "{debug}");
        }
        assert!(debug.contains("k1=***") && debug.contains("s1=***"), "{debug}");
    }

    #[test]
    fn flattens_into_a_command() {
        let cli = Cli::parse_from(["cp", "--runtime-token", "t", "--secure-cookies", "false", "--data-dir", "/tmp/x"]);
        assert_eq!(cli.config.runtime_token.as_ref().map(Secret::expose), Some("t"));
        assert!(!cli.config.secure_cookies);
        assert_eq!(cli.config.max_body_bytes, 16 * 1024 * 1024);
        assert!(cli.config.signing_key().is_none());
    }

    #[test]
    fn key_secrets_repeat_and_the_first_signs() {
        let cli = Cli::parse_from(["cp", "--key-secret", "k2=new", "--key-secret", "k1=old"]);
        assert_eq!(cli.config.key_secrets, ["k2=new", "k1=old"]);
        assert_eq!(cli.config.signing_key(), Some(Ok(("k2", "new"))));
        let bad = Config { key_secrets: vec!["no-equals".into()], ..Config::default() };
        assert!(matches!(bad.signing_key(), Some(Err(_))));
    }
}
