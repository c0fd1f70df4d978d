//! Each kind of bad flow gets its own clear diagnostic. The cases start from
//! the real `prompt-echo.json` export and break one thing each.

use sandflow_flow_compiler::{CompileOptions, Diagnostics, check, compile};
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
    // The manifest names it, so sellers and buyers know which secret to set.
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    assert_eq!(artifact.manifest.variables, ["OPENAI_API_KEY"]);
    let (artifact, _) = compile(prompt_echo().to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    assert!(artifact.manifest.variables.is_empty());
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

fn shared_flow(name: &str) -> Value {
    let path = format!("{}/../../shared/flows/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).expect("shared flow")).expect("JSON")
}

fn nodes_and_edges(flow: &mut Value) -> (&mut Vec<Value>, Vec<Value>) {
    let edges = flow["data"]["edges"].as_array().expect("edges").clone();
    (flow["data"]["nodes"].as_array_mut().expect("nodes"), edges)
}

/// A flow past [`MAX_NODES`] components or [`MAX_EDGES`] connections is
/// refused before any pass looks at it, whatever its parts are.
#[test]
fn too_many_components_or_connections() {
    use sandflow_flow_compiler::langflow::{MAX_EDGES, MAX_NODES};
    let mut flow = prompt_echo();
    let (nodes, _) = nodes_and_edges(&mut flow);
    let template = nodes[1].clone();
    for i in 0..MAX_NODES {
        let mut node = template.clone();
        node["id"] = json!(format!("Copy-{i}"));
        nodes.push(node);
    }
    let d = only_error(&diagnose(&flow), "too-large").clone();
    assert!(d.message.contains(&format!("more than {MAX_NODES} components")), "{}", d.message);
    assert_eq!(d.pointer, "/data/nodes");

    let mut flow = prompt_echo();
    let (_, edges) = nodes_and_edges(&mut flow);
    let many: Vec<Value> = edges.iter().cycle().take(MAX_EDGES + 1).cloned().collect();
    flow["data"]["edges"] = json!(many);
    let d = only_error(&diagnose(&flow), "too-large").clone();
    assert!(d.message.contains(&format!("more than {MAX_EDGES} connections")), "{}", d.message);
}

/// Ids are bounded; display names are cut, so that the errors which
/// repeat them stay small.
#[test]
fn long_ids_are_refused_and_long_names_cut() {
    use sandflow_flow_compiler::langflow::MAX_NAME_CHARS;
    let mut flow = prompt_echo();
    flow["data"]["nodes"][1]["id"] = json!("x".repeat(MAX_NAME_CHARS + 1));
    let d = only_error(&diagnose(&flow), "wrong-shape").clone();
    assert!(d.message.contains("id is over"), "{}", d.message);

    let mut flow = prompt_echo();
    flow["data"]["nodes"][1]["data"]["node"]["display_name"] = json!("n".repeat(100_000));
    flow["data"]["edges"][0]["source"] = json!("Ghost-1");
    flow["data"]["edges"][0]["data"]["sourceHandle"]["id"] = json!("Ghost-1");
    let diags = diagnose(&flow);
    assert!(diags.has_errors());
    for d in diags.iter() {
        let shown = d.display_name.as_deref().unwrap_or_default();
        assert!(shown.chars().count() <= MAX_NAME_CHARS && d.message.len() < 4 * MAX_NAME_CHARS, "{d:?}");
    }
}

/// Loops within loops within loops: past [`MAX_LOOP_NESTING`] the flow is
/// refused, where it would otherwise compile into a plan too deep to read
/// back. Built from the research-translation loop: `extra` more Loops, each
/// on the `item` of the one before, the innermost running the body, whose
/// answer feeds back into every Loop.
fn nested_loops(extra: usize) -> Value {
    let mut flow = shared_flow("starter/research-translation-loop.json");
    let (nodes, edges) = nodes_and_edges(&mut flow);
    let outer = "LoopComponent-E7Ur0";
    let loop_node = nodes.iter().find(|n| n["id"] == outer).expect("the loop").clone();
    let into_data = edges.iter().find(|e| e["target"] == outer && e["data"]["targetHandle"]["fieldName"] == "data");
    let feedback = edges.iter().find(|e| e["target"] == outer && e["data"]["targetHandle"]["name"] == "item");
    let (into_data, feedback) = (into_data.expect("data edge").clone(), feedback.expect("feedback edge").clone());
    let id = |k: usize| if k == 0 { outer.to_owned() } else { format!("LoopComponent-n{k}") };
    for k in 1..=extra {
        let mut node = loop_node.clone();
        node["id"] = json!(id(k));
        node["data"]["id"] = json!(id(k));
        nodes.push(node);
    }
    let mut edges: Vec<Value> = edges
        .into_iter()
        .map(|mut e| {
            // The body hangs off the innermost loop.
            if e["source"] == outer && e["data"]["sourceHandle"]["name"] == "item" {
                e["source"] = json!(id(extra));
                e["data"]["sourceHandle"]["id"] = json!(id(extra));
            }
            e
        })
        .collect();
    for k in 1..=extra {
        let mut data = into_data.clone();
        data["id"] = json!(format!("nest-data-{k}"));
        data["source"] = json!(id(k - 1));
        data["target"] = json!(id(k));
        data["data"]["sourceHandle"] =
            json!({"dataType": "LoopComponent", "id": id(k - 1), "name": "item", "output_types": ["Data"]});
        data["data"]["targetHandle"]["id"] = json!(id(k));
        let mut back = feedback.clone();
        back["id"] = json!(format!("nest-back-{k}"));
        back["target"] = json!(id(k));
        back["data"]["targetHandle"]["id"] = json!(id(k));
        edges.extend([data, back]);
    }
    flow["data"]["edges"] = json!(edges);
    flow
}

#[test]
fn loops_nest_only_so_deep() {
    use sandflow_flow_compiler::ir::Step;
    use sandflow_flow_compiler::schedule::MAX_LOOP_NESTING;
    let (plan, diags) = check(nested_loops(2).to_string().as_bytes(), &CompileOptions::default());
    let plan = plan.unwrap_or_else(|| panic!("three nested loops compile: {diags:#?}"));
    fn depth(steps: &[Step]) -> usize {
        let inner = steps.iter().filter_map(|s| match s {
            Step::Loop { body, .. } => Some(depth(body)),
            Step::Run { .. } => None,
        });
        inner.max().map_or(0, |d| d + 1)
    }
    assert_eq!(depth(&plan.schedule), 3, "{:#?}", plan.schedule);
    let (plan, diags) = check(nested_loops(MAX_LOOP_NESTING).to_string().as_bytes(), &CompileOptions::default());
    assert!(plan.is_none());
    let d = only_error(&diags, "loop-nesting");
    assert!(d.message.contains(&format!("more than {MAX_LOOP_NESTING} Loops deep")), "{}", d.message);
}

/// A legacy chain gets a copy of its prompt's fields and edges; a prompt
/// fed into chains without end (here one edge repeated) is refused rather
/// than copied that often.
#[test]
fn a_legacy_prompt_feeds_only_a_few_chains() {
    let mut flow = shared_flow("legacy/one-group-chat.json");
    assert!(check(flow.to_string().as_bytes(), &CompileOptions::default()).0.is_some(), "the export compiles");
    let inner = &mut flow["data"]["nodes"][0]["data"]["node"]["flow"]["data"]["edges"];
    let edges = inner.as_array_mut().expect("inner edges");
    let prompt = edges.iter().find(|e| e["source"] == "PromptTemplate-h1IlH").expect("the prompt's edge").clone();
    edges.extend(std::iter::repeat_n(prompt, 8));
    let diags = diagnose(&flow);
    let d = only_error(&diags, "legacy-prompt-shared");
    assert!(d.message.contains("feeds 9 chains"), "{}", d.message);
}
