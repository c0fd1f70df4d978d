//! Monthly quotas per tenant (runs, fuel, LLM tokens), set by the operator
//! and enforced before a run starts. A run is counted when it is admitted
//! (a [`Reservation`]), so many runs admitted at once cannot all take the
//! last one; its fuel and tokens are added when it ends.

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

    /// Admits one run of `tenant` in `month` and counts it at once, or
    /// refuses when any allowance is exhausted (the message says which and
    /// when it resets). The run's fuel and tokens are added by
    /// [`Reservation::finish`]; a reservation dropped unfinished (a run
    /// that never ran) gives the run back.
    pub fn reserve(self: &Arc<Self>, tenant: &str, month: u32) -> Result<Reservation, String> {
        let quota = self.get(tenant);
        let mut entry = self.entry(tenant, month);
        Self::refusal(tenant, &quota, &entry.1).map_or(Ok(()), Err)?;
        entry.1.runs += 1;
        drop(entry);
        Ok(Reservation { quotas: self.clone(), tenant: tenant.to_owned(), month, finished: false })
    }

    /// Refuses when `tenant` has exhausted any allowance this month; the
    /// message says which and when it resets.
    pub fn check(&self, tenant: &str, month: u32) -> Result<(), String> {
        Self::refusal(tenant, &self.get(tenant), &self.used(tenant, month)).map_or(Ok(()), Err)
    }

    fn refusal(tenant: &str, quota: &Quota, used: &Used) -> Option<String> {
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
            Some((what, Some(limit))) => Some(format!(
                "tenant `{tenant}` has used its monthly quota of {limit} {what}; it resets at the start of next month, or the operator can raise it"
            )),
            _ => None,
        }
    }

    /// `tenant`'s count, started over when `month` is a new one.
    fn entry(&self, tenant: &str, month: u32) -> dashmap::mapref::one::RefMut<'_, String, (u32, Used)> {
        let mut entry = self.used.entry(tenant.to_owned()).or_insert((month, Used::default()));
        if entry.0 != month {
            *entry = (month, Used::default());
        }
        entry
    }

    /// Raises `tenant`'s count for `month` to at least `used` (what the
    /// usage ledger says), so a restarted host does not hand out a month's
    /// allowance again.
    pub fn seed(&self, tenant: &str, month: u32, used: Used) {
        let mut entry = self.entry(tenant, month);
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

/// One admitted run, already counted against its tenant's quota.
#[must_use = "dropping a reservation gives its run back"]
pub struct Reservation {
    quotas: Arc<Quotas>,
    tenant: String,
    month: u32,
    finished: bool,
}

impl Reservation {
    /// The run ended (however it ended): adds what it used to the month
    /// it was admitted in. A month that has ended meanwhile is not
    /// brought back: that would wipe the new month's count.
    pub fn finish(mut self, fuel: u64, tokens: u64) {
        self.finished = true;
        if let Some(mut entry) = self.counted() {
            entry.1.fuel += fuel;
            entry.1.tokens += tokens;
        }
    }

    /// The tenant's count, while it is still of the reservation's month.
    fn counted(&self) -> Option<dashmap::mapref::one::RefMut<'_, String, (u32, Used)>> {
        self.quotas.used.get_mut(&self.tenant).filter(|entry| entry.0 == self.month)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.finished
            && let Some(mut entry) = self.counted()
        {
            entry.1.runs = entry.1.runs.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_quota_is_refused_until_the_month_turns() {
        let q = Arc::new(Quotas::default());
        q.set("t", Quota { runs: Some(2), ..Quota::default() });
        q.reserve("t", 1).expect("first").finish(10, 0);
        assert!(q.check("t", 1).is_ok());
        q.reserve("t", 1).expect("second").finish(10, 0);
        let err = q.check("t", 1).expect_err("two runs used");
        assert!(err.contains("monthly quota of 2 runs"), "{err}");
        assert!(q.check("t", 2).is_ok(), "a new month starts afresh");
        assert!(q.check("unlimited", 1).is_ok());
    }

    #[test]
    fn runs_admitted_at_once_cannot_all_take_the_last_one() {
        let q = Arc::new(Quotas::default());
        q.set("t", Quota { runs: Some(2), ..Quota::default() });
        let first = q.reserve("t", 1).expect("one of two");
        let second = q.reserve("t", 1).expect("two of two");
        let refused = q.reserve("t", 1).err().expect("both runs are taken while they run");
        assert!(refused.contains("monthly quota of 2 runs"), "{refused}");
        // A run that never ran gives its place back; one that ran keeps it.
        drop(second);
        first.finish(7, 3);
        let third = q.reserve("t", 1).expect("the unrun one's place");
        assert!(q.reserve("t", 1).is_err());
        third.finish(1, 0);
        assert_eq!(q.used("t", 1), Used { runs: 2, fuel: 8, tokens: 3 });
    }

    #[test]
    fn a_run_that_ends_in_the_next_month_leaves_that_months_count_alone() {
        let q = Arc::new(Quotas::default());
        let late = q.reserve("t", 1).expect("admitted in month 1");
        let never_ran = q.reserve("t", 1).expect("admitted in month 1");
        q.reserve("t", 2).expect("admitted in month 2").finish(5, 0);
        late.finish(7, 0);
        drop(never_ran);
        assert_eq!(q.used("t", 2), Used { runs: 1, fuel: 5, tokens: 0 });
    }

    #[test]
    fn seeding_never_lowers_a_count() {
        let q = Arc::new(Quotas::default());
        q.set("t", Quota { runs: Some(3), ..Quota::default() });
        q.reserve("t", 1).expect("admitted").finish(10, 0);
        q.seed("t", 1, Used { runs: 3, fuel: 5, tokens: 0 });
        assert!(q.check("t", 1).is_err(), "the ledger's three runs count");
        q.seed("t", 1, Used::default());
        assert_eq!(q.used("t", 1), Used { runs: 3, fuel: 10, tokens: 0 });
    }
}
