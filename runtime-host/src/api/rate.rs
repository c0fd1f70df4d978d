//! Rate limits at the door: a token bucket per key and per tenant. A
//! refused request learns how long to wait (`Retry-After`).

use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Token buckets keyed by key id or tenant.
pub struct RateLimiter {
    buckets: DashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self { buckets: DashMap::new() }
    }

    /// Takes one request from `key`'s bucket of `per_minute` (burst of the
    /// same size). `Err` holds how long until a request would be admitted.
    pub fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        if per_minute == 0 {
            return Err(Duration::from_secs(60));
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let now = Instant::now();
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
        for _ in 0..3 {
            assert!(limiter.check("k", 3).is_ok());
        }
        let wait = limiter.check("k", 3).expect_err("bucket empty");
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check("other", 3).is_ok(), "buckets are per key");
    }
}
