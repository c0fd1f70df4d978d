//! `sandflow serve`: the control plane and the data plane on one listener
//! (`--role all`, the default), or either alone (`--role control-plane`,
//! `--role runtime`). Data-plane routes are matched first; everything else
//! is the control plane's. Together, the runtime's usage outbox delivers to
//! the control plane's ledger on the same address.

use super::load;
use anyhow::{Context as _, bail};
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{self, Agent, DataPlane, DataPlaneConfig};
use sandflow_runtime_host::usage::{HttpSink, Outbox};
use sandflow_runtime_host::{Limits, Runtime, RuntimeConfig, Secrets};
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
    if id.is_empty() || path.is_empty() {
        bail!("`{spec}` is not `id=path[@tenant]`");
    }
    Ok(AgentSpec { id: id.to_owned(), path: PathBuf::from(path), tenant: tenant.to_owned() })
}

/// Runs the data plane until Ctrl-C.
pub fn serve(options: ServeOptions) -> anyhow::Result<std::process::ExitCode> {
    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(super::cache_dir()),
        capabilities: options.capabilities.serving_config()?,
        ..RuntimeConfig::default()
    })?;
    let outbox = Arc::new(Outbox::open(&super::data_dir().join("usage"))?);
    let plane = DataPlane::new(runtime, options.limits.clone()).with_usage(outbox.clone());
    let mut secrets = Vec::new();
    for pair in &options.key_secrets {
        let (kid, secret) = pair.split_once('=').with_context(|| "a key secret is `kid=secret`".to_owned())?;
        plane.keys.add_secret(kid, secret.as_bytes());
        secrets.push((kid.to_owned(), secret.to_owned()));
    }
    if secrets.is_empty() {
        let secret = uuid::Uuid::new_v4().to_string();
        plane.keys.add_secret("dev", secret.as_bytes());
        secrets.push(("dev".into(), secret));
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
        let control_plane = match options.role {
            Role::Runtime => None,
            Role::All | Role::ControlPlane => Some(control_plane(&options).await?),
        };
        // Together, usage goes to this process's own ledger unless told otherwise.
        let usage_sink = match (&options.usage_sink, options.role) {
            (Some(url), _) => Some((url.clone(), options.runtime_token.clone())),
            (None, Role::All) => Some((format!("http://{address}/api/runtime/usage/"), own_token(&control_plane))),
            (None, _) => None,
        };
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
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let delivery = usage_sink.filter(|_| options.role != Role::ControlPlane).map(|(url, token)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                outbox.deliver_forever(HttpSink::new(url, token), shutdown).await;
            })
        });
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
        let _ = stop.send(true);
        if let Some(delivery) = delivery {
            let _ = delivery.await;
        }
        anyhow::Ok(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The control plane's router over its opened (and migrated) database, and
/// the runtime token it accepts.
async fn control_plane(options: &ServeOptions) -> anyhow::Result<(axum::Router, Option<String>)> {
    use sandflow_control_plane::config::Secret;
    let token = options.runtime_token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let config = sandflow_control_plane::Config {
        database_url: options.database_url.clone().map(Secret::new),
        data_dir: super::data_dir(),
        runtime_token: Some(Secret::new(token.clone())),
        ..sandflow_control_plane::Config::default()
    };
    let db = match &config.database_url {
        Some(url) => sandflow_control_plane::db::Db::open(url.expose()).await,
        None => sandflow_control_plane::db::Db::open_in_data_dir(&config.data_dir).await,
    }
    .context("cannot open the control plane's database")?;
    let router = sandflow_control_plane::app(sandflow_control_plane::AppState::new(db, config));
    Ok((router, Some(token)))
}

fn own_token(control_plane: &Option<(axum::Router, Option<String>)>) -> Option<String> {
    control_plane.as_ref().and_then(|(_, token)| token.clone())
}

fn api_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
