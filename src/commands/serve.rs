//! `sandflow serve`: the control plane and the data plane on one listener
//! (`--role all`, the default), or either alone (`--role control-plane`,
//! `--role runtime`). Data-plane routes are matched first; everything else
//! is the control plane's. Together, the runtime's usage outbox delivers to
//! the control plane's ledger on the same address, and the runtime follows
//! the control plane's change feed (agents, revoked keys, quotas) there; a
//! runtime alone does both against `--control-plane`.
//!
//! Keys are signed by the control plane and verified by the runtime with the
//! same secret (`--key-secret kid=secret`, the first signs). Without one,
//! `all` and `control-plane` keep a generated secret in the data directory
//! (`key-secret`, readable by its owner only) so keys outlive restarts.
//! Likewise the key that seals buyers' agent secrets in the control
//! plane's database (`--secrets-key kid=<hex>`, else the data directory's
//! `secrets-key`): kept apart from the database, so a copy of the
//! database alone opens no secret.

use super::load;
use anyhow::{Context as _, bail};
use futures_util::future::BoxFuture;
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{self, Agent, DataPlane, DataPlaneConfig};
use sandflow_runtime_host::provisioning::Provisioner;
use sandflow_runtime_host::usage::{HttpSink, Outbox};
use sandflow_runtime_host::{Limits, Runtime, RuntimeConfig, Secrets};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Which parts `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Control plane and runtime on one address.
    All,
    /// The data plane only.
    Runtime,
    /// The management API only.
    ControlPlane,
}

/// What `serve` was asked to do.
pub struct ServeOptions {
    /// Which parts to run.
    pub role: Role,
    /// Address to listen on.
    pub listen: String,
    /// `id=path[@tenant]` per agent.
    pub agents: Vec<String>,
    /// `kid=secret` per signing key.
    pub key_secrets: Vec<String>,
    /// `kid=<hex>` per key sealing agent secrets.
    pub secrets_keys: Vec<String>,
    /// Print a key per tenant (valid 24 hours) at start-up.
    pub dev_keys: bool,
    /// Default rate limits.
    pub limits: DataPlaneConfig,
    /// Where usage records are delivered (`POST`, JSON array); they wait in
    /// the outbox until then.
    pub usage_sink: Option<String>,
    /// Model providers and the other capabilities.
    pub capabilities: super::CapabilityArgs,
    /// The control plane's database (`sqlite://…` or `postgres://…`); the
    /// SQLite file `control-plane.db` in the data directory when absent.
    pub database_url: Option<String>,
    /// The token runtimes present to post usage to the control plane.
    pub runtime_token: Option<String>,
    /// The control plane a runtime alone follows (`http://host:port`).
    pub control_plane: Option<String>,
}

/// An agent given on the command line.
struct AgentSpec {
    id: String,
    path: PathBuf,
    tenant: String,
}

fn parse_agent(spec: &str) -> anyhow::Result<AgentSpec> {
    let (id, rest) = spec.split_once('=').with_context(|| format!("`{spec}` is not `id=path[@tenant]`"))?;
    let (path, tenant) = rest.rsplit_once('@').unwrap_or((rest, "default"));
    if id.is_empty() || path.is_empty() || tenant.is_empty() {
        bail!("`{spec}` is not `id=path[@tenant]`: the id, the path and a tenant given after `@` must not be empty");
    }
    // Every run's usage record names both; the usage ledger refuses longer ones.
    if id.len() > MAX_NAME || tenant.len() > MAX_NAME {
        bail!("`{spec}`: the agent id and the tenant are at most {MAX_NAME} bytes each");
    }
    Ok(AgentSpec { id: id.to_owned(), path: PathBuf::from(path), tenant: tenant.to_owned() })
}

/// Longest agent id or tenant name of `--agent`.
const MAX_NAME: usize = 256;

