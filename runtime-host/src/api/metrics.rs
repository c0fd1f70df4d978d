//! Prometheus metrics of the data plane, in the text exposition format.

use dashmap::DashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the run-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0, 10.0];

/// Counters and histograms, updated lock-free on the hot path.
#[derive(Default)]
pub struct Metrics {
    requests: DashMap<(String, u16), AtomicU64>,
    runs: DashMap<&'static str, AtomicU64>,
    fuel: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_micros: AtomicU64,
}

impl Metrics {
    /// Counts one HTTP response.
    pub fn request(&self, route: &str, status: u16) {
        if let Some(counter) = self.requests.get(&(route.to_owned(), status)) {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.requests.entry((route.to_owned(), status)).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one run.
    pub fn run(&self, outcome: &'static str, elapsed: Duration, fuel: u64) {
        self.runs.entry(outcome).or_default().fetch_add(1, Ordering::Relaxed);
        self.fuel.fetch_add(fuel, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Renders every metric; `agents` is the number provisioned.
    pub fn render(&self, agents: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP sandflow_requests_total HTTP responses by route template and status.\n");
        out.push_str("# TYPE sandflow_requests_total counter\n");
        for entry in &self.requests {
            let ((route, status), n) = (entry.key(), entry.value().load(Ordering::Relaxed));
            let _ = writeln!(out, "sandflow_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP sandflow_runs_total Flow runs by outcome.\n# TYPE sandflow_runs_total counter\n");
        for entry in &self.runs {
            let _ = writeln!(
                out,
                "sandflow_runs_total{{outcome=\"{}\"}} {}",
                entry.key(),
                entry.value().load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP sandflow_fuel_consumed_total Fuel used by all runs.\n# TYPE sandflow_fuel_consumed_total counter\n",
        );
        let _ = writeln!(out, "sandflow_fuel_consumed_total {}", self.fuel.load(Ordering::Relaxed));
        out.push_str(
            "# HELP sandflow_run_duration_seconds Wall time of runs.\n# TYPE sandflow_run_duration_seconds histogram\n",
        );
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "sandflow_run_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "sandflow_run_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "sandflow_run_duration_seconds_sum {sum}");
        let _ = writeln!(out, "sandflow_run_duration_seconds_count {count}");
        out.push_str("# HELP sandflow_agents Agents provisioned on this host.\n# TYPE sandflow_agents gauge\n");
        let _ = writeln!(out, "sandflow_agents {agents}");
        out
    }
}
