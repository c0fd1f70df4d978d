//! The example custom node (`examples/nodes/word-count`), built for
//! `wasm32-wasip2` with the Rust SDK, runs in a real sandbox.

use sandflow_runtime_host::{Field, Invocation, Limits, Message, RunError, Runtime, RuntimeConfig, Value};

fn runtime() -> Runtime {
    Runtime::new(&RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("engine starts")
}

fn word_count(runtime: &Runtime) -> sandflow_runtime_host::NodeComponent {
    let bytes = std::fs::read(sandflow_guest_artifacts::WORD_COUNT_NODE).expect("guest was built");
    runtime.load_node(&bytes).expect("component loads")
}

fn invocation(text: Value, wanted: &[&str]) -> Invocation {
    Invocation {
        component: "WordCount".into(),
        node_id: "WordCount-1".into(),
        display_name: "Word Count".into(),
        session_id: "s1".into(),
        fields: vec![Field { name: "text".into(), value: text }],
        wanted: wanted.iter().map(|w| (*w).to_owned()).collect(),
    }
}

fn message(text: &str) -> Value {
    Value::Message(Message {
        text: text.into(),
        sender: "User".into(),
        sender_name: "User".into(),
        session_id: "s1".into(),
        files: vec![],
        properties: "{}".into(),
    })
}

#[test]
fn describes_itself() {
    let runtime = runtime();
    let node = word_count(&runtime);
    let mut sandbox = runtime.sandbox(Limits::default());
    let described = sandbox.describe(&node).expect("describe runs");
    assert_eq!(described.len(), 1);
    let d = &described[0];
    assert_eq!(d.type_name, "WordCount");
    assert_eq!(d.inputs[0].name, "text");
    let outputs: Vec<_> = d.outputs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(outputs, ["data", "message"]);
}

#[test]
fn counts_words_of_a_message_and_logs_through_the_host() {
    let runtime = runtime();
    let node = word_count(&runtime);
    let mut sandbox = runtime.sandbox(Limits::default());
    let outputs = sandbox
        .run_node(&node, &invocation(message("hello big  world"), &["data", "message"]))
        .expect("no trap")
        .expect("node succeeds");
    assert_eq!(outputs.len(), 2);
    let Value::Data(data) = &outputs[0].value else { panic!("data output is Data: {:?}", outputs[0].value) };
    let data: serde_json::Value = serde_json::from_str(&data.data).expect("JSON");
    assert_eq!(data["words"], 3);
    assert_eq!(data["characters"], 16);
    assert!(matches!(&outputs[1].value, Value::Text(t) if t == "3 words"));
    assert_eq!(sandbox.logs().len(), 1);
    assert_eq!(sandbox.logs()[0].message, "WordCount-1: 3 words");
    assert!(sandbox.fuel_consumed() > 0);
}

#[test]
fn a_guest_error_is_the_node_s_own_report() {
    let runtime = runtime();
    let node = word_count(&runtime);
    let mut sandbox = runtime.sandbox(Limits::default());
    let mut inv = invocation(message("x"), &["message"]);
    inv.fields.clear();
    let err = sandbox.run_node(&node, &inv).expect("no trap").expect_err("missing field");
    assert!(format!("{err:?}").contains("field `text` is missing"), "{err:?}");
}

#[test]
fn running_out_of_fuel_ends_only_that_run() {
    let runtime = runtime();
    let node = word_count(&runtime);
    let mut starved = runtime.sandbox(Limits { fuel: 1_000, ..Limits::default() });
    let err = starved.run_node(&node, &invocation(message("a b c"), &["message"])).expect_err("fuel runs out");
    assert!(matches!(err, RunError::OutOfFuel(1_000)), "{err:?}");
    // The next run on the same runtime is unaffected.
    let mut sandbox = runtime.sandbox(Limits::default());
    let ok = sandbox.run_node(&node, &invocation(message("a b c"), &["message"])).expect("no trap");
    assert!(ok.is_ok());
}
