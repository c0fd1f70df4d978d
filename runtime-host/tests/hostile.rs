//! Hostile guests (`tests/guests/hostile`, built for wasm32-wasip2 in the
//! test build): each attack ends only its own run with a clear error, and
//! the host keeps serving the next run.

use sandflow_runtime_host::{Invocation, Limits, NodeComponent, RunError, Runtime, RuntimeConfig, Value};
use std::path::Path;
use std::time::Duration;

fn setup() -> (Runtime, NodeComponent) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let runtime =
        Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), ..RuntimeConfig::default() })
            .expect("runtime");
    let bytes = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    let node = runtime.load_node(&bytes).expect("loads");
    (runtime, node)
}

fn attack(component: &str) -> Invocation {
    Invocation {
        component: component.into(),
        node_id: format!("{component}-1"),
        display_name: component.into(),
        session_id: "s".into(),
        fields: vec![],
        wanted: vec!["out".into()],
    }
}

fn limits() -> Limits {
    Limits { fuel: 2_000_000_000, memory_bytes: 32 << 20, deadline: Duration::from_secs(5), ..Limits::default() }
}

/// After an attack, an honest run in a new sandbox still works.
fn still_serving(runtime: &Runtime) {
    let bytes = std::fs::read(sandflow_guest_artifacts::WORD_COUNT_NODE).expect("built");
    let node = runtime.load_node(&bytes).expect("loads");
    let mut sandbox = runtime.sandbox(Limits::default());
    let inv = Invocation {
        component: "WordCount".into(),
        node_id: "w".into(),
        display_name: "w".into(),
        session_id: "s".into(),
        fields: vec![sandflow_runtime_host::Field { name: "text".into(), value: Value::Text("a b".into()) }],
        wanted: vec!["message".into()],
    };
    assert!(sandbox.run_node(&node, &inv).expect("no trap").is_ok());
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let (runtime, node) = setup();
    let err = runtime.sandbox(limits()).run_node(&node, &attack("Spin")).expect_err("never ends");
    assert!(matches!(err, RunError::OutOfFuel(2_000_000_000)), "{err}");
    still_serving(&runtime);
}

#[test]
fn an_infinite_loop_with_fuel_to_spare_hits_the_deadline() {
    let (runtime, node) = setup();
    let generous = Limits { fuel: u64::MAX / 2, deadline: Duration::from_millis(200), ..limits() };
    let started = std::time::Instant::now();
    let err = runtime.sandbox(generous).run_node(&node, &attack("Spin")).expect_err("never ends");
    assert!(matches!(err, RunError::Deadline(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped near its deadline: {:?}", started.elapsed());
    still_serving(&runtime);
}

/// `std::thread::sleep` is a WASI timer and a blocking host call, out of
/// the epoch deadline's reach: the sandbox's timers end at the run's
/// deadline, so a guest that sleeps for ever is stopped there.
#[test]
fn a_guest_that_sleeps_for_ever_is_stopped_at_its_deadline() {
    let (runtime, node) = setup();
    let short = Limits { deadline: Duration::from_millis(300), ..limits() };
    let started = std::time::Instant::now();
    let err = runtime.sandbox(short).run_node(&node, &attack("Sleep")).expect_err("never wakes by itself");
    assert!(matches!(err, RunError::Deadline(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "stopped near its deadline: {:?}", started.elapsed());
    still_serving(&runtime);
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let (runtime, node) = setup();
    let err = runtime.sandbox(limits()).run_node(&node, &attack("Bomb")).expect_err("allocates forever");
    // Growth is refused by the limiter; the guest's allocator then aborts.
    assert!(matches!(&err, RunError::Limit(m) if m.contains("memory")), "{err}");
    still_serving(&runtime);
}

#[test]
fn unbounded_recursion_traps() {
    let (runtime, node) = setup();
    let err = runtime.sandbox(limits()).run_node(&node, &attack("Recurse")).expect_err("overflows");
    // Either the engine's call stack runs out, or (Rust's shadow stack lives in
    // linear memory) the stack pointer leaves memory: both are traps.
    assert!(matches!(&err, RunError::Trap(m) if m.contains("stack") || m.contains("out of bounds")), "{err}");
    still_serving(&runtime);
}

#[test]
fn a_flood_of_host_calls_is_bounded() {
    let (runtime, node) = setup();
    let mut sandbox = runtime.sandbox(limits());
    let result = sandbox.run_node(&node, &attack("Flood"));
    // Either the fuel runs out first or the log stops keeping lines: never unbounded.
    match result {
        Ok(Ok(_)) => {
            assert_eq!(sandbox.logs().len(), 1_000);
            assert_eq!(sandbox.logs_dropped(), 999_000);
        }
        Err(RunError::OutOfFuel(_)) => assert!(sandbox.logs().len() <= 1_000),
        other => panic!("unexpected: {other:?}"),
    }
    still_serving(&runtime);
}

#[test]
fn a_ten_megabyte_output_is_delivered() {
    let (runtime, node) = setup();
    let mut sandbox = runtime.sandbox(limits());
    let outputs = sandbox.run_node(&node, &attack("Huge")).expect("no trap").expect("ok");
    assert!(matches!(&outputs[0].value, Value::Text(t) if t.len() == 10 << 20));
}

#[test]
fn a_panic_is_a_trap_of_that_run_only() {
    let (runtime, node) = setup();
    let err = runtime.sandbox(limits()).run_node(&node, &attack("Panic")).expect_err("panics");
    assert!(matches!(err, RunError::Trap(_)), "{err}");
    still_serving(&runtime);
}

/// Guests that loop until their deadline, more of them than there are run
/// lanes, do not hold the lanes: each gives its lane up after its first
/// time slice, so an honest run queued behind them is answered while they
/// are all still looping.
#[test]
fn looping_guests_do_not_hold_the_run_lanes() {
    use sandflow_runtime_host::lanes::RunLanes;
    let (runtime, node) = setup();
    let lanes = RunLanes::new(1);
    let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let looping = Limits { fuel: u64::MAX / 2, deadline: Duration::from_secs(5), ..limits() };
    let spins: Vec<_> = (0..3)
        .map(|_| {
            let (runtime, node) = (runtime.clone(), node.clone());
            io.spawn(lanes.run(move || runtime.sandbox(looping).run_node(&node, &attack("Spin")).map(|_| ())))
        })
        .collect();
    let honest = runtime.clone();
    io.block_on(lanes.run(move || still_serving(&honest))).expect("the honest run is answered");
    assert!(spins.iter().all(|spin| !spin.is_finished()), "answered while every loop still runs");
    for spin in spins {
        let ended = io.block_on(spin).expect("task").expect("no panic");
        assert!(matches!(ended, Err(RunError::Deadline(_))), "{ended:?}");
    }
}
