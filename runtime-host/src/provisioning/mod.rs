//! Provisioning from the control plane: the host follows the control
//! plane's change feed and keeps its agents, revoked keys and quotas equal
//! to what the marketplace says.
//!
//! The feed (`GET /api/runtime/changes/?after=<seq>`) is an append-only
//! log, so a host that starts, restarts or falls behind reads from where it
//! is and ends up in the same state as every other host. Flow components
//! are fetched by digest (`GET /api/runtime/artifacts/{digest}`), checked
//! against it, and loaded once per digest however many buyers subscribe.
//! The feed is polled every [`POLL_INTERVAL`], which is what bounds how
//! long a revoked key keeps working.
//!
//! A host that starts applies the feed's standing changes first, its key
//! revocations and quotas alone ([`Provisioner::load_standing`]), and only
//! then replays it for the agents: replaying in order would provision an
//! agent (and answer its buyers' keys) before a revocation later in the
//! feed, which on a long feed is seconds of fetching and loading away.
//!
//! A change that cannot take effect (an artifact that is gone or does not
//! load) is logged and passed over, so one broken version cannot hold up
//! the revocations behind it; a control plane that cannot be reached is
//! retried from the same place. An artifact the control plane fails to
//! send (an error status, a body that does not arrive in time) is retried
//! too, and meanwhile the revocations, quotas and deprovisions after it in
//! the feed take effect (`Provisioner::apply_ahead`).

pub mod change;

use crate::FlowComponent;
use crate::api::DataPlane;
use crate::api::quotas::Used;
use crate::api::{Agent, clock};
use change::{AgentSpec, Change, Page};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the feed is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Changes asked for per request.
const PAGE: usize = 500;
/// How often the quota counters are raised to the ledger's totals again:
/// with several hosts, each counts only its own runs between times, so a
/// tenant's month can overrun its quota by what the others admitted in
/// that while (and the ledger lags by the usage sink's delivery).
pub const QUOTA_SEED_INTERVAL: Duration = Duration::from_secs(30);

/// Why a sync stopped; it is tried again from the same change.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The control plane could not be reached or did not answer.
    #[error("could not reach the control plane at {url}: {message}")]
    Unreachable {
        /// What was asked for.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// The control plane refused or failed the request.
    #[error("the control plane answered {status} for {url}")]
    Refused {
        /// What was asked for.
        url: String,
        /// Its answer.
        status: u16,
    },
}

/// Follows one control plane's feed into one data plane.
pub struct Provisioner {
    plane: Arc<DataPlane>,
    client: reqwest::Client,
    base_url: String,
    token: Option<String>,
    cursor: i64,
    /// Revocations and quotas up to here are applied already, in order
    /// ([`Provisioner::load_standing`]); replaying them would wind a quota
    /// back to an older one until the replay reaches the newest.
    standing_until: i64,
    flows: HashMap<String, FlowComponent>,
    quota_seed_every: Duration,
}

