//! `sandflow serve`: the data plane, with agents provisioned from flows.

use super::load;
use anyhow::{Context as _, bail};
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{self, Agent, DataPlane, DataPlaneConfig};
use sandflow_runtime_host::usage::{HttpSink, Outbox};
use sandflow_runtime_host::{Limits, Runtime, RuntimeConfig, Secrets};
use std::path::PathBuf;
use std::sync::Arc;

/// What `serve` was asked to do.
pub struct ServeOptions {
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
        capabilities: options.capabilities.config()?,
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
        println!("serving the data plane on http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let delivery = options.usage_sink.map(|url| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                outbox.deliver_forever(HttpSink::new(url, None), shutdown).await;
            })
        });
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        api::serve(listener, plane, shutdown).await?;
        let _ = stop.send(true);
        if let Some(delivery) = delivery {
            let _ = delivery.await;
        }
        anyhow::Ok(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn api_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
