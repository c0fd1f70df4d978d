//! Compile time per shared flow (parse → lower → schedule → codegen →
//! component encode + validate), and the artifact size of each, printed once.
//!
//! `cargo bench -p sandflow-flow-compiler --bench compile`

use criterion::{Criterion, criterion_group, criterion_main};
use sandflow_flow_compiler::{CompileOptions, compile};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn flows() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows");
    let mut paths = vec![root.join("echo.json"), root.join("prompt-echo.json")];
    let mut starter: Vec<PathBuf> = std::fs::read_dir(root.join("starter"))
        .expect("shared/flows/starter exists")
        .map(|e| e.expect("entry").path())
        .collect();
    starter.sort();
    paths.extend(starter);
    paths
}

fn compile_each_flow(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
    let options = CompileOptions::default();
    eprintln!("{:<40} {:>10} {:>12}", "flow", "json bytes", "wasm bytes");
    for path in flows() {
        let source = std::fs::read(&path).expect("flow is readable");
        let name = path.file_stem().expect("name").to_string_lossy().into_owned();
        let (artifact, _) = compile(&source, &options).expect("shared flow compiles");
        eprintln!("{name:<40} {:>10} {:>12}", source.len(), artifact.component.len());
        group.bench_function(&name, |b| b.iter(|| compile(std::hint::black_box(&source), &options)));
    }
    group.finish();
}

criterion_group!(benches, compile_each_flow);
criterion_main!(benches);
