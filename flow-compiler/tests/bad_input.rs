//! Each kind of bad flow gets its own clear diagnostic. The cases start from
//! the real `prompt-echo.json` export and break one thing each.

use sandflow_flow_compiler::{CompileOptions, Diagnostics, check};
use serde_json::{Value, json};

fn prompt_echo() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/flows/prompt-echo.json");
    serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON")
}

fn diagnose(flow: &Value) -> Diagnostics {
    check(flow.to_string().as_bytes(), &CompileOptions::default()).1
}

/// The one error of `code` in `diags`, which must also say what to do.
fn only_error<'a>(diags: &'a Diagnostics, code: &str) -> &'a sandflow_flow_compiler::Diagnostic {
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.iter().any(|d| d.code == code), "expected a `{code}` error, got {errors:#?}");
    let d = errors.into_iter().find(|d| d.code == code).expect("found above");
    assert!(!d.help.is_empty(), "`{code}` says nothing about what to do");
    d
}

#[test]
fn not_json_and_wrong_shapes() {
    let d = check(b"{\"data\": ", &CompileOptions::default()).1;
    assert!(only_error(&d, "not-json").message.contains("line 1"));
    only_error(&check(b"[1, 2]", &CompileOptions::default()).1, "wrong-shape");
    only_error(&diagnose(&json!({"data": {"nodes": {}, "edges": []}})), "wrong-shape");
    only_error(&diagnose(&json!({"data": {"nodes": [42], "edges": []}})), "wrong-shape");
    only_error(&diagnose(&json!({"name": "no data"})), "wrong-shape");
}

#[test]
fn dangling_edge_names_the_missing_node() {
    let mut flow = prompt_echo();
    flow["data"]["edges"][0]["source"] = json!("Ghost-1");
    flow["data"]["edges"][0]["data"]["sourceHandle"]["id"] = json!("Ghost-1");
    let diags = diagnose(&flow);
    let d = only_error(&diags, "dangling-edge");
    assert!(d.message.contains("Ghost-1"));
    assert_eq!(d.pointer, "/data/edges/0");
}

#[test]
fn duplicate_ids() {
    let mut flow = prompt_echo();
    let copy = flow["data"]["nodes"][1].clone();
    flow["data"]["nodes"].as_array_mut().expect("nodes").push(copy);
    let diags = diagnose(&flow);
    let d = only_error(&diags, "duplicate-id");
    assert_eq!(d.node_id.as_deref(), Some("Prompt-t2oaK"));
}

#[test]
fn a_cycle_without_a_loop_is_refused() {
    let mut flow = prompt_echo();
    // Feed the prompt's output back into its own variable.
    let mut back = flow["data"]["edges"][1].clone();
    back["target"] = json!("Prompt-t2oaK");
    back["data"]["targetHandle"] =
        json!({"fieldName": "tool_placeholder", "id": "Prompt-t2oaK", "inputTypes": ["Message"], "type": "str"});
    flow["data"]["edges"].as_array_mut().expect("edges").push(back);
    let diags = diagnose(&flow);
    let d = only_error(&diags, "cycle");
    assert!(d.message.contains("Prompt-t2oaK"), "{d:?}");
    assert!(d.help.contains("Loop"));
}

#[test]
fn edges_whose_types_do_not_match() {
    let mut flow = prompt_echo();
    let types = json!(["DataFrame"]);
    flow["data"]["nodes"][1]["data"]["node"]["template"]["user_input"]["input_types"] = types;
    let diags = diagnose(&flow);
    let d = only_error(&diags, "type-mismatch");
    assert_eq!(d.field.as_deref(), Some("user_input"));
    assert!(d.message.contains("Message") && d.message.contains("DataFrame"));
}

#[test]
fn missing_required_field() {
    let mut flow = prompt_echo();
    flow["data"]["edges"].as_array_mut().expect("edges").pop(); // nothing feeds Chat Output
    let diags = diagnose(&flow);
    let d = only_error(&diags, "missing-required");
    assert_eq!(d.node_id.as_deref(), Some("ChatOutput-yK0AU"));
    assert_eq!(d.field.as_deref(), Some("input_value"));
    assert!(d.pointer.ends_with("/template/input_value"), "{}", d.pointer);
}

