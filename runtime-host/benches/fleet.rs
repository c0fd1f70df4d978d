//! Many flows on one host: provisions FLEET_N (default 10,000) distinct flow
//! versions, timing each cold start (compile the export, compile the
//! component, first run), then the host's resident memory with all of them
//! loaded, then a restart with the disk cache to the first answer.
//!
//! `cargo bench -p sandflow-runtime-host --bench fleet`

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::{Limits, RunRequest, Runtime, RuntimeConfig};
use std::path::Path;
use std::time::{Duration, Instant};

fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    // Only under `cargo bench` (which passes --bench): test runners that list
    // or run bench targets get nothing, not a ten-thousand-flow run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("FLEET_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("sandflow-fleet-{}", std::process::id()));
    let config = RuntimeConfig { cache_dir: Some(dir.join("cache")), ..RuntimeConfig::default() };
    let export = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows/prompt-echo.json"))
        .expect("shared flow");
    let mut flow: serde_json::Value = serde_json::from_slice(&export).expect("JSON");
    let request = RunRequest { input_value: Some("hi".into()), session_id: "s".into(), ..RunRequest::default() };

    let started = Instant::now();
    let runtime = Runtime::new(&config).expect("runtime");
    println!("runtime start (standard library compiled): {:?}", started.elapsed());
    let baseline = resident_mib();

    let mut flows = Vec::with_capacity(n);
    let mut cold = Vec::with_capacity(n);
    let mut last = None;
    for i in 0..n {
        // A distinct flow version each time: its own template, its own digest.
        flow["data"]["nodes"][1]["data"]["node"]["template"]["template"]["value"] =
            serde_json::Value::String(format!("Flow {i} says: {{user_input}}"));
        let bytes = serde_json::to_vec(&flow).expect("JSON");
        let t = Instant::now();
        let (artifact, _) = compile(&bytes, &CompileOptions::default()).expect("compiles");
        let loaded = runtime.load_flow(&artifact.component).expect("loads");
        runtime.sandbox(Limits::default()).run_flow(&loaded, &request).expect("first run");
        cold.push(t.elapsed());
        if i == n - 1 {
            last = Some(artifact.component.clone());
        }
        flows.push(loaded);
    }
    cold.sort();
    let loaded_rss = resident_mib();
    println!("flow versions provisioned: {n}");
    println!(
        "cold start (compile export + compile component + first run): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
        cold[cold.len() - 1]
    );
    println!(
        "resident memory: {loaded_rss:.0} MiB with {n} flows ({:.0} MiB before them, {:.1} KiB per flow)",
        baseline,
        (loaded_rss - baseline) * 1024.0 / n as f64
    );

    // Restart: a new process's worth of state, the same disk cache.
    drop(flows);
    drop(runtime);
    let component = last.expect("at least one flow");
    let t = Instant::now();
    let runtime = Runtime::new(&config).expect("runtime");
    let loaded = runtime.load_flow(&component).expect("loads from cache");
    runtime.sandbox(Limits::default()).run_flow(&loaded, &request).expect("runs");
    println!("restart with the disk cache to first answer: {:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
