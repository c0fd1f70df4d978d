//! Flows that call models, against the test suite's own OpenAI- and
//! Anthropic-compatible server over real HTTP: the `llm` capability
//! (providers, credentials, token counts, errors), the Language Model and
//! Agent nodes, tools (built-in and nodes of the flow), and the pre-1.0
//! LangChain chains of `legacy/` with their buffer memory.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::{
    Calendar, CapabilityConfig, FlowComponent, Limits, LlmConfig, MemoryStore, Persona, RunContext, RunError,
    RunOutcome, RunRequest, Runtime, RuntimeConfig, Secret, Secrets, Value,
};
use serde_json::Value as Json;
use std::path::Path;

/// A model server on its own tokio runtime, so tests drive sandboxes from
/// plain threads as the host does.
struct Model {
    server: ModelServer,
    _io: tokio::runtime::Runtime,
}

fn model(options: Options) -> Model {
    let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = io.block_on(ModelServer::start(options)).expect("model server starts");
    Model { server, _io: io }
}

fn shared_flow(path: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path);
    serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON")
}

fn runtime(providers: &[String], operator_key: Option<&str>) -> Runtime {
    let secrets: Vec<_> = operator_key.map(|key| ("OPENAI_API_KEY", key)).into_iter().collect();
    runtime_holding(providers, &secrets)
}

/// A runtime whose operator holds `secrets` (name, value).
fn runtime_holding(providers: &[String], secrets: &[(&str, &str)]) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let mut capabilities = CapabilityConfig {
        llm: LlmConfig { providers: providers.iter().map(|p| p.parse().expect("provider spec")).collect() },
        ..CapabilityConfig::default()
    };
    for (name, value) in secrets {
        capabilities.secrets.insert(*name, Secret::new(*value));
    }
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn openai(model: &Model) -> String {
    format!("OpenAI=openai,{}/v1,gpt-test", model.server.url())
}

/// Basic Prompting with `edit` applied to its Language Model's template.
fn basic_prompting_with(edit: impl Fn(&mut Json)) -> Json {
    let mut source = shared_flow("starter/basic-prompting.json");
    for node in source["data"]["nodes"].as_array_mut().expect("nodes") {
        if node["data"]["type"] == "LanguageModelComponent" {
            edit(&mut node["data"]["node"]["template"]);
        }
    }
    source
}

fn load(runtime: &Runtime, flow: &Json) -> FlowComponent {
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn run(runtime: &Runtime, flow: &FlowComponent, input: &str, context: RunContext) -> Result<RunOutcome, RunError> {
    let request = RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() };
    runtime.sandbox_for(Limits::default(), context).run_flow(flow, &request)
}

fn answer(outcome: &RunOutcome) -> String {
    assert!(!outcome.outputs.is_empty(), "no output; nodes run: {:?}", outcome.events);
    match &outcome.outputs[0].value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

fn chat_requests(model: &Model) -> Vec<Json> {
    model.server.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

#[test]
fn basic_prompting_sends_the_prompt_as_system_message() {
    let model = model(Options { api_key: Some("sk-operator".into()), ..Options::default() });
    let runtime = runtime(&[openai(&model)], Some("sk-operator"));
    let source = shared_flow("starter/basic-prompting.json");
    let flow = load(&runtime, &source);
    let outcome = run(&runtime, &flow, "What is WebAssembly?", RunContext::default()).expect("runs");
    assert_eq!(answer(&outcome), "You said: What is WebAssembly?");

    let template = source["data"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["data"]["type"] == "Prompt"))
        .and_then(|n| n["data"]["node"]["template"]["template"]["value"].as_str())
        .expect("the flow's prompt template")
        .to_owned();
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "gpt-test", "the provider's default model, as the flow names none");
    assert_eq!(sent[0]["messages"][0]["role"], "system");
    assert_eq!(sent[0]["messages"][0]["content"], template.as_str());
    assert_eq!(sent[0]["messages"][1]["content"], "What is WebAssembly?");
    assert_eq!(outcome.tokens.output, 5, "the model's words are counted as its tokens");
    assert!(outcome.tokens.input > 5);
}

