//! Rate limits at the door: a token bucket per key and per tenant. A
//! refused request learns how long to wait (`Retry-After`). Buckets idle
//! for [`IDLE`] are full again and are dropped, so keys long unused
//! (expired, revoked) do not stay in memory.

use dashmap::DashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bucket idle this long has refilled completely: dropping it changes
/// nothing. Also how often idle buckets are looked for.
const IDLE: Duration = Duration::from_secs(60);

/// Token buckets keyed by key id or tenant.
pub struct RateLimiter {
    buckets: DashMap<String, Bucket>,
    last_sweep: Mutex<Instant>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self { buckets: DashMap::new(), last_sweep: Mutex::new(Instant::now()) }
    }

    /// Takes one request from each of `buckets` (name, per minute; a
    /// bucket holds a minute's requests, its burst), or
    /// from none: `Err` holds the index of the first that refused and how
    /// long until it would admit one; the ones before it get theirs back.
    pub fn check_all(&self, buckets: &[(String, u32)]) -> Result<(), (usize, Duration)> {
        self.check_all_at(buckets, Instant::now())
    }

    fn check_all_at(&self, buckets: &[(String, u32)], now: Instant) -> Result<(), (usize, Duration)> {
        for (i, (name, per_minute)) in buckets.iter().enumerate() {
            if let Err(wait) = self.check_at(name, *per_minute, now) {
                for (taken, per_minute) in &buckets[..i] {
                    self.give_back(taken, *per_minute);
                }
                return Err((i, wait));
            }
        }
        Ok(())
    }

    /// Returns a request taken from `key`'s bucket.
    fn give_back(&self, key: &str, per_minute: u32) {
        if let Some(mut bucket) = self.buckets.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(per_minute));
        }
    }

    /// Takes one request from `key`'s bucket of `per_minute`; `Err` holds
    /// how long until it would admit one.
    fn check_at(&self, key: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        if per_minute == 0 {
            return Err(Duration::from_secs(60));
        }
        self.sweep(now);
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let mut bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

impl RateLimiter {
    /// Drops the buckets idle for [`IDLE`], at most once per [`IDLE`]; a
    /// request that finds another sweeping goes on without waiting.
    fn sweep(&self, now: Instant) {
        let Ok(mut last) = self.last_sweep.try_lock() else { return };
        if now.saturating_duration_since(*last) < IDLE {
            return;
        }
        *last = now;
        drop(last);
        self.buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated) < IDLE);
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_a_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("k", 3, now).is_ok());
        }
        let wait = limiter.check_at("k", 3, now + Duration::from_secs(1)).expect_err("bucket empty");
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check_at("other", 3, now).is_ok(), "buckets are per key");
    }

    #[test]
    fn a_request_one_bucket_refuses_costs_the_others_nothing() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        let both = [("key".to_owned(), 3), ("tenant".to_owned(), 1)];
        assert!(limiter.check_all_at(&both, now).is_ok());
        for _ in 0..5 {
            let (refused, _) = limiter.check_all_at(&both, now).expect_err("the tenant's bucket is empty");
            assert_eq!(refused, 1);
        }
        // The key spent one request, not six: two are left.
        assert!(limiter.check_at("key", 3, now).is_ok());
        assert!(limiter.check_at("key", 3, now).is_ok());
        assert!(limiter.check_at("key", 3, now).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_and_busy_ones_kept() {
        let limiter = RateLimiter::new();
        let start = Instant::now();
        assert!(limiter.check_at("old", 3, start).is_ok());
        assert!(limiter.check_at("busy", 3, start + IDLE / 2).is_ok());
        assert!(limiter.check_at("new", 3, start + IDLE + Duration::from_secs(1)).is_ok());
        let mut left: Vec<String> = limiter.buckets.iter().map(|b| b.key().clone()).collect();
        left.sort();
        assert_eq!(left, ["busy", "new"]);
    }
}