/// Work to do once the server listens (given its address), such as seeding
/// the demo; the server stops if it fails.
pub type OnReady = Box<dyn FnOnce(SocketAddr) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// Serves until Ctrl-C, running `on_ready` once it listens.
pub fn serve(options: ServeOptions, on_ready: Option<OnReady>) -> anyhow::Result<std::process::ExitCode> {
    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(super::cache_dir()),
        capabilities: options.capabilities.serving_config(options.role != Role::ControlPlane)?,
        ..RuntimeConfig::default()
    })?;
    // The usage outbox is the runtime's: a control plane alone serves no
    // runs, and leaves it to the runtime beside it in the data directory.
    let outbox = match options.role {
        Role::ControlPlane => None,
        Role::All | Role::Runtime => Some(Arc::new(Outbox::open(&super::data_dir().join("usage"))?)),
    };
    let mut plane = DataPlane::new(runtime, options.limits.clone());
    if let Some(outbox) = &outbox {
        plane = plane.with_usage(outbox.clone());
    }
    let secrets = key_secrets(&options)?;
    for (kid, secret) in &secrets {
        plane.keys.add_secret(kid, secret.as_bytes());
    }
    let mut tenants = Vec::new();
    for spec in &options.agents {
        let spec = parse_agent(spec)?;
        let artifact = load::artifact(&spec.path)?;
        let flow = plane.runtime.load_flow(&artifact.component)?;
        tracing::info!(agent = %spec.id, tenant = %spec.tenant, digest = %flow.digest(), "provisioned");
        plane.agents.provision(Agent {
            id: spec.id.clone(),
            tenant: spec.tenant.clone(),
            flow_id: artifact.plan.flow_id.clone().unwrap_or_else(|| spec.id.clone()),
            endpoint_name: artifact.plan.endpoint_name.clone(),
            flow,
            limits: Limits::default(),
            secrets: Secrets::default(),
            persona: None,
            widget_origins: Vec::new(),
        });
        if !tenants.contains(&spec.tenant) {
            tenants.push(spec.tenant);
        }
    }
    if options.dev_keys {
        let (kid, secret) = &secrets[0];
        for tenant in &tenants {
            let claims = Claims {
                sub: format!("dev-{tenant}"),
                tenant: tenant.clone(),
                agents: vec![],
                scopes: vec!["run".into()],
                subscription: None,
                rpm: Some(1_000_000),
                exp: api_now() + 86_400,
            };
            println!("key for tenant {tenant}: {}", issue(&claims, kid, secret.as_bytes())?);
        }
    }
    let plane = Arc::new(plane);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let control_plane = match options.role {
            Role::Runtime => None,
            Role::All | Role::ControlPlane => Some(control_plane(&options, &secrets).await?),
        };
        // Together, the runtime follows this process's own control plane.
        let followed = match (options.role, &options.control_plane) {
            (Role::All, _) => Some((format!("http://{address}"), own_token(&control_plane))),
            (Role::Runtime, Some(url)) => Some((url.trim_end_matches('/').to_owned(), options.runtime_token.clone())),
            _ => None,
        };
        // Usage goes to the followed control plane's ledger unless told otherwise.
        let usage_sink = match (&options.usage_sink, &followed) {
            (Some(url), _) => Some((url.clone(), options.runtime_token.clone())),
            (None, Some((base, token))) => Some((format!("{base}/api/runtime/usage/"), token.clone())),
            (None, None) => None,
        };
        let provisioning = followed.map(|(base, token)| {
            let mut stopped = stopped.clone();
            let provisioner = Provisioner::new(plane.clone(), base, token);
            tokio::spawn(provisioner.follow(async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        });
        let router = match (options.role, control_plane) {
            (Role::Runtime, _) | (_, None) => api::router(plane),
            (Role::ControlPlane, Some((cp, _))) => cp,
            (Role::All, Some((cp, _))) => api::router(plane).fallback_service(cp),
        };
        if options.role != Role::Runtime {
            println!("serving the control plane on http://{address}");
        }
        if options.role != Role::ControlPlane {
            println!("serving the data plane on http://{address}");
        }
        let delivery = usage_sink.zip(outbox).map(|((url, token), outbox)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                outbox.deliver_forever(HttpSink::new(url, token), shutdown).await;
            })
        });
        let (failed, on_failure) = tokio::sync::oneshot::channel();
        if let Some(on_ready) = on_ready {
            tokio::spawn(async move {
                if let Err(error) = on_ready(address).await {
                    eprintln!("error: {error:#}");
                    let _ = failed.send(());
                }
            });
        }
        let (interrupted, on_interrupt) = tokio::sync::oneshot::channel();
        let shutdown = async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => { let _ = interrupted.send(()); }
                Ok(()) = on_failure => {}
            }
        };
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
        let _ = stop.send(true);
        for task in [delivery, provisioning].into_iter().flatten() {
            let _ = task.await;
        }
        // Stopped by Ctrl-C: success; stopped because `on_ready` failed: not.
        Ok(if on_interrupt.await.is_ok() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
    })
}

/// The control plane's router over its opened (and migrated) database, and
/// the runtime token it accepts.
async fn control_plane(
    options: &ServeOptions,
    secrets: &[(String, String)],
) -> anyhow::Result<(axum::Router, Option<String>)> {
    use sandflow_control_plane::config::Secret;
    let token = options.runtime_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let config = sandflow_control_plane::Config {
        database_url: options.database_url.clone().map(Secret::new),
        data_dir: super::data_dir(),
        runtime_token: Some(Secret::new(token.clone())),
        key_secrets: secrets.iter().map(|(kid, secret)| format!("{kid}={secret}")).collect(),
        secrets_keys: sealing_keys(options)?,
        // The runtime half reads the same index (see `CapabilityArgs::serving_config`).
        documents_url: Some(Secret::new(options.capabilities.documents_url_or_default())),
        ..sandflow_control_plane::Config::default()
    };
    let db = match &config.database_url {
        Some(url) => sandflow_control_plane::db::Db::open(url.expose()).await,
        None => sandflow_control_plane::db::Db::open_in_data_dir(&config.data_dir).await,
    }
    .context("cannot open the control plane's database")?;
    let documents =
        sandflow_control_plane::documents::open_index(&config).await.context("cannot open the document index")?;
    // The job worker (provisioning, deprovisioning, documents) runs until the process ends.
    let state = sandflow_control_plane::AppState::new(db, config).with_documents(documents);
    let (router, _worker) = sandflow_control_plane::start(state).await;
    Ok((router, Some(token)))
}