#[test]
fn the_buyers_persona_comes_before_the_sellers_prompt() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let persona =
        Persona { name: "Ada".into(), system_prompt: "Only talk about our shop.".into(), tone: "formal".into() };
    let context = RunContext { persona: Some(std::sync::Arc::new(persona)), ..RunContext::default() };
    let outcome = run(&runtime, &flow, "hi", context).expect("runs");
    assert_eq!(answer(&outcome), "You said: hi");
    let sent = chat_requests(&model);
    let messages = sent[0]["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], "Your name is Ada.\nOnly talk about our shop.\nAnswer in a formal tone.");
    assert_eq!(messages[1]["role"], "system", "the seller's prompt follows");
    assert_eq!(messages.last().map(|m| m["content"].clone()), Some("hi".into()));
}

#[test]
fn the_agents_secret_wins_and_never_reaches_the_guest() {
    let model = model(Options { api_key: Some("sk-buyer".into()), ..Options::default() });
    let runtime = runtime(&[openai(&model)], Some("sk-operator"));
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let secrets: Secrets = [("OPENAI_API_KEY", "sk-buyer")].into_iter().collect();
    let outcome = run(&runtime, &flow, "hi", RunContext { secrets, ..RunContext::default() }).expect("runs");
    assert_eq!(answer(&outcome), "You said: hi");
    assert_eq!(model.server.requests()[0].api_key.as_deref(), Some("sk-buyer"));
    let body = model.server.requests()[0].body.to_string();
    assert!(!body.contains("sk-"), "no key travels in the request body: {body}");
}

/// A buyer's key (bound to the hosts its owner listed) goes only to the
/// provider it is named for, or one whose host it lists: the seller's
/// flow picks the provider and the variable its key field names.
#[test]
fn a_buyers_key_goes_only_to_its_own_provider() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let source = basic_prompting_with(|template| {
        template["api_key"]["load_from_db"] = true.into();
        template["api_key"]["value"] = "TAVILY_API_KEY".into();
    });
    let flow = load(&runtime, &source);
    let mut secrets = Secrets::default();
    secrets.insert("TAVILY_API_KEY", Secret::for_hosts("tvly-buyer", vec!["api.tavily.com".parse().expect("pattern")]));
    let error = run(&runtime, &flow, "hi", RunContext { secrets, ..RunContext::default() }).expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("`TAVILY_API_KEY` is not provider `OpenAI`'s key"), "{text}");
    assert!(!text.contains("tvly-buyer") && chat_requests(&model).is_empty(), "nothing was sent: {text}");

    // Named for the provider, or listing its host: it goes.
    let host = reqwest::Url::parse(&model.server.url()).expect("URL");
    let listed = format!("{}:{}", host.host_str().expect("host"), host.port().expect("port"));
    let mut secrets = Secrets::default();
    secrets.insert("TAVILY_API_KEY", Secret::for_hosts("tvly-buyer", vec![listed.parse().expect("pattern")]));
    run(&runtime, &flow, "hi", RunContext { secrets, ..RunContext::default() }).expect("its host is listed");
    assert_eq!(model.server.requests().last().and_then(|r| r.api_key.clone()).as_deref(), Some("tvly-buyer"));
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let mut secrets = Secrets::default();
    secrets.insert("OPENAI_API_KEY", Secret::for_hosts("sk-buyer", Vec::new()));
    run(&runtime, &flow, "hi", RunContext { secrets, ..RunContext::default() }).expect("the provider's own key");
    assert_eq!(model.server.requests().last().and_then(|r| r.api_key.clone()).as_deref(), Some("sk-buyer"));
}

#[test]
fn a_flow_cannot_choose_where_its_model_calls_go() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let source = basic_prompting_with(|template| {
        template["ollama_base_url"]["value"] = "http://169.254.169.254/latest".into();
        template["base_url_ibm_watsonx"]["value"] = "http://169.254.169.254/latest".into();
    });
    let flow = load(&runtime, &source);
    let outcome = run(&runtime, &flow, "hi", RunContext::default()).expect("runs");
    assert_eq!(answer(&outcome), "You said: hi");
    assert_eq!(chat_requests(&model).len(), 1, "the call went to the operator's provider");
}

