//! In-process run cost: a fresh Store + instantiate + run of a compiled
//! flow (the 50 µs target for `echo.json`), and the cost of fuel and
//! epoch metering on a CPU-bound guest.
//!
//! `cargo bench -p sandflow-runtime-host --bench run`

use criterion::{Criterion, criterion_group, criterion_main};
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::{Field, Invocation, Limits, RunRequest, Runtime, RuntimeConfig, Value};
use std::path::Path;
use std::time::Duration;

fn runtime(metering: bool) -> Runtime {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cache");
    Runtime::new(&RuntimeConfig { cache_dir: Some(cache), metering, ..RuntimeConfig::default() }).expect("runtime")
}

fn flows(c: &mut Criterion) {
    let runtime = runtime(true);
    let mut group = c.benchmark_group("flow");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for name in ["echo", "prompt-echo"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/flows/{name}.json"));
        let (artifact, _) = compile(&std::fs::read(path).expect("flow"), &CompileOptions::default()).expect("compiles");
        let flow = runtime.load_flow(&artifact.component).expect("loads");
        let request =
            RunRequest { input_value: Some("hello world".into()), session_id: "s".into(), ..RunRequest::default() };
        group.bench_function(format!("{name}/fresh-store-instantiate-run"), |b| {
            b.iter(|| runtime.sandbox(Limits::default()).run_flow(&flow, &request).expect("runs"))
        });
    }
    group.finish();
}

fn metering(c: &mut Criterion) {
    let mut group = c.benchmark_group("metering");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let crunch = Invocation {
        component: "Crunch".into(),
        node_id: "c".into(),
        display_name: "c".into(),
        session_id: "s".into(),
        fields: vec![Field { name: "rounds".into(), value: Value::Text("5000000".into()) }],
        wanted: vec!["out".into()],
    };
    let bytes = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    for (label, metered) in [("fuel+epoch", true), ("off", false)] {
        let runtime = runtime(metered);
        let node = runtime.load_node(&bytes).expect("loads");
        group.bench_function(format!("cpu-bound-5M-rounds/{label}"), |b| {
            b.iter(|| runtime.sandbox(Limits::default()).run_node(&node, &crunch).expect("no trap").expect("ok"))
        });
    }
    group.finish();
}

criterion_group!(benches, flows, metering);
criterion_main!(benches);