/// The key-signing secrets: the ones given, else (where a control plane
/// signs keys) the one kept in the data directory, created on first start;
/// a runtime alone with none makes one up for `--dev-keys`.
fn key_secrets(options: &ServeOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut secrets = Vec::new();
    for pair in &options.key_secrets {
        let (kid, secret) = pair
            .split_once('=')
            .filter(|(kid, secret)| !kid.is_empty() && !secret.is_empty())
            .context("a key secret is `kid=secret`")?;
        secrets.push((kid.to_owned(), secret.to_owned()));
    }
    if !secrets.is_empty() {
        return Ok(secrets);
    }
    match (options.role, &options.control_plane) {
        (Role::Runtime, Some(_)) => {
            bail!("a runtime following a control plane needs its key secret: pass the same `--key-secret` to both")
        }
        (Role::Runtime, None) => Ok(vec![("dev".into(), uuid::Uuid::new_v4().simple().to_string())]),
        (Role::All | Role::ControlPlane, _) => Ok(vec![stored_key_secret(&super::data_dir())?]),
    }
}

/// The data directory's key secret (`kid=secret`), created on first use.
fn stored_key_secret(dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    let line = stored_pair(dir, "key-secret", || {
        let kid = format!("local-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Ok(format!("{kid}={}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()))
    })?;
    Ok(line.split_once('=').map(|(k, s)| (k.to_owned(), s.to_owned())).unwrap_or_default())
}

/// The keys sealing agent secrets: the ones given, else the data
/// directory's, created on first start. A malformed key stops the start:
/// a control plane that cannot open its secrets would hand agents none.
fn sealing_keys(options: &ServeOptions) -> anyhow::Result<Vec<String>> {
    use sandflow_control_plane::secrets::SealingKeys;
    if !options.secrets_keys.is_empty() {
        SealingKeys::parse(&options.secrets_keys).map_err(anyhow::Error::msg)?;
        return Ok(options.secrets_keys.clone());
    }
    let dir = super::data_dir();
    let line = stored_pair(&dir, "secrets-key", || SealingKeys::generate("local").map_err(anyhow::Error::msg))?;
    SealingKeys::parse(std::slice::from_ref(&line)).map_err(anyhow::Error::msg).with_context(|| {
        format!(
            "{} holds no usable key; restore it from a backup (values sealed with it open with it alone)",
            dir.join("secrets-key").display()
        )
    })?;
    Ok(vec![line])
}

/// The `kid=secret` line kept in file `name` of the data directory,
/// written by `make` on first use (readable by its owner only).
fn stored_pair(
    dir: &std::path::Path,
    name: &str,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let line = text.trim();
        if line.split_once('=').is_some_and(|(kid, secret)| !kid.is_empty() && !secret.is_empty()) {
            return Ok(line.to_owned());
        }
        bail!("{} is not `kid=secret`; delete it to make a new one (what it protects stops working)", path.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let line = make()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{line}")?;
    file.sync_all()?;
    Ok(line)
}

fn own_token(control_plane: &Option<(axum::Router, Option<String>)>) -> Option<String> {
    control_plane.as_ref().and_then(|(_, token)| token.clone())
}

fn api_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn agent_specs_name_an_agent_a_flow_and_a_tenant() {
        let spec = parse_agent("echo=flows/echo.json@acme").expect("parses");
        assert_eq!(
            (spec.id.as_str(), spec.path.as_path(), spec.tenant.as_str()),
            ("echo", Path::new("flows/echo.json"), "acme")
        );
        assert_eq!(
            parse_agent("echo=a@b@acme").expect("parses").path,
            Path::new("a@b"),
            "the last `@` names the tenant"
        );
        assert_eq!(parse_agent("echo=echo.json").expect("parses").tenant, "default");
        // An empty tenant would leave usage records the ledger refuses, and
        // hold up every record behind them.
        for bad in ["echo=echo.json@", "=echo.json", "echo=", "echo.json"] {
            let error = parse_agent(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("is not `id=path[@tenant]`"), "{error}");
        }
        let long = format!("echo=echo.json@{}", "t".repeat(MAX_NAME + 1));
        let error = parse_agent(&long).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("at most 256 bytes"), "{error}");
    }
}