#[test]
fn without_a_provider_the_node_fails_saying_what_is_missing() {
    let runtime = runtime(&[], None);
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let error = run(&runtime, &flow, "hi", RunContext::default()).expect_err("no provider");
    let RunError::Node { message, .. } = &error else { panic!("expected a node error, got {error:?}") };
    assert!(message.contains("no language model provider is configured"), "{message}");
}

#[test]
fn provider_failures_and_refused_keys_are_reported() {
    let model = model(Options { api_key: Some("sk-right".into()), ..Options::default() });
    let runtime = runtime(&[openai(&model)], Some("sk-right"));
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let error = run(&runtime, &flow, "please fail with 503", RunContext::default()).expect_err("503");
    assert!(error.to_string().contains("answered 503"), "{error}");

    let secrets: Secrets = [("OPENAI_API_KEY", "sk-wrong")].into_iter().collect();
    let error = run(&runtime, &flow, "hi", RunContext { secrets, ..RunContext::default() }).expect_err("401");
    let text = error.to_string();
    assert!(text.contains("401") && text.contains("Incorrect API key"), "{text}");
    assert!(!text.contains("sk-wrong"), "errors never repeat a key: {text}");
}

#[test]
fn anthropic_providers_speak_messages() {
    let model = model(Options::default());
    let spec = format!("Anthropic=anthropic,{}/v1,claude-test", model.server.url());
    let runtime = runtime(&[spec], None);
    let flow = load(&runtime, &shared_flow("starter/basic-prompting.json"));
    let outcome = run(&runtime, &flow, "bonjour", RunContext::default()).expect("runs");
    assert_eq!(answer(&outcome), "You said: bonjour");
    let sent = &model.server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert!(sent.body["system"].as_str().is_some_and(|s| !s.is_empty()), "the prompt goes in `system`");
    assert_eq!(outcome.tokens.output, 3);
}

#[test]
fn multi_agent_flow_chains_three_agents() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let flow = load(&runtime, &shared_flow("starter/multi-agent-flow.json"));
    let outcome = run(&runtime, &flow, "plan a launch", RunContext::default()).expect("runs");
    assert_eq!(answer(&outcome), "You said: You said: You said: plan a launch");
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 3, "one model call per agent");
    for request in &sent {
        assert_eq!(request["messages"][0]["role"], "system", "each agent sends its own system prompt");
        assert!(request.get("tools").is_none(), "the flow gives its agents no tools");
    }
}

