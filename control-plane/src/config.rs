//! Settings of the control plane, ready to be flattened into a clap command
//! (`#[command(flatten)]`).

use clap::Args;
use std::fmt;
use std::path::PathBuf;

/// How the control plane runs.
#[derive(Debug, Clone, Args)]
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
        let config = Config { runtime_token: Some(Secret::new("hunter2")), ..Config::default() };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn flattens_into_a_command() {
        let cli = Cli::parse_from(["cp", "--runtime-token", "t", "--secure-cookies", "false", "--data-dir", "/tmp/x"]);
        assert_eq!(cli.config.runtime_token.as_ref().map(Secret::expose), Some("t"));
        assert!(!cli.config.secure_cookies);
        assert_eq!(cli.config.max_body_bytes, 16 * 1024 * 1024);
    }
}
