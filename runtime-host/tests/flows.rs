//! Compiled shared flows run end to end in sandboxes: the compiler's
//! component, the host's engine and the standard node library together.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::{FlowComponent, InputType, Limits, RunError, RunRequest, Runtime, RuntimeConfig, Value};
use std::path::Path;

fn runtime() -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn load(runtime: &Runtime, shared_path: &str) -> FlowComponent {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(shared_path);
    let source = std::fs::read(&path).expect("shared flow");
    let (artifact, _) = compile(&source, &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn request(input: &str) -> RunRequest {
    RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() }
}

fn answer(outcome: &sandflow_runtime_host::RunOutcome) -> String {
    match &outcome.outputs[0].value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

#[test]
fn echo_answers_with_the_input() {
    let runtime = runtime();
    let flow = load(&runtime, "echo.json");
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &request("hello world")).expect("runs");
    assert_eq!(outcome.outputs.len(), 1);
    assert_eq!(answer(&outcome), "hello world");
    let Value::Message(m) = &outcome.outputs[0].value else { unreachable!() };
    assert_eq!((m.sender.as_str(), m.sender_name.as_str(), m.session_id.as_str()), ("Machine", "AI", "s1"));
    assert_eq!(outcome.outputs[0].source.as_ref().map(|s| s.0.as_str()), Some("ChatInput-b6UCc"));
    assert_eq!(outcome.inputs.len(), 1, "the user's message is reported too");
    assert!(outcome.fuel > 0);
    assert_eq!(outcome.events.len(), 2);
}

#[test]
fn prompt_echo_renders_the_template() {
    let runtime = runtime();
    let flow = load(&runtime, "prompt-echo.json");
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &request("hi there")).expect("runs");
    assert_eq!(answer(&outcome), "You said: hi there");
}

#[test]
fn tweaks_override_parameters_by_id_or_display_name() {
    let runtime = runtime();
    let flow = load(&runtime, "prompt-echo.json");
    let mut req = request("x");
    req.tweaks.insert("Prompt Template".into(), serde_json::json!({"template": "<{user_input}>"}));
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &req).expect("runs");
    assert_eq!(answer(&outcome), "<x>");

    // A field an edge feeds keeps the edge's value, as in Langflow: the
    // node upstream (here the prompt) cannot be skipped by a tweak.
    let mut req = request("x");
    req.tweaks.insert("ChatOutput-yK0AU".into(), serde_json::json!({"input_value": "not what the prompt said"}));
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &req).expect("runs");
    assert_eq!(answer(&outcome), "You said: x");

    let mut bad = request("x");
    bad.tweaks.insert("NoSuchNode".into(), serde_json::json!({"template": "y"}));
    let err = runtime.sandbox(Limits::default()).run_flow(&flow, &bad).expect_err("unknown node");
    assert!(matches!(&err, RunError::Request(m) if m.contains("NoSuchNode")), "{err}");
}

#[test]
fn text_input_type_leaves_chat_input_alone() {
    let runtime = runtime();
    let flow = load(&runtime, "starter/hello-world.json");
    let mut req = request("from the API");
    req.input_type = InputType::Text;
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &req).expect("runs");
    assert_eq!(answer(&outcome), "from the API");
}

#[test]
fn a_node_error_names_the_node() {
    let runtime = runtime();
    let flow = load(&runtime, "prompt-echo.json");
    let mut req = request("x");
    req.tweaks.insert("Prompt-t2oaK".into(), serde_json::json!({"template": "broken }"}));
    let err = runtime.sandbox(Limits::default()).run_flow(&flow, &req).expect_err("bad template");
    match err {
        RunError::Node { node_id, message, .. } => {
            assert_eq!(node_id, "Prompt-t2oaK");
            assert!(message.contains("Single '}'"), "{message}");
        }
        other => panic!("expected a node error, got {other}"),
    }
}

#[test]
fn a_starved_run_ends_alone() {
    let runtime = runtime();
    let flow = load(&runtime, "echo.json");
    let err = runtime.sandbox(Limits { fuel: 500, ..Limits::default() }).run_flow(&flow, &request("x"));
    assert!(matches!(err, Err(RunError::OutOfFuel(500))), "{err:?}");
    let ok = runtime.sandbox(Limits::default()).run_flow(&flow, &request("still fine")).expect("runs");
    assert_eq!(answer(&ok), "still fine");
}

#[test]
fn every_component_the_compiler_accepts_has_a_node_to_run_it() {
    use sandflow_flow_compiler::catalog::{COMPONENTS, Role};
    let runtime = runtime();
    // Loops are the host's own (`flow::loops`); everything else runs in the library.
    let missing: Vec<&str> =
        COMPONENTS.iter().filter(|c| c.role != Role::Loop && !runtime.has_std_node(c.node)).map(|c| c.node).collect();
    assert!(missing.is_empty(), "compiled flows would fail to link: {missing:?}");
}