impl Provisioner {
    /// A provisioner for `plane` reading the control plane at `base_url`
    /// (e.g. `http://127.0.0.1:7860`) with the runtime `token`.
    pub fn new(plane: Arc<DataPlane>, base_url: impl Into<String>, token: Option<String>) -> Self {
        let client =
            crate::capabilities::io::client_builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            plane,
            client,
            base_url,
            token,
            cursor: 0,
            standing_until: 0,
            flows: HashMap::new(),
            quota_seed_every: QUOTA_SEED_INTERVAL,
        }
    }

    /// Raises the quota counters to the ledger's every `every` while
    /// following (by default [`QUOTA_SEED_INTERVAL`]).
    #[must_use]
    pub fn seed_quotas_every(mut self, every: Duration) -> Self {
        self.quota_seed_every = every;
        self
    }

    /// The last change applied.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Applies every change the feed holds now; returns how many it read.
    pub async fn sync(&mut self) -> Result<usize, SyncError> {
        let mut read = 0;
        loop {
            let page = self.page(self.cursor).await?;
            let count = page.changes.len();
            for raw in page.changes {
                let seq = raw.get("seq").and_then(serde_json::Value::as_i64).unwrap_or(self.cursor);
                match serde_json::from_value::<Change>(raw) {
                    Ok(Change::KeyRevoked { .. } | Change::QuotaSet { .. }) if seq <= self.standing_until => {}
                    Ok(change) => {
                        if let Err(error) = self.apply(change).await {
                            // Stuck here until it takes effect: what must
                            // not wait for it takes effect now.
                            if let Err(ahead) = self.apply_ahead(seq).await {
                                tracing::warn!(error = %ahead, "could not read the feed past a stuck change");
                            }
                            return Err(error);
                        }
                    }
                    Err(error) => tracing::warn!(seq, %error, "skipping a change this host does not understand"),
                }
                self.cursor = self.cursor.max(seq);
            }
            self.cursor = self.cursor.max(page.last);
            read += count;
            if count < PAGE {
                return Ok(read);
            }
        }
    }

    /// Applies the key revocations and quotas of the whole feed, and
    /// nothing else, so that by the time an agent of the feed is
    /// provisioned every key the control plane revoked is refused and
    /// every tenant has its quota.
    pub async fn load_standing(&mut self) -> Result<(), SyncError> {
        let mut after = 0;
        loop {
            let page = self.page(after).await?;
            let count = page.changes.len();
            for raw in page.changes {
                // What does not parse is skipped, with a warning, by `sync`.
                if let Ok(change @ (Change::KeyRevoked { .. } | Change::QuotaSet { .. })) = serde_json::from_value(raw)
                {
                    self.apply(change).await?;
                }
            }
            after = after.max(page.last);
            if count < PAGE {
                self.standing_until = after;
                return Ok(());
            }
        }
    }

    /// While the change at `stuck` cannot take effect (its artifact cannot
    /// be fetched: the control plane fails it, or it does not arrive in
    /// time), the feed's later revocations and quotas take effect anyway,
    /// and so do its deprovisions of agents the feed does not provision
    /// again later. The replay from `stuck` passes the revocations and
    /// quotas over (they are standing now) and deprovisions again, which
    /// changes nothing.
    async fn apply_ahead(&mut self, stuck: i64) -> Result<(), SyncError> {
        let mut ahead = Vec::new();
        let mut after = stuck;
        loop {
            let page = self.page(after).await?;
            let count = page.changes.len();
            for raw in page.changes {
                let seq = raw.get("seq").and_then(serde_json::Value::as_i64).unwrap_or(after);
                if let Ok(change) = serde_json::from_value::<Change>(raw) {
                    ahead.push((seq, change));
                }
            }
            after = after.max(page.last);
            if count < PAGE {
                break;
            }
        }
        let provisioned_again: std::collections::HashSet<String> = ahead
            .iter()
            .filter_map(|(_, change)| match change {
                Change::AgentProvisioned { agent } => Some(agent.id.clone()),
                _ => None,
            })
            .collect();
        for (seq, change) in ahead {
            match change {
                Change::KeyRevoked { .. } | Change::QuotaSet { .. } => {
                    self.apply(change).await?;
                    self.standing_until = self.standing_until.max(seq);
                }
                Change::AgentDeprovisioned { ref agent_id } if !provisioned_again.contains(agent_id) => {
                    self.apply(change).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The feed's changes after `after`, one page.
    async fn page(&self, after: i64) -> Result<Page, SyncError> {
        let url = format!("{}/api/runtime/changes/?after={after}&limit={PAGE}", self.base_url);
        serde_json::from_slice(&self.get(&url).await?)
            .map_err(|e| SyncError::Unreachable { url, message: format!("malformed feed: {e}") })
    }

    /// Raises this month's quota counters to what the usage ledger has
    /// recorded, so a restarted host does not grant a month's allowance twice.
    pub async fn seed_quota_usage(&self) -> Result<(), SyncError> {
        #[derive(serde::Deserialize)]
        struct Totals {
            tenants: HashMap<String, Used>,
        }
        let (month, index) = clock::month();
        let url = format!("{}/api/runtime/usage-totals/?month={month}", self.base_url);
        let totals: Totals = serde_json::from_slice(&self.get(&url).await?)
            .map_err(|e| SyncError::Unreachable { url, message: format!("malformed totals: {e}") })?;
        for (tenant, used) in totals.tenants {
            self.plane.quotas.seed(&tenant, index, used);
        }
        Ok(())
    }

    /// Seeds the quota counters and applies the standing changes, then
    /// follows the feed until `shutdown`, backing off while the control
    /// plane is unreachable, and seeds the counters again every while.
    pub async fn follow(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut prepared = false;
        let mut backoff = POLL_INTERVAL;
        let mut seeded = std::time::Instant::now();
        loop {
            if prepared && seeded.elapsed() >= self.quota_seed_every {
                seeded = std::time::Instant::now();
                if let Err(error) = self.seed_quota_usage().await {
                    tracing::warn!(%error, "quota counters not raised to the ledger's this time");
                }
            }
            let result = if prepared { self.sync().await.map(drop) } else { self.prepare().await };
            let wait = match result {
                Ok(()) => {
                    backoff = POLL_INTERVAL;
                    // Straight on to the feed once prepared.
                    if std::mem::replace(&mut prepared, true) { POLL_INTERVAL } else { Duration::ZERO }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "provisioning sync failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    wait
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// What comes before the feed's agents: the quota counters from the
    /// ledger, then the feed's revocations and quotas.
    async fn prepare(&mut self) -> Result<(), SyncError> {
        self.seed_quota_usage().await?;
        self.load_standing().await
    }

    async fn apply(&mut self, change: Change) -> Result<(), SyncError> {
        match change {
            Change::AgentProvisioned { agent } => {
                let Some(flow) = self.flow(&agent).await? else { return Ok(()) };
                let secrets = self.secrets(&agent).await?;
                tracing::info!(agent = %agent.id, tenant = %agent.tenant, digest = %agent.digest, secrets = agent.secrets.len(), "provisioned");
                let replaced = self.digest_of(&agent.id);
                self.plane.agents.provision(Agent {
                    limits: agent.limits.over(crate::Limits::default()),
                    persona: agent.persona.filter(|p| p.system_message().is_some()).map(Arc::new),
                    id: agent.id,
                    tenant: agent.tenant,
                    flow_id: agent.flow_id,
                    endpoint_name: agent.endpoint_name,
                    flow,
                    secrets,
                    widget_origins: agent.widget_origins,
                });
                self.forget_unused(replaced);
            }
            Change::AgentDeprovisioned { agent_id } => {
                tracing::info!(agent = %agent_id, "deprovisioned");
                let gone = self.digest_of(&agent_id);
                self.plane.agents.deprovision(&agent_id);
                self.forget_unused(gone);
            }
            Change::KeyRevoked { key_id, exp } => self.plane.keys.revoke(&key_id, exp),
            Change::QuotaSet { tenant, quota } => self.plane.quotas.set(&tenant, quota),
        }
        Ok(())
    }

    /// The digest agent `id` runs now, if it is provisioned.
    fn digest_of(&self, id: &str) -> Option<String> {
        self.plane.agents.get(id).map(|a| a.flow.digest().to_owned())
    }

    /// Drops the loaded flow of `digest` once no agent runs it, so a host
    /// that sees many versions come and go does not keep them all.
    fn forget_unused(&mut self, digest: Option<String>) {
        if let Some(digest) = digest.filter(|d| !self.plane.agents.uses_digest(d)) {
            self.flows.remove(&digest);
        }
    }

    /// The agent's flow, loaded once per digest; `None` (logged) when the
    /// artifact is gone or is not what the digest says.
    async fn flow(&mut self, agent: &AgentSpec) -> Result<Option<FlowComponent>, SyncError> {
        if let Some(flow) = self.flows.get(&agent.digest) {
            return Ok(Some(flow.clone()));
        }
        let url = format!("{}/api/runtime/artifacts/{}", self.base_url, agent.digest);
        let bytes = match self.get(&url).await {
            Ok(bytes) => bytes,
            Err(SyncError::Refused { status: 404, .. }) => {
                tracing::error!(agent = %agent.id, digest = %agent.digest, "the agent's artifact is gone; not provisioned");
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let runtime = self.plane.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_flow(&bytes))
            .await
            .map_err(|e| SyncError::Unreachable { url: url.clone(), message: e.to_string() })?;
        match loaded {
            Ok(flow) if flow.digest() == agent.digest => {
                self.flows.insert(agent.digest.clone(), flow.clone());
                Ok(Some(flow))
            }
            Ok(flow) => {
                let got = flow.digest();
                tracing::error!(agent = %agent.id, want = %agent.digest, %got, "the artifact does not match its digest; not provisioned");
                Ok(None)
            }
            Err(error) => {
                tracing::error!(agent = %agent.id, digest = %agent.digest, %error, "the agent's flow does not load; not provisioned");
                Ok(None)
            }
        }
    }

    /// The secrets of `agent` (the buyer's and the seller's), when its change names some; none
    /// (logged) when the control plane no longer knows the agent, whose
    /// deprovision follows in the feed.
    async fn secrets(&self, agent: &AgentSpec) -> Result<crate::Secrets, SyncError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            secrets: HashMap<String, Wire>,
        }
        #[derive(serde::Deserialize)]
        struct Wire {
            value: String,
            /// The hosts nodes may send it to; none when absent.
            #[serde(default)]
            hosts: Vec<String>,
        }
        if agent.secrets.is_empty() {
            return Ok(crate::Secrets::default());
        }
        let url = format!("{}/api/runtime/agents/{}/secrets", self.base_url, agent.id);
        let bytes = match self.get(&url).await {
            Ok(bytes) => bytes,
            Err(SyncError::Refused { status: 404, .. }) => {
                tracing::warn!(agent = %agent.id, "the control plane no longer knows the agent; provisioned without its secrets");
                return Ok(crate::Secrets::default());
            }
            Err(error) => return Err(error),
        };
        // Not serde's own words: they can quote a value.
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| SyncError::Unreachable {
            message: format!(
                "malformed secrets at line {} column {} (expected {{\"secrets\": {{NAME: {{\"value\", \"hosts\"}}}}}}; \
                 is the control plane older than this host?)",
                e.line(),
                e.column()
            ),
            url,
        })?;
        for missing in agent.secrets.iter().filter(|name| !answer.secrets.contains_key(name.as_str())) {
            tracing::warn!(agent = %agent.id, secret = %missing, "a secret the feed names did not arrive");
        }
        let mut secrets = crate::Secrets::default();
        for (name, Wire { value, hosts }) in answer.secrets {
            // A host pattern this host cannot read is left out: it narrows
            // where the secret goes, never widens it.
            let reach = hosts
                .iter()
                .filter_map(|h| {
                    h.parse()
                        .inspect_err(|error| {
                            tracing::warn!(agent = %agent.id, secret = %name, %error, "a secret's host is left out");
                        })
                        .ok()
                })
                .collect();
            secrets.insert(name, crate::Secret::for_hosts(value, reach));
        }
        Ok(secrets)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, SyncError> {
        let unreachable = |e: reqwest::Error| SyncError::Unreachable { url: url.to_owned(), message: e.to_string() };
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(SyncError::Refused { url: url.to_owned(), status: response.status().as_u16() });
        }
        Ok(response.bytes().await.map_err(unreachable)?.to_vec())
    }
}
