//! Runs in progress per tenant, capped. A tenant that sends runs faster
//! than they finish (slow models, a flood of webhooks, streams whose
//! clients leave) is told to wait, rather than queueing runs, each with its
//! request body, without bound in the host's memory and ahead of every
//! other tenant's runs on the shared lanes.

use dashmap::DashMap;
use std::sync::Arc;

/// Runs in progress, per tenant.
#[derive(Default)]
pub struct InFlight {
    counts: Arc<DashMap<String, usize>>,
}

/// One run in progress; it counts until dropped.
pub struct Slot {
    counts: Arc<DashMap<String, usize>>,
    tenant: String,
}

impl InFlight {
    /// A slot for one more run of `tenant`, unless it has `limit` already.
    pub fn enter(&self, tenant: &str, limit: usize) -> Option<Slot> {
        let mut count = self.counts.entry(tenant.to_owned()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        drop(count);
        Some(Slot { counts: self.counts.clone(), tenant: tenant.to_owned() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(mut count) = self.counts.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
        }
        self.counts.remove_if(&self.tenant, |_, count| *count == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_waits_past_its_limit_and_others_do_not() {
        let in_flight = InFlight::default();
        let first = in_flight.enter("t", 2).expect("one");
        let second = in_flight.enter("t", 2).expect("two");
        assert!(in_flight.enter("t", 2).is_none(), "a third waits");
        assert!(in_flight.enter("other", 2).is_some(), "another tenant does not");
        drop(first);
        let third = in_flight.enter("t", 2).expect("a finished run makes room");
        drop((second, third));
        assert!(in_flight.counts.get("t").is_none(), "a tenant with none in progress is forgotten");
    }
}
