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
}

/// Agents by id, and by flow id and endpoint name within their tenant (two
/// buyers of one seller's flow share its flow id).
#[derive(Default)]
pub struct Agents {
    by_id: DashMap<String, Arc<Agent>>,
    aliases: DashMap<String, String>,
}

impl Agents {
    /// Provisions (or replaces) an agent.
    pub fn provision(&self, agent: Agent) {
        let agent = Arc::new(agent);
        for alias in aliases(&agent) {
            self.aliases.insert(alias, agent.id.clone());
        }
        if let Some(replaced) = self.by_id.insert(agent.id.clone(), agent.clone()) {
            // A new version may have a new flow id or endpoint name.
            for alias in aliases(&replaced).filter(|a| !aliases(&agent).any(|b| &b == a)) {
                self.aliases.remove_if(&alias, |_, id| id == &agent.id);
            }
        }
    }

    /// Removes an agent.
    pub fn deprovision(&self, id: &str) {
        if let Some((_, agent)) = self.by_id.remove(id) {
            for alias in aliases(&agent) {
                self.aliases.remove_if(&alias, |_, owner| owner == id);
            }
        }
    }

    /// The agent `reference` names for `tenant`: its id, or its flow id or
    /// endpoint name within the tenant.
    pub fn find(&self, tenant: &str, reference: &str) -> Option<Arc<Agent>> {
        let id = self.aliases.get(&alias(tenant, reference)).map(|id| id.clone());
        self.get(id.as_deref().unwrap_or(reference))
    }

    /// The agent with id `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Agent>> {
        self.by_id.get(id).map(|a| a.clone())
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

fn alias(tenant: &str, name: &str) -> String {
    format!("{tenant}/{name}")
}

/// The names `agent` answers to within its tenant, besides its id.
fn aliases(agent: &Agent) -> impl Iterator<Item = String> + '_ {
    std::iter::once(&agent.flow_id).chain(&agent.endpoint_name).map(|name| alias(&agent.tenant, name))
}
