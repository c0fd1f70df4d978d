//! Agents provisioned on this host: a tenant's compiled flow with its limits.

use crate::{FlowComponent, Limits, Persona, Secrets};
use dashmap::DashMap;
use std::sync::Arc;

/// One provisioned agent.
pub struct Agent {
    /// Agent id (what `/v1/agents/{agent}` and `model` name).
    pub id: String,
    /// The tenant (buyer organisation) that owns it.
    pub tenant: String,
    /// Langflow's flow id, for `/api/v1/run/{flow}` and message `flow_id`.
    pub flow_id: String,
    /// The slug `/api/v1/run/{endpoint}` also accepts.
    pub endpoint_name: Option<String>,
    /// The compiled flow.
    pub flow: FlowComponent,
    /// Limits of each run.
    pub limits: Limits,
    /// The agent's secrets (the buyer's and seller's global variables).
    pub secrets: Secrets,
    /// The buyer's persona, if they configured one.
    pub persona: Option<Arc<Persona>>,
    /// Origins (`https://shop.example`) whose pages may call the agent with
    /// a widget key; empty lets any page.
    pub widget_origins: Vec<String>,
}

/// Agents by id, and by flow id and endpoint name within their tenant (two
/// buyers of one seller's flow share its flow id, and so do two
/// subscriptions of one buyer to it).
#[derive(Default)]
pub struct Agents {
    by_id: DashMap<String, Arc<Agent>>,
    /// When each was first provisioned on this host (Unix seconds).
    since: DashMap<String, u64>,
    /// The ids of the agents each name of a tenant names ([`alias`]),
    /// oldest first.
    aliases: DashMap<String, Vec<String>>,
}

/// A name that several agents of the tenant answer to: their ids.
#[derive(Debug, PartialEq, Eq)]
pub struct Ambiguous(pub Vec<String>);

impl Agents {
    /// Provisions (or replaces) an agent.
    pub fn provision(&self, agent: Agent) {
        let agent = Arc::new(agent);
        self.since.entry(agent.id.clone()).or_insert_with(super::clock::unix_seconds);
        if let Some(replaced) = self.by_id.insert(agent.id.clone(), agent.clone()) {
            // A new version may have a new flow id or endpoint name.
            self.unalias(&replaced);
        }
        for alias in aliases(&agent) {
            let mut ids = self.aliases.entry(alias).or_default();
            if !ids.contains(&agent.id) {
                ids.push(agent.id.clone());
            }
        }
    }

    /// Removes an agent.
    pub fn deprovision(&self, id: &str) {
        if let Some((_, agent)) = self.by_id.remove(id) {
            self.unalias(&agent);
        }
        self.since.remove(id);
    }

    fn unalias(&self, agent: &Agent) {
        for alias in aliases(agent) {
            if let Some(mut ids) = self.aliases.get_mut(&alias) {
                ids.retain(|id| id != &agent.id);
            }
            self.aliases.remove_if(&alias, |_, ids| ids.is_empty());
        }
    }

    /// The agent `reference` names for `tenant`: its id, or else the flow id
    /// or endpoint name of one of the tenant's agents, among `allowed` (the
    /// key's agents; empty: all of them). A name several of them answer to
    /// is [`Ambiguous`]. A name only agents outside `allowed` answer to
    /// gives one of those, for the caller to refuse.
    pub fn find(&self, tenant: &str, reference: &str, allowed: &[String]) -> Result<Option<Arc<Agent>>, Ambiguous> {
        if let Some(agent) = self.get(reference).filter(|agent| agent.tenant == tenant) {
            return Ok(Some(agent));
        }
        let Some(ids) = self.aliases.get(&alias(tenant, reference)) else { return Ok(None) };
        let permitted = || ids.iter().filter(|id| allowed.is_empty() || allowed.contains(id));
        let mut found = permitted();
        match (found.next(), found.next()) {
            (None, _) => Ok(ids.first().and_then(|id| self.get(id))),
            (Some(one), None) => Ok(self.get(one)),
            (Some(_), Some(_)) => Err(Ambiguous(permitted().cloned().collect())),
        }
    }

    /// The agent with id `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Agent>> {
        self.by_id.get(id).map(|a| a.clone())
    }

    /// `tenant`'s agents among `allowed` (empty: all of them), by id,
    /// each with when it was first provisioned here (Unix seconds).
    pub fn of_tenant(&self, tenant: &str, allowed: &[String]) -> Vec<(Arc<Agent>, u64)> {
        let mut found: Vec<(Arc<Agent>, u64)> = self
            .by_id
            .iter()
            .filter(|agent| agent.tenant == tenant && (allowed.is_empty() || allowed.contains(&agent.id)))
            .map(|agent| (agent.clone(), self.since.get(&agent.id).map_or(0, |s| *s)))
            .collect();
        found.sort_by(|(a, _), (b, _)| a.id.cmp(&b.id));
        found
    }

    /// When agent `id` was first provisioned here (Unix seconds).
    pub fn since(&self, id: &str) -> Option<u64> {
        self.since.get(id).map(|s| *s)
    }

    /// Whether any agent runs the flow with `digest`.
    pub fn uses_digest(&self, digest: &str) -> bool {
        self.by_id.iter().any(|agent| agent.flow.digest() == digest)
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The key of `name` within `tenant`. The tenant's length comes first, so
/// no other tenant and name make the same key (`a/b` + `c` and `a` + `b/c`
/// would with a plain separator).
fn alias(tenant: &str, name: &str) -> String {
    format!("{}:{tenant}/{name}", tenant.len())
}

/// The names `agent` answers to within its tenant, besides its id.
fn aliases(agent: &Agent) -> impl Iterator<Item = String> + '_ {
    std::iter::once(&agent.flow_id).chain(&agent.endpoint_name).map(|name| alias(&agent.tenant, name))
}

#[cfg(test)]
mod tests {
    use super::alias;

    #[test]
    fn names_of_different_tenants_never_share_a_key() {
        assert_ne!(alias("a/b", "c"), alias("a", "b/c"));
        assert_eq!(alias("a", "b/c"), alias("a", "b/c"));
    }
}
