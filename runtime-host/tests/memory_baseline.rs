//! After many memory bombs, the host's resident memory returns to where it
//! was: the pooling allocator gives a sandbox's pages back when it ends.
//! (Its own test binary, so no other test shares the process.)

use sandflow_runtime_host::{Invocation, Limits, Runtime, RuntimeConfig};
use std::path::Path;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).expect("resident field").parse().expect("number");
    pages * 4096
}

#[test]
fn memory_returns_to_baseline_after_bombs() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let runtime = Runtime::new(&RuntimeConfig { max_instances: 8, cache_dir: Some(cache), ..RuntimeConfig::default() })
        .expect("runtime");
    let node =
        runtime.load_node(&std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built")).expect("loads");
    let bomb = Invocation {
        component: "Bomb".into(),
        node_id: "b".into(),
        display_name: "b".into(),
        session_id: "s".into(),
        fields: vec![],
        wanted: vec![],
    };
    let limits = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    // Warm up: first-use costs (code pages, pool bookkeeping) are not growth.
    for _ in 0..3 {
        let _ = runtime.sandbox(limits).run_node(&node, &bomb);
    }
    let baseline = resident_bytes();
    for _ in 0..30 {
        let _ = runtime.sandbox(limits).run_node(&node, &bomb).expect_err("bomb stopped");
    }
    let after = resident_bytes();
    // 30 bombs touched ~1.9 GiB between them; what stays must be a small fraction.
    let grown = after.saturating_sub(baseline);
    assert!(grown < 32 << 20, "resident memory grew by {} MiB", grown >> 20);
}
