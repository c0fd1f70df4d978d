//! Agents provisioned on this host: a tenant's compiled flow with its limits.

use crate::{FlowComponent, Limits, Secrets};
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
}

/// Agents by id, flow id and endpoint name.
#[derive(Default)]
pub struct Agents {
    by_id: DashMap<String, Arc<Agent>>,
    aliases: DashMap<String, String>,
}

impl Agents {
    /// Provisions (or replaces) an agent.
    pub fn provision(&self, agent: Agent) {
        let agent = Arc::new(agent);
        self.aliases.insert(agent.flow_id.clone(), agent.id.clone());
        if let Some(endpoint) = &agent.endpoint_name {
            self.aliases.insert(format!("{}/{endpoint}", agent.tenant), agent.id.clone());
        }
        self.by_id.insert(agent.id.clone(), agent);
    }

    /// Removes an agent.
    pub fn deprovision(&self, id: &str) {
        if let Some((_, agent)) = self.by_id.remove(id) {
            self.aliases.remove(&agent.flow_id);
            if let Some(endpoint) = &agent.endpoint_name {
                self.aliases.remove(&format!("{}/{endpoint}", agent.tenant));
            }
        }
    }

    /// The agent `reference` names for `tenant`: its id, flow id or (within
    /// the tenant) endpoint name.
    pub fn find(&self, tenant: &str, reference: &str) -> Option<Arc<Agent>> {
        let id = self
            .aliases
            .get(&format!("{tenant}/{reference}"))
            .or_else(|| self.aliases.get(reference))
            .map(|id| id.clone())
            .unwrap_or_else(|| reference.to_owned());
        self.by_id.get(&id).map(|a| a.clone())
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