#[test]
fn the_built_in_calculator_is_a_tool_when_switched_on() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let flow = load(&runtime, &shared_flow("starter/multi-agent-flow.json"));
    let mut request = RunRequest {
        input_value: Some(r#"use evaluate_expression {"expression": "4*4*(33/22)+12-20"}"#.into()),
        session_id: "s1".into(),
        ..RunRequest::default()
    };
    request.tweaks.insert("Agent-maf-1".into(), serde_json::json!({"add_calculator_tool": true}));
    let outcome = runtime.sandbox(Limits::default()).run_flow(&flow, &request).expect("runs");
    // Agent 1 calls the tool and reports; agents 2 and 3 each answer the one before.
    assert_eq!(answer(&outcome), r#"You said: You said: evaluate_expression returned: {"result":"16"}"#);
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 4, "two calls for the tool round trip, one per later agent");
    let tool_turn = sent[1]["messages"].as_array().and_then(|m| m.last()).cloned().expect("a turn");
    assert_eq!(tool_turn["role"], "tool");
    assert_eq!(tool_turn["content"], r#"{"result":"16"}"#);
}

#[test]
fn the_current_date_tool_reads_the_hosts_calendar() {
    let model = model(Options::default());
    let mut capabilities = CapabilityConfig {
        llm: LlmConfig { providers: vec![openai(&model).parse().expect("provider spec")] },
        ..CapabilityConfig::default()
    };
    capabilities.calendar = Calendar::fixed("2026-11-26T14:02:21Z").expect("instant");
    let runtime = Runtime::new(&RuntimeConfig { capabilities, ..RuntimeConfig::default() }).expect("runtime starts");
    // Simple Agent turns Langflow's `add_current_date_tool` on.
    let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
    let input = r#"use get_current_date {"timezone": "Europe/Paris"}"#;
    let outcome = run(&runtime, &flow, input, RunContext::default()).expect("runs");
    assert_eq!(
        answer(&outcome),
        "get_current_date returned: Current date and time in Europe/Paris: 2026-11-26 15:02:21 CET"
    );
    let sent = chat_requests(&model);
    let offered: Vec<&str> =
        sent[0]["tools"].as_array().expect("tools").iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    // Langflow's order: the wired tools, then the date, then the calculator.
    assert_eq!(offered, ["fetch_content", "perform_search", "get_current_date", "evaluate_expression"]);

    // A zone that is not one, or a path in disguise, is an answer the model reads.
    for zone in ["Nowhere/None", "../../../etc/passwd"] {
        let input = format!(r#"use get_current_date {{"timezone": "{zone}"}}"#);
        let outcome = run(&runtime, &flow, &input, RunContext::default()).expect("runs");
        assert_eq!(answer(&outcome), format!("get_current_date returned: Error: 'No time zone found with key {zone}'"));
    }
}

/// Travel Planning Agents without its web nodes: the last agent's tool is
/// the flow's own Calculator node, run through the `tools` capability.
fn travel_planning_with_calculator_only() -> Json {
    let mut source = shared_flow("starter/travel-planning-agents.json");
    let data = &mut source["data"];
    let web: Vec<String> = data["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| matches!(n["data"]["type"].as_str(), Some("UnifiedWebSearch" | "URLComponent")))
        .filter_map(|n| n["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(web.len(), 2);
    data["nodes"].as_array_mut().expect("nodes").retain(|n| !web.iter().any(|id| n["id"] == id.as_str()));
    data["edges"].as_array_mut().expect("edges").retain(|e| !web.iter().any(|id| e["source"] == id.as_str()));
    for node in data["nodes"].as_array_mut().expect("nodes") {
        if node["data"]["type"] == "Agent" {
            node["data"]["node"]["template"]["add_calculator_tool"]["value"] = false.into();
        }
    }
    source
}

#[test]
fn agents_call_nodes_of_the_flow_as_tools() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let flow = load(&runtime, &travel_planning_with_calculator_only());
    let input = r#"use evaluate_expression {"expression": "2 ** 10"}"#;
    let outcome = run(&runtime, &flow, input, RunContext::default()).expect("runs");
    assert_eq!(answer(&outcome), r#"evaluate_expression returned: {"result":"1024"}"#);
    assert!(
        outcome.events.iter().any(|e| e.node_id.starts_with("CalculatorComponent") && e.completed),
        "the Calculator node ran as a tool: {:?}",
        outcome.events
    );
    let sent = chat_requests(&model);
    let calculator = sent
        .iter()
        .flat_map(|r| r["tools"].as_array().cloned().unwrap_or_default())
        .find(|t| t["function"]["name"] == "evaluate_expression")
        .expect("the Calculator node offered as a tool");
    assert_eq!(calculator["function"]["parameters"]["required"][0], "expression");
}

#[test]
fn hostile_tool_arguments_get_an_error_the_model_can_read() {
    let model = model(Options::default());
    let runtime = runtime(&[openai(&model)], None);
    let flow = load(&runtime, &travel_planning_with_calculator_only());
    // A JSON array is not an arguments object; the run goes on.
    let input = r#"use evaluate_expression ["__import__('os')"]"#;
    let outcome = run(&runtime, &flow, input, RunContext::default()).expect("runs");
    let text = answer(&outcome);
    assert!(text.starts_with("evaluate_expression returned: {\"error\""), "{text}");
}

fn probe(runtime: &Runtime, component: &str, fields: Vec<sandflow_runtime_host::Field>) -> String {
    let bytes = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    let node = runtime.load_node(&bytes).expect("loads");
    let invocation = sandflow_runtime_host::Invocation {
        component: component.into(),
        node_id: "probe".into(),
        display_name: "probe".into(),
        session_id: "s".into(),
        fields,
        wanted: vec!["out".into()],
    };
    let outputs = runtime.sandbox(Limits::default()).run_node(&node, &invocation).expect("no trap").expect("ok");
    match &outputs[0].value {
        Value::Text(t) => t.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn a_hostile_guest_cannot_redirect_model_calls_or_borrow_secrets() {
    let model = model(Options { api_key: Some("sk-operator".into()), ..Options::default() });
    let secrets = [("OPENAI_API_KEY", "sk-operator"), ("OPERATOR_DATABASE_PASSWORD", "db-password")];
    let runtime = runtime_holding(&[openai(&model)], &secrets);
    let said = probe(&runtime, "LlmProbe", vec![]);
    // It named a secret of its choosing as the model key: refused before
    // anything is sent anywhere (the operator's provider included).
    assert!(said.starts_with("refused:") && said.contains("which its flow does not give it"), "{said}");
    assert!(!said.contains("169.254"), "{said}");
    assert_eq!(model.server.requests().len(), 0);
}

#[test]
fn a_hostile_guest_cannot_call_tools_outside_a_flow() {
    let runtime = runtime(&[], None);
    let field = sandflow_runtime_host::Field { name: "target".into(), value: Value::Text("ChatInput-1".into()) };
    let said = probe(&runtime, "ToolProbe", vec![field]);
    assert!(said.contains("tools can only be called while a flow runs"), "{said}");
}

// --- Pre-1.0 LangChain flows (`legacy/`) -----------------------------------

/// A runtime whose OpenAI is `model` and which keeps chat history, as
/// LangChain's buffer memory needs.
fn chain_runtime(model: &Model) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig {
        llm: LlmConfig { providers: vec![openai(model).parse().expect("provider spec")] },
        memory: Some(MemoryStore::open_blocking("sqlite::memory:").expect("memory opens")),
        ..CapabilityConfig::default()
    };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

/// The template of the export's PromptTemplate, inside a group or not.
fn prompt_template(flow: &Json) -> String {
    fn find(nodes: &Json) -> Option<String> {
        nodes.as_array()?.iter().find_map(|n| {
            let node = &n["data"]["node"];
            if n["data"]["type"] == "PromptTemplate" {
                return node["template"]["template"]["value"].as_str().map(str::to_owned);
            }
            find(&node["flow"]["data"]["nodes"])
        })
    }
    find(&flow["data"]["nodes"]).expect("the export has a PromptTemplate")
}

fn turn(runtime: &Runtime, flow: &FlowComponent, session: &str, input: &str) -> RunOutcome {
    let request = RunRequest { input_value: Some(input.into()), session_id: session.into(), ..RunRequest::default() };
    runtime.sandbox_for(Limits::default(), RunContext::default()).run_flow(flow, &request).expect("runs")
}

#[test]
fn a_pre_1_0_chain_answers_with_the_conversation_so_far_as_langchain_did() {
    let model = model(Options::default());
    let runtime = chain_runtime(&model);
    let source = shared_flow("legacy/basicchatwithpromptandhistory.json");
    let template = prompt_template(&source);
    let flow = load(&runtime, &source);
    let prompt = |history: &str, text: &str| template.replace("{history}", history).replace("{text}", text);

    // No Chat Input in the export: the run's input fills the prompt's one
    // open variable, and the chain's text is the answer.
    let first = answer(&turn(&runtime, &flow, "s1", "Hi, I am Ada."));
    assert_eq!(first, format!("You said: {}", prompt("", "Hi, I am Ada.")));
    // Buffer memory: the earlier turns, `Human:` / `AI:`, without this one.
    let second = answer(&turn(&runtime, &flow, "s1", "What is my name?"));
    let history = format!("Human: Hi, I am Ada.\nAI: {first}");
    assert_eq!(second, format!("You said: {}", prompt(&history, "What is my name?")));
    // Another session starts empty.
    let other = answer(&turn(&runtime, &flow, "s2", "Who am I?"));
    assert_eq!(other, format!("You said: {}", prompt("", "Who am I?")));

    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0]["model"], "gpt-3.5-turbo", "ChatOpenAI's model");
    assert_eq!(sent[0]["temperature"], 0.7, "ChatOpenAI's temperature");
    for request in &sent {
        let messages = request["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 1, "the formatted prompt is the one user message: {messages:?}");
        assert_eq!(messages[0]["role"], "user");
    }
}

#[test]
fn a_pre_1_0_time_travel_guide_chain_uses_its_own_prompt() {
    let model = model(Options::default());
    let runtime = chain_runtime(&model);
    let flow = load(&runtime, &shared_flow("legacy/basic-example.json"));
    let first = answer(&turn(&runtime, &flow, "s1", "Paris, 1889."));
    assert!(first.starts_with("You said: I want you to act as my time travel guide."), "{first}");
    assert!(first.ends_with("Current conversation:\n    \n    Human: Paris, 1889.\n    AI:"), "{first}");
    let second = answer(&turn(&runtime, &flow, "s1", "And the food?"));
    assert!(
        second.ends_with(&format!("    Human: Paris, 1889.\nAI: {first}\n    Human: And the food?\n    AI:")),
        "{second}"
    );
    let sent = chat_requests(&model);
    assert_eq!(sent[0]["model"], "text-davinci-003", "OpenAI's model");
    assert_eq!(sent[0]["max_tokens"], 256);
}

#[test]
fn pre_1_0_chat_input_and_output_carry_the_chain() {
    let model = model(Options::default());
    let runtime = chain_runtime(&model);
    for (path, sender) in [("legacy/chatinputtest.json", "Machine"), ("legacy/twooutputstest.json", "User")] {
        let flow = load(&runtime, &shared_flow(path));
        let outcome = turn(&runtime, &flow, "s1", "hello");
        assert_eq!(answer(&outcome), "You said: Input: hello\nAI:", "{path}");
        match &outcome.outputs[0].value {
            // `is_ai: False` in the export: the answer shows as the user's.
            Value::Message(m) => assert_eq!(m.sender, sender, "{path}"),
            other => panic!("{path}: expected a Message, got {other:?}"),
        }
    }
}

#[test]
fn grouped_pre_1_0_chains_run_with_the_values_of_their_group() {
    let model = model(Options::default());
    let runtime = chain_runtime(&model);
    for (path, key) in [("legacy/grouped-chat.json", None), ("legacy/one-group-chat.json", Some("test"))] {
        let source = shared_flow(path);
        let prompt = prompt_template(&source).replace("{history}", "").replace("{text}", "hello");
        let flow = load(&runtime, &source);
        assert_eq!(answer(&turn(&runtime, &flow, path, "hello")), format!("You said: {prompt}"), "{path}");
        let request = model.server.requests().pop().expect("a model call");
        // The group's own copy of ChatOpenAI's key is the one used.
        assert_eq!(request.api_key.as_deref(), key, "{path}");
    }
}

#[test]
fn a_pre_1_0_zero_shot_agent_calls_another_agent_through_its_tool() {
    let model = model(Options::default());
    let runtime = chain_runtime(&model);
    let mut source = shared_flow("legacy/complex-example.json");
    // Its inner agent's other tool is Python code (`PythonFunctionTool`),
    // which a seller would publish as a custom node; left out here.
    let python = "PythonFunctionTool-qSfC8";
    source["data"]["nodes"].as_array_mut().expect("nodes").retain(|n| n["id"] != python);
    source["data"]["edges"].as_array_mut().expect("edges").retain(|e| e["source"] != python);
    let flow = load(&runtime, &source);
    let outcome = turn(&runtime, &flow, "s1", r#"use AgentTool {"input_value": "hello inside"}"#);
    // The outer agent called the Tool, which is the inner agent; the inner
    // agent answered the model's question, and the outer one reported it.
    assert_eq!(answer(&outcome), "AgentTool returned: You said: hello inside");
    let sent = chat_requests(&model);
    assert_eq!(sent.len(), 3, "outer, inner, outer: {sent:?}");
    let prefix = "Answer the following questions as best you can. You have access to the following tools:";
    for request in &sent {
        assert_eq!(request["messages"][0]["content"], prefix, "ZeroShotPrompt's prefix is the system prompt");
        assert_eq!(request["model"], "text-davinci-003", "the chain's OpenAI model");
    }
    assert_eq!(sent[0]["tools"][0]["function"]["name"], "AgentTool");
    assert!(sent[1].get("tools").is_none_or(|t| t.as_array().is_none_or(Vec::is_empty)), "the inner agent has none");
}
