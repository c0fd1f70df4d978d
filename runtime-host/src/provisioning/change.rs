//! The control plane's change feed as the runtime host reads it.
//!
//! `GET /api/runtime/changes/?after=<seq>` answers
//! `{"changes": [{"seq": 7, "kind": "agent.provisioned", …}, …], "last": 7}`
//! in sequence order. A change this host does not know is skipped (with a
//! warning), so a newer control plane does not stop an older host.

use crate::Limits;
use crate::api::Quota;
use crate::capabilities::persona::Persona;
use serde::Deserialize;
use std::time::Duration;

/// One page of the feed.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// Changes after the cursor, in order.
    pub changes: Vec<serde_json::Value>,
    /// The highest sequence number in `changes`, or the cursor when empty.
    pub last: i64,
}

/// What one change asks of the host.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind")]
pub enum Change {
    /// Provision an agent, or replace it (new version, config or limits).
    #[serde(rename = "agent.provisioned")]
    AgentProvisioned {
        /// The agent (boxed: it is several times the size of the other
        /// changes).
        agent: Box<AgentSpec>,
    },
    /// Remove an agent.
    #[serde(rename = "agent.deprovisioned")]
    AgentDeprovisioned {
        /// Its id.
        agent_id: String,
    },
    /// Refuse a key from now on.
    #[serde(rename = "key.revoked")]
    KeyRevoked {
        /// The key's id (its `sub`).
        key_id: String,
        /// The key's expiry (its `exp`, seconds since the Unix epoch), after
        /// which the host forgets the revocation; absent from older feeds.
        #[serde(default)]
        exp: Option<u64>,
    },
    /// Set a tenant's monthly quota.
    #[serde(rename = "quota.set")]
    QuotaSet {
        /// The tenant.
        tenant: String,
        /// Its allowance.
        quota: Quota,
    },
}

/// A buyer's agent: which flow it runs, for whom, with which limits.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentSpec {
    /// Agent id (the subscription's resource id).
    pub id: String,
    /// The buyer organisation.
    pub tenant: String,
    /// The subscription runs are billed to.
    pub subscription: Option<String>,
    /// Langflow's flow id, for `/api/v1/run/{flow}`.
    pub flow_id: String,
    /// The slug `/api/v1/run/{endpoint}` also accepts.
    pub endpoint_name: Option<String>,
    /// Digest of the flow component (`GET /api/runtime/artifacts/{digest}`).
    pub digest: String,
    /// Per-run limits; `null` fields take the host's defaults.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// The buyer's persona.
    pub persona: Option<Persona>,
    /// Origins whose pages may call the agent with a widget key (the
    /// buyer's widget settings); empty lets any page.
    #[serde(default)]
    pub widget_origins: Vec<String>,
    /// Names of the agent's secrets, the buyer's and the seller's (global variables its
    /// flow names); their values are fetched from the control plane
    /// (`GET /api/runtime/agents/{id}/secrets`), never carried in the feed.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Per-run limits as the control plane sets them.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct LimitsSpec {
    /// Fuel per run.
    pub fuel: Option<u64>,
    /// Linear memory per run, in bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock deadline per run, in milliseconds.
    pub deadline_ms: Option<u64>,
}

impl LimitsSpec {
    /// The limits, with `defaults` where none is set.
    pub fn over(self, defaults: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(defaults.fuel),
            memory_bytes: self.memory_bytes.map_or(defaults.memory_bytes, |m| usize::try_from(m).unwrap_or(usize::MAX)),
            deadline: self.deadline_ms.map_or(defaults.deadline, Duration::from_millis),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_change() {
        let agent = serde_json::json!({
            "seq": 1, "kind": "agent.provisioned",
            "agent": {"id": "r1", "tenant": "t1", "subscription": "r1", "flow_id": "f", "endpoint_name": null,
                      "digest": "sha256:ab", "limits": {"fuel": 10, "memory_bytes": null, "deadline_ms": 2000},
                      "persona": {"name": "Ada", "system_prompt": "Be brief.", "tone": "warm"}, "rpm": 60,
                      "secrets": ["TAVILY_API_KEY"]}
        });
        let Change::AgentProvisioned { agent } = serde_json::from_value(agent).expect("agent change") else {
            panic!("not an agent change")
        };
        let limits = agent.limits.over(Limits::default());
        assert_eq!((limits.fuel, limits.deadline), (10, Duration::from_secs(2)));
        assert_eq!(limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(agent.persona.map(|p| p.name), Some("Ada".into()));
        assert_eq!(agent.secrets, ["TAVILY_API_KEY"]);

        let quota = serde_json::json!({"seq": 2, "kind": "quota.set", "tenant": "t1",
            "quota": {"runs": 5, "fuel": null, "tokens": null, "rpm": 30}});
        assert!(matches!(
            serde_json::from_value(quota),
            Ok(Change::QuotaSet { quota: Quota { runs: Some(5), .. }, .. })
        ));
        let revoked = serde_json::json!({"seq": 3, "kind": "key.revoked", "key_id": "k"});
        assert!(matches!(serde_json::from_value(revoked), Ok(Change::KeyRevoked { exp: None, .. })));
        let revoked = serde_json::json!({"seq": 3, "kind": "key.revoked", "key_id": "k", "exp": 1_900_000_000});
        assert!(matches!(serde_json::from_value(revoked), Ok(Change::KeyRevoked { exp: Some(1_900_000_000), .. })));
        let gone = serde_json::json!({"seq": 4, "kind": "agent.deprovisioned", "agent_id": "r1"});
        assert!(matches!(serde_json::from_value(gone), Ok(Change::AgentDeprovisioned { .. })));
        let unknown = serde_json::json!({"seq": 5, "kind": "invoice.issued"});
        assert!(serde_json::from_value::<Change>(unknown).is_err());
    }
}
