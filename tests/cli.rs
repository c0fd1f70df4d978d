//! The `sandflow` binary: validate, compile and inspect, as a seller would run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sandflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandflow")).args(args).output().expect("sandflow runs")
}

fn shared(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/flows").join(path).display().to_string()
}

#[test]
fn validate_passes_a_good_flow() {
    let out = sandflow(&["validate", &shared("prompt-echo.json")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 error(s)"));
}

#[test]
fn validate_passes_a_pre_1_0_chain_with_memory() {
    let out = sandflow(&["validate", &shared("legacy/basicchatwithpromptandhistory.json")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn validate_reports_every_error_as_json_and_exits_1() {
    let out = sandflow(&["validate", "--format", "json", &shared("legacy/openapi.json")]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["valid"], false);
    let diags = report["diagnostics"].as_array().expect("diagnostics");
    let unknown: Vec<&str> = diags
        .iter()
        .filter(|d| d["code"] == "unknown-component")
        .map(|d| d["message"].as_str().expect("message"))
        .collect();
    for ty in ["JsonToolkit", "OpenAPIToolkit", "JsonAgent", "TextRequestsWrapper", "JsonSpec"] {
        assert!(unknown.iter().any(|m| m.contains(ty)), "{ty} not named: {unknown:?}");
    }
    for d in diags {
        assert!(d["pointer"].as_str().is_some_and(|p| p.starts_with('/')), "{d}");
        assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{d}");
        if d["code"] == "unknown-component" {
            assert!(d["node_id"].is_string() && d["display_name"].is_string(), "{d}");
        }
    }
}

#[test]
fn validate_human_output_has_snippets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.json");
    let text = "{\n  \"data\": {\n    \"nodes\": [\n      {\"id\": \"X-1\", \"data\": {\"type\": \"Nope\", \"node\": {\"template\": {}}}}\n    ],\n    \"edges\": []\n  }\n}\n";
    std::fs::write(&broken, text).expect("write");
    let out = sandflow(&["validate", broken.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("error[unknown-component]"), "{text}");
    assert!(text.contains("broken.json:4:"), "{text}");
    assert!(text.contains("\"type\": \"Nope\""), "{text}");
}

#[test]
fn validate_refuses_what_is_not_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.json");
    std::fs::write(&path, [0xff, 0xfe, b'{']).expect("write");
    let out = sandflow(&["validate", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-json"));
    // A missing file is a usage error, not a flow error.
    let out = sandflow(&["validate", "/nonexistent/flow.json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn compile_then_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir: PathBuf = dir.path().join("artifact");
    let out = sandflow(&["compile", &shared("prompt-echo.json"), "-o", out_dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest")).expect("JSON");
    let wasm = std::fs::read(out_dir.join("flow.wasm")).expect("component");
    assert_eq!(manifest["size"], wasm.len());
    assert_eq!(manifest["nodes"], serde_json::json!(["chat-input", "chat-output", "prompt"]));

    let out = sandflow(&["inspect", "--format", "json", out_dir.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(inspected["manifest"], manifest);
    assert_eq!(inspected["plan"]["nodes"][1]["params"][0]["value"], "You said: {user_input}");

    let out = sandflow(&["inspect", out_dir.join("manifest.json").to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "a non-component is refused");
}

#[test]
fn compile_refuses_a_flow_with_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("artifact");
    let out = sandflow(&["compile", &shared("legacy/openapi.json"), "-o", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_dir.exists());
}

#[test]
fn run_counts_the_fuel_and_time_of_a_failed_run() {
    // No model provider is configured, so the chain's call fails after
    // the flow has started running.
    let out = sandflow(&["run", &shared("legacy/basicchatwithpromptandhistory.json"), "--input", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let usage = stderr.lines().find_map(|l| l.strip_prefix("usage: ")).expect("a usage line");
    let usage: serde_json::Value = serde_json::from_str(usage).expect("usage is JSON");
    assert!(usage["outcome"].as_str().is_some_and(|o| o.starts_with("failed: ")), "{usage}");
    assert!(usage["fuel"].as_u64().is_some_and(|f| f > 0), "{usage}");
    assert!(usage["wall_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{usage}");
}
