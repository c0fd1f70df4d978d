//! Monthly quotas per tenant (runs, fuel, LLM tokens), set by the operator
//! and enforced before a run starts. Usage is counted as runs finish.

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

/// A tenant's monthly allowance; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Runs per month.
    pub runs: Option<u64>,
    /// Fuel per month.
    pub fuel: Option<u64>,
    /// LLM tokens (in + out) per month.
    pub tokens: Option<u64>,
    /// Requests per minute across the tenant's keys.
    pub rpm: Option<u32>,
}

/// What a tenant used this month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Used {
    /// Runs.
    pub runs: u64,
    /// Fuel.
    pub fuel: u64,
    /// Tokens.
    pub tokens: u64,
}

/// Quotas and this month's usage, per tenant.
#[derive(Default)]
pub struct Quotas {
    quotas: DashMap<String, Quota>,
    used: DashMap<String, (u32, Used)>,
}

impl Quotas {
    /// Sets `tenant`'s quota.
    pub fn set(&self, tenant: &str, quota: Quota) {
        self.quotas.insert(tenant.to_owned(), quota);
    }

    /// `tenant`'s quota.
    pub fn get(&self, tenant: &str) -> Quota {
        self.quotas.get(tenant).map(|q| q.clone()).unwrap_or_default()
    }

    /// Refuses when `tenant` has exhausted any allowance this month; the
    /// message says which and when it resets.
    pub fn check(&self, tenant: &str, month: u32) -> Result<(), String> {
        let quota = self.get(tenant);
        let used = self.used(tenant, month);
        let over = |limit: Option<u64>, used: u64| limit.is_some_and(|l| used >= l);
        let exhausted = if over(quota.runs, used.runs) {
            Some(("runs", quota.runs))
        } else if over(quota.fuel, used.fuel) {
            Some(("fuel", quota.fuel))
        } else if over(quota.tokens, used.tokens) {
            Some(("tokens", quota.tokens))
        } else {
            None
        };
        match exhausted {
            Some((what, Some(limit))) => Err(format!(
                "tenant `{tenant}` has used its monthly quota of {limit} {what}; it resets at the start of next month, or the operator can raise it"
            )),
            _ => Ok(()),
        }
    }

    /// Counts one finished run.
    pub fn record(&self, tenant: &str, month: u32, fuel: u64, tokens: u64) {
        let mut entry = self.used.entry(tenant.to_owned()).or_insert((month, Used::default()));
        if entry.0 != month {
            *entry = (month, Used::default());
        }
        entry.1.runs += 1;
        entry.1.fuel += fuel;
        entry.1.tokens += tokens;
    }

    /// Raises `tenant`'s count for `month` to at least `used` (what the
    /// usage ledger says), so a restarted host does not hand out a month's
    /// allowance again.
    pub fn seed(&self, tenant: &str, month: u32, used: Used) {
        let mut entry = self.used.entry(tenant.to_owned()).or_insert((month, Used::default()));
        if entry.0 != month {
            *entry = (month, Used::default());
        }
        let counted = &mut entry.1;
        counted.runs = counted.runs.max(used.runs);
        counted.fuel = counted.fuel.max(used.fuel);
        counted.tokens = counted.tokens.max(used.tokens);
    }

    /// `tenant`'s usage in `month`.
    pub fn used(&self, tenant: &str, month: u32) -> Used {
        self.used.get(tenant).filter(|e| e.0 == month).map(|e| e.1).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_quota_is_refused_until_the_month_turns() {
        let q = Quotas::default();
        q.set("t", Quota { runs: Some(2), ..Quota::default() });
        q.record("t", 1, 10, 0);
        assert!(q.check("t", 1).is_ok());
        q.record("t", 1, 10, 0);
        let err = q.check("t", 1).expect_err("two runs used");
        assert!(err.contains("monthly quota of 2 runs"), "{err}");
        assert!(q.check("t", 2).is_ok(), "a new month starts afresh");
        assert!(q.check("unlimited", 1).is_ok());
    }

    #[test]
    fn seeding_never_lowers_a_count() {
        let q = Quotas::default();
        q.set("t", Quota { runs: Some(3), ..Quota::default() });
        q.record("t", 1, 10, 0);
        q.seed("t", 1, Used { runs: 3, fuel: 5, tokens: 0 });
        assert!(q.check("t", 1).is_err(), "the ledger's three runs count");
        q.seed("t", 1, Used::default());
        assert_eq!(q.used("t", 1), Used { runs: 3, fuel: 10, tokens: 0 });
    }
}
