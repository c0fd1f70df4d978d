//! The standard nodes against outputs recorded from Langflow 1.13's own
//! component code (`scripts/langflow/record.py` writes `tests/langflow/`).
//! Unit tests, not an integration test: this crate is also a `cdylib`
//! whose wasm exports do not link natively.

use crate::{calculator, prompt};
use serde_json::Value;
use std::path::Path;

fn recording(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/langflow").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a recording is a JSON array")
}

#[test]
fn calculator_matches_langflow() {
    let cases = recording("calculator");
    assert!(cases.len() >= 10);
    for case in cases {
        let expression = case["expression"].as_str().expect("expression");
        let ours = match calculator::evaluate(expression) {
            Ok(v) => serde_json::json!({ "result": calculator::format_result(v) }),
            Err(e) => serde_json::json!({ "error": e, "input": expression }),
        };
        assert_eq!(ours, case["data"], "expression {expression:?}");
    }
}

#[test]
fn prompt_rendering_matches_langflow() {
    for case in recording("prompt") {
        let template = case["template"].as_str().expect("template");
        let vars = |name: &str| case["vars"][name].as_str().map(str::to_owned);
        let ours = if case["mustache"] == true {
            prompt::render_mustache(template, vars)
        } else {
            prompt::render_f_string(template, vars)
        };
        match (&ours, case.get("text"), case.get("error")) {
            (Ok(text), Some(expected), _) => assert_eq!(text, expected, "template {template:?}"),
            (Err(error), None, Some(expected)) => {
                let message = format!("{error:?}");
                let expected = expected.as_str().expect("error text");
                assert!(message.contains(expected), "template {template:?}: {message} should say {expected}");
            }
            _ => panic!("template {template:?}: ours {ours:?}, Langflow {case}"),
        }
    }
}

fn recorded_object(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/langflow").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a recording is JSON")
}

#[test]
fn message_history_text_matches_langflow() {
    let recording = recorded_object("message-history");
    for case in recording["text"].as_array().expect("text cases") {
        let messages: Vec<sandflow_sdk::Message> = case["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                let field = |k: &str| m[k].as_str().expect("a string field");
                sandflow_sdk::message(field("text").into(), field("sender"), field("sender_name"), field("session_id"))
            })
            .collect();
        let template = case["template"].as_str().expect("template");
        let ours = crate::message_history::messages_text(template, &messages).expect("renders");
        assert_eq!(ours, case["text"], "template {template:?}");
    }
}

#[test]
fn dataframe_text_matches_langflow() {
    let recording = recorded_object("message-history");
    for case in recording["markdown"].as_array().expect("markdown cases") {
        let rows: Vec<serde_json::Map<String, Value>> =
            case["rows"].as_array().expect("rows").iter().map(|r| r.as_object().expect("row").clone()).collect();
        assert_eq!(crate::table_text::dataframe_markdown(&rows), case["text"], "rows {}", case["rows"]);
    }
}
