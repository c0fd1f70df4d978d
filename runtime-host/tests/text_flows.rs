//! Flow-control and text scenarios in `tests/flows/<name>/`: Langflow 1.13
//! exports written by `scripts/langflow/test_flows.py`, with what Langflow
//! itself answered to each `<case>.input` in `<case>.expected` (the
//! answering Chat Output's id, a newline, its text).
//!
//! - `if-else`: only the taken branch's Chat Output runs; the other is
//!   skipped, as Langflow stops it.
//! - `loop-parser`: the Research Translation Loop's structure (Loop + Parser
//!   + Chat Output, lines from Split Text instead of ArXiv).
//! - `structured-output` and `batch-run` against the test model server.
//! - Hidden fields: a field the export hides keeps the node's default, and
//!   tweaks to it are ignored, as in Langflow.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::{
    CapabilityConfig, FlowComponent, Limits, LlmConfig, RunOutcome, RunRequest, Runtime, RuntimeConfig, Value,
};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flows").join(name)
}

fn runtime(providers: &[String]) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig {
        llm: LlmConfig { providers: providers.iter().map(|p| p.parse().expect("provider spec")).collect() },
        ..CapabilityConfig::default()
    };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn load(runtime: &Runtime, source: &[u8]) -> FlowComponent {
    let (artifact, _) = compile(source, &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn run(runtime: &Runtime, flow: &FlowComponent, request: &RunRequest) -> RunOutcome {
    runtime.sandbox(Limits::default()).run_flow(flow, request).expect("runs")
}

fn request(input: &str) -> RunRequest {
    RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() }
}

fn text(value: &Value) -> String {
    match value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

/// Runs every recorded case of a scenario and compares with Langflow's answer.
fn check_recorded(name: &str) -> usize {
    let dir = scenario(name);
    let runtime = runtime(&[]);
    let flow = load(&runtime, &std::fs::read(dir.join("flow.json")).expect("flow"));
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("scenario directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "input") {
            continue;
        }
        let input = std::fs::read_to_string(&path).expect("input");
        let expected = std::fs::read_to_string(path.with_extension("expected")).expect("expected");
        let (node, answer) = expected.split_once('\n').expect("node id, then the text");
        let outcome = run(&runtime, &flow, &request(&input));
        assert_eq!(outcome.outputs.len(), 1, "{}: one Chat Output answers: {:?}", path.display(), outcome.outputs);
        assert_eq!(outcome.outputs[0].node_id, node, "{}", path.display());
        assert_eq!(text(&outcome.outputs[0].value), answer, "{}", path.display());
        cases += 1;
    }
    cases
}

#[test]
fn if_else_runs_only_the_taken_branch() {
    assert_eq!(check_recorded("if-else"), 3);
    // The untaken branch's Chat Output is skipped, not run with nothing.
    let runtime = runtime(&[]);
    let flow = load(&runtime, &std::fs::read(scenario("if-else").join("flow.json")).expect("flow"));
    let outcome = run(&runtime, &flow, &request("YES!"));
    let ran: Vec<&str> = outcome.events.iter().filter(|e| e.completed).map(|e| e.node_id.as_str()).collect();
    assert!(ran.contains(&"ChatOutput-ie003") && !ran.contains(&"ChatOutput-ie004"), "{ran:?}");
}

#[test]
fn if_else_tweaks_switch_operators() {
    let runtime = runtime(&[]);
    let flow = load(&runtime, &std::fs::read(scenario("if-else").join("flow.json")).expect("flow"));
    let cases = [
        (serde_json::json!({"operator": "regex", "match_text": "[0-9]+ apples"}), "12 apples", "ChatOutput-ie003"),
        (serde_json::json!({"operator": "regex", "match_text": "apples"}), "12 apples", "ChatOutput-ie004"),
        (serde_json::json!({"operator": "greater than", "match_text": "9.5"}), "10", "ChatOutput-ie003"),
        (
            serde_json::json!({"operator": "equals", "match_text": "Yes", "case_sensitive": true}),
            "yes",
            "ChatOutput-ie004",
        ),
        (serde_json::json!({"true_case_message": "routed"}), "yes", "ChatOutput-ie003"),
    ];
    for (tweak, input, node) in cases {
        let mut req = request(input);
        req.tweaks.insert("ConditionalRouter-ie002".into(), tweak.clone());
        let outcome = run(&runtime, &flow, &req);
        assert_eq!(outcome.outputs.len(), 1, "{tweak}");
        assert_eq!(outcome.outputs[0].node_id, node, "{tweak} on {input:?}");
        if tweak.get("true_case_message").is_some() {
            assert_eq!(text(&outcome.outputs[0].value), "routed");
        }
    }
}

#[test]
fn loop_with_parser_collects_every_item_like_langflow() {
    assert_eq!(check_recorded("loop-parser"), 2);
}

/// Each pass hands back far more than its item (a pattern repeating it a
/// thousand times): what the loop collects in host memory is capped, and
/// the run ends on that limit instead of growing the host.
#[test]
fn a_loop_that_collects_too_much_ends_on_a_limit() {
    let runtime = runtime(&[]);
    let flow = load(&runtime, &std::fs::read(scenario("loop-parser").join("flow.json")).expect("flow"));
    let line = "x".repeat(100);
    let mut req = request(&vec![line.as_str(); 800].join("\n"));
    req.tweaks.insert("ParserComponent-lp004".into(), serde_json::json!({ "pattern": "{text}".repeat(1_000) }));
    let error = runtime.sandbox(Limits::default()).run_flow(&flow, &req).expect_err("over the cap");
    assert!(
        matches!(&error, sandflow_runtime_host::RunError::Limit(m) if m.contains("collected over 64 MiB")),
        "{error:?}"
    );
}

/// A model server on its own tokio runtime (sandboxes run on plain threads).
struct Model {
    server: ModelServer,
    _io: tokio::runtime::Runtime,
}

fn model() -> Model {
    let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
    Model { server, _io: io }
}

fn chat_requests(model: &Model) -> Vec<Json> {
    model.server.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

#[test]
fn structured_output_asks_for_the_schema_and_unwraps_the_objects() {
    let model = model();
    let runtime = runtime(&[format!("OpenAI=openai,{}/v1,gpt-test", model.server.url())]);
    let flow = load(&runtime, &std::fs::read(scenario("structured-output").join("flow.json")).expect("flow"));
    let outcome = run(&runtime, &flow, &request("Ada is 36"));
    // The model server fills strings with the input, integers with 1 and lists with one item.
    assert_eq!(text(&outcome.outputs[0].value), "Ada is 36 (1) ['Ada is 36']");
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 1);
    let schema = &sent[0]["response_format"]["json_schema"]["schema"];
    let person = &schema["properties"]["objects"]["items"];
    assert_eq!(person["properties"]["age"]["type"], "integer");
    assert_eq!(person["properties"]["tags"]["type"], "array");
    assert_eq!(sent[0]["messages"][0]["role"], "system");
    assert!(sent[0]["messages"][0]["content"].as_str().is_some_and(|s| s.starts_with("You are an AI that extracts")));
    assert_eq!(sent[0]["messages"][1]["content"], "Ada is 36");
}

#[test]
fn batch_run_calls_the_model_once_per_row() {
    let model = model();
    let runtime = runtime(&[format!("OpenAI=openai,{}/v1,gpt-test", model.server.url())]);
    let flow = load(&runtime, &std::fs::read(scenario("batch-run").join("flow.json")).expect("flow"));
    let outcome = run(&runtime, &flow, &request("one\ntwo\nthree"));
    assert_eq!(text(&outcome.outputs[0].value), "0: You said: one\n1: You said: two\n2: You said: three");
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1]["messages"][0], serde_json::json!({"role": "system", "content": "Answer briefly."}));
    assert_eq!(sent[1]["messages"][1]["content"], "two");
}

