//! Name lookups for `fetch`, bounded per tenant, per flow and per host.
//!
//! The system resolver runs on a blocking thread and cannot be cancelled:
//! when a request times out, its lookup goes on until the resolver gives
//! up, seconds later for a name server that never answers. Unbounded, a
//! flow asking for such names in a loop with a 1 ms timeout would soon
//! hold every thread of the I/O runtime's blocking pool, which every other
//! tenant's lookups and `files` calls wait for too. So a lookup first
//! takes a slot, which it gives back when the resolver returns, not when
//! the request gives up: at most [`PER_TENANT`] a tenant, [`PER_FLOW`] a
//! flow (one seller's flow sold to many tenants runs under each of them,
//! and would otherwise take [`PER_TENANT`] in each until the host's are
//! gone) and [`TOTAL`] on the host. Past any, the lookup fails at once and
//! says why, and the host's log names the tenant and flow.
//!
//! The flow's share is half the host's, four tenants' worth: a flow's
//! buyers can keep one another from looking names up (the price of
//! bounding its seller), but two of them cannot, and a flow cannot keep
//! the other half of the host from it. A seller's several flows (or
//! versions) each have a share of their own; the flow's digest is what
//! the host knows of who wrote it.

use crate::bindings::node::sandflow::host::types::CapabilityError;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

/// Lookups in progress on the host, of all tenants.
pub const TOTAL: usize = 64;
/// Lookups in progress of one tenant.
pub const PER_TENANT: usize = 8;
/// Lookups in progress of one flow (by its artifact's digest), over every
/// tenant that runs it.
pub const PER_FLOW: usize = 32;

/// Whose lookup it is.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The run's tenant.
    pub tenant: &'a str,
    /// The digest of the flow the run runs; `None` for a lone node, which
    /// has only the tenant's and the host's bounds.
    pub flow: Option<&'a str>,
}

#[derive(Default)]
struct InFlight {
    total: usize,
    by_tenant: HashMap<String, usize>,
    by_flow: HashMap<String, usize>,
}

static IN_FLIGHT: LazyLock<Mutex<InFlight>> = LazyLock::new(Mutex::default);

fn in_flight() -> MutexGuard<'static, InFlight> {
    IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One lookup in progress, counted until dropped.
struct Slot {
    tenant: String,
    flow: Option<String>,
}

impl Slot {
    fn take(caller: Caller<'_>) -> Result<Self, CapabilityError> {
        let mut in_flight = in_flight();
        let refused = |message: String| {
            tracing::warn!(tenant = caller.tenant, flow = caller.flow, "{message}");
            Err(CapabilityError::Failed(message))
        };
        if in_flight.by_tenant.get(caller.tenant).is_some_and(|&n| n >= PER_TENANT) {
            return refused(format!(
                "{PER_TENANT} name lookups of this tenant are still unanswered (a name server that does not answer \
                 holds each for seconds after its request gave up); try again later"
            ));
        }
        if caller.flow.is_some_and(|flow| in_flight.by_flow.get(flow).is_some_and(|&n| n >= PER_FLOW)) {
            return refused(format!(
                "{PER_FLOW} name lookups of this flow, over all the tenants that run it, are still unanswered; try \
                 again later"
            ));
        }
        if in_flight.total >= TOTAL {
            return refused(format!("this host has {TOTAL} name lookups unanswered; try again later"));
        }
        in_flight.total += 1;
        *in_flight.by_tenant.entry(caller.tenant.to_owned()).or_default() += 1;
        if let Some(flow) = caller.flow {
            *in_flight.by_flow.entry(flow.to_owned()).or_default() += 1;
        }
        Ok(Self { tenant: caller.tenant.to_owned(), flow: caller.flow.map(str::to_owned) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = in_flight();
        in_flight.total -= 1;
        release(&mut in_flight.by_tenant, &self.tenant);
        if let Some(flow) = &self.flow {
            release(&mut in_flight.by_flow, flow);
        }
    }
}

/// One fewer for `key`, forgotten at none.
fn release(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(held) = counts.get_mut(key) {
        *held -= 1;
        if *held == 0 {
            counts.remove(key);
        }
    }
}

/// The addresses `name` resolves to, looked up for `caller`.
pub async fn lookup(caller: Caller<'_>, name: &str, port: u16) -> Result<Vec<SocketAddr>, CapabilityError> {
    let slot = Slot::take(caller)?;
    let host = name.to_owned();
    let found = tokio::task::spawn_blocking(move || {
        // Held until the resolver returns, however long the request waits.
        let _slot = slot;
        (host.as_str(), port).to_socket_addrs().map(Iterator::collect)
    })
    .await;
    match found {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(error)) => Err(CapabilityError::Failed(format!("cannot resolve `{name}`: {error}"))),
        Err(error) => Err(CapabilityError::Failed(format!("cannot resolve `{name}`: the lookup ended ({error})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(tenant: &str) -> usize {
        in_flight().by_tenant.get(tenant).copied().unwrap_or(0)
    }

    fn caller<'a>(tenant: &'a str, flow: &'a str) -> Caller<'a> {
        Caller { tenant, flow: Some(flow) }
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_of_lookups() {
        let slots: Vec<Slot> =
            (0..PER_TENANT).map(|_| Slot::take(caller("lookup-test-a", "flow-a")).expect("within the share")).collect();
        let Err(CapabilityError::Failed(message)) = Slot::take(caller("lookup-test-a", "flow-a")) else {
            panic!("one past the tenant's share")
        };
        assert!(message.contains("still unanswered"), "{message}");
        // Another tenant is not held up by the first.
        let other = Slot::take(caller("lookup-test-b", "flow-a")).expect("another tenant");
        drop(other);
        assert_eq!(held_by("lookup-test-b"), 0);
        drop(slots);
        assert_eq!(held_by("lookup-test-a"), 0);
        drop(Slot::take(caller("lookup-test-a", "flow-a")).expect("freed again"));
    }

    #[test]
    fn a_flow_run_by_many_tenants_holds_at_most_its_share() {
        // One seller's flow, sold to many tenants, each within its own share.
        let tenants: Vec<String> = (0..PER_FLOW).map(|i| format!("lookup-test-f{i}")).collect();
        let slots: Vec<Slot> = tenants
            .iter()
            .map(|tenant| Slot::take(caller(tenant, "flow-f")).expect("within the flow's share"))
            .collect();
        let Err(CapabilityError::Failed(message)) = Slot::take(caller("lookup-test-fresh", "flow-f")) else {
            panic!("one past the flow's share, from a tenant with none in flight")
        };
        assert!(message.contains("of this flow"), "{message}");
        // Another flow of that same fresh tenant goes on, and a lone node.
        drop(Slot::take(caller("lookup-test-fresh", "flow-g")).expect("another flow"));
        drop(Slot::take(Caller { tenant: "lookup-test-fresh", flow: None }).expect("a lone node"));
        drop(slots);
        assert!(!in_flight().by_flow.contains_key("flow-f"), "given back");
    }

    #[tokio::test]
    async fn resolves_and_gives_the_slot_back() {
        let me = caller("lookup-test-c", "flow-c");
        let addrs = lookup(me, "localhost", 80).await.expect("localhost resolves");
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80), "{addrs:?}");
        assert_eq!(held_by("lookup-test-c"), 0);
        let Err(CapabilityError::Failed(message)) = lookup(me, "no-such-host.invalid", 80).await else {
            panic!("an invalid name does not resolve")
        };
        assert!(message.contains("cannot resolve `no-such-host.invalid`"), "{message}");
        assert_eq!(held_by("lookup-test-c"), 0);
    }
}