#[test]
fn secret_field_with_no_variable() {
    let mut flow = prompt_echo();
    let field = &mut flow["data"]["nodes"][1]["data"]["node"]["template"]["use_double_brackets"];
    field["load_from_db"] = json!(true);
    field["value"] = json!(false);
    let diags = diagnose(&flow);
    let d = only_error(&diags, "unset-secret");
    assert!(d.help.contains("global variable"));
    // A named variable becomes a secret reference, never an inlined value.
    field_value(&mut flow, "OPENAI_API_KEY");
    let (plan, diags) = check(flow.to_string().as_bytes(), &CompileOptions::default());
    assert!(!diags.has_errors(), "{diags:?}");
    assert!(plan.expect("plan").dump().contains("use_double_brackets = secret OPENAI_API_KEY"));
}

fn field_value(flow: &mut Value, value: &str) {
    flow["data"]["nodes"][1]["data"]["node"]["template"]["use_double_brackets"]["value"] = json!(value);
}

#[test]
fn only_one_chat_input() {
    let mut flow = prompt_echo();
    let mut second = flow["data"]["nodes"][0].clone();
    second["id"] = json!("ChatInput-second");
    flow["data"]["nodes"].as_array_mut().expect("nodes").push(second);
    let diags = diagnose(&flow);
    assert_eq!(only_error(&diags, "second-chat-input").message, "Only one chat input is allowed in the graph");
}

#[test]
fn unknown_component_says_how_to_provide_it() {
    let mut flow = prompt_echo();
    flow["data"]["nodes"][1]["data"]["type"] = json!("MyFancyPrompt");
    let diags = diagnose(&flow);
    let d = only_error(&diags, "unknown-component");
    assert!(d.message.contains("MyFancyPrompt"));
    assert!(d.help.contains("custom node named `MyFancyPrompt`"));
    // Published as a custom node, the same flow compiles.
    let mut options = CompileOptions::default();
    options.custom_nodes.insert("MyFancyPrompt".into(), "custom:MyFancyPrompt@1".into());
    let (plan, diags) = check(flow.to_string().as_bytes(), &options);
    assert!(!diags.has_errors(), "{diags:?}");
    assert_eq!(plan.expect("plan").nodes[1].node, "custom:MyFancyPrompt@1");
}

#[test]
fn unknown_output_and_field() {
    let mut flow = prompt_echo();
    flow["data"]["edges"][0]["data"]["sourceHandle"]["name"] = json!("nope");
    flow["data"]["edges"][1]["data"]["targetHandle"]["fieldName"] = json!("nowhere");
    let diags = diagnose(&flow);
    assert!(only_error(&diags, "unknown-output").help.contains("message"));
    only_error(&diags, "unknown-field");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut flow = prompt_echo();
    flow["data"]["nodes"][1]["data"]["type"] = json!("Mystery");
    flow["data"]["edges"][1]["target"] = json!("Ghost");
    let diags = diagnose(&flow);
    assert!(diags.error_count() >= 2, "{diags:?}");
}

#[test]
fn human_rendering_shows_line_and_snippet() {
    let mut flow = prompt_echo();
    flow["data"]["nodes"][1]["data"]["type"] = json!("Mystery");
    let text = serde_json::to_string_pretty(&flow).expect("pretty");
    let (_, diags) = check(text.as_bytes(), &CompileOptions::default());
    let rendered = diags.render("flow.json", Some(&text));
    assert!(rendered.contains("error[unknown-component]"), "{rendered}");
    assert!(rendered.contains("--> flow.json:"), "{rendered}");
    assert!(rendered.contains("\"type\": \"Mystery\""), "{rendered}");
    assert!(rendered.contains("1 error(s)"), "{rendered}");
}