#[test]
fn hidden_fields_keep_the_nodes_defaults_and_ignore_tweaks() {
    // The If-Else flow with its operator hidden and set to something else:
    // Langflow builds the component with its default (`equals`).
    let mut flow: Json =
        serde_json::from_slice(&std::fs::read(scenario("if-else").join("flow.json")).expect("flow")).expect("JSON");
    let router = flow["data"]["nodes"]
        .as_array_mut()
        .and_then(|nodes| nodes.iter_mut().find(|n| n["id"] == "ConditionalRouter-ie002"))
        .expect("the router");
    let template = &mut router["data"]["node"]["template"];
    template["operator"]["show"] = Json::Bool(false);
    template["operator"]["value"] = Json::String("contains".into());
    let runtime = runtime(&[]);
    let flow = load(&runtime, flow.to_string().as_bytes());
    let node = flow.plan().nodes.iter().find(|n| n.id == "ConditionalRouter-ie002").expect("planned");
    assert!(node.hidden.iter().any(|h| h == "operator"));
    assert!(!node.params.iter().any(|p| p.name == "operator"), "a hidden field is no parameter");
    // `contains` would take "say yes" to the true branch; `equals` does not.
    let outcome = run(&runtime, &flow, &request("say yes"));
    assert_eq!(outcome.outputs[0].node_id, "ChatOutput-ie004");
    let mut tweaked = request("say yes");
    tweaked.tweaks.insert("ConditionalRouter-ie002".into(), serde_json::json!({"operator": "contains"}));
    let outcome = run(&runtime, &flow, &tweaked);
    assert_eq!(outcome.outputs[0].node_id, "ChatOutput-ie004", "a tweak to a hidden field changes nothing");
    let outcome = run(&runtime, &flow, &request("yes"));
    assert_eq!(outcome.outputs[0].node_id, "ChatOutput-ie003");
}
