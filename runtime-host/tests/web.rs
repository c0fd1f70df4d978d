//! The `http` capability and the nodes that reach the web, over real HTTP
//! against the test suite's own web (`tests/web-fixture`) and model server
//! (`tests/model-server`): starter flows whose agents fetch pages and
//! search as tools, the nodes run directly, and hostile requests (hosts
//! off the allow-list, loopback behind a name, user information, `file:`,
//! redirects away, oversized bodies, slow servers past the deadline,
//! smuggled headers), each refused with a clear error while the host goes
//! on serving.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::{
    CapabilityConfig, Field, FlowComponent, HttpConfig, Invocation, Limits, LlmConfig, NodeComponent, RunContext,
    RunError, RunOutcome, RunRequest, Runtime, Value,
};
use sandflow_web_fixture::{BLOCKED_HOST, DOCS_FACT, HUGE_BYTES, LISBON_FACT, WebFixture};
use serde_json::{Value as Json, json};
use std::time::{Duration, Instant};

mod support;
use support::shared_flow;

struct Model {
    server: ModelServer,
    _io: tokio::runtime::Runtime,
}

fn model() -> Model {
    let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
    Model { server, _io: io }
}

/// The egress policy the tests run under: the fixture's address and its
/// search endpoint, nothing else.
fn egress(web: &WebFixture) -> HttpConfig {
    HttpConfig {
        allow: vec![web.host_port().parse().expect("pattern")],
        web_search: Some(format!("{}/search", web.url()).parse().expect("search URL")),
        ..HttpConfig::default()
    }
}

fn runtime(model: Option<&Model>, http: Option<HttpConfig>) -> Runtime {
    let providers = model
        .map(|m| format!("OpenAI=openai,{}/v1,gpt-test", m.server.url()).parse().expect("provider"))
        .into_iter()
        .collect();
    let capabilities = CapabilityConfig { llm: LlmConfig { providers }, http, ..CapabilityConfig::default() };
    support::runtime(capabilities)
}

fn load(runtime: &Runtime, flow: &Json) -> FlowComponent {
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn request(input: &str, tweaks: &[(&str, Json)]) -> RunRequest {
    let mut request = RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() };
    for (node, tweak) in tweaks {
        request.tweaks.insert((*node).into(), tweak.clone());
    }
    request
}

fn run(runtime: &Runtime, flow: &FlowComponent, request: &RunRequest) -> Result<RunOutcome, RunError> {
    runtime.sandbox_for(Limits::default(), RunContext::default()).run_flow(flow, request)
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

/// What the tools answered, as the model received it.
fn tool_results(model: &Model) -> Vec<String> {
    let mut seen = Vec::new();
    for request in chat_requests(model) {
        for message in request["messages"].as_array().into_iter().flatten() {
            if message["role"] == "tool" {
                let content = message["content"].as_str().unwrap_or_default().to_owned();
                if !seen.contains(&content) {
                    seen.push(content);
                }
            }
        }
    }
    seen
}

fn offered_tools(model: &Model) -> Vec<String> {
    support::openai_tool_names(&chat_requests(model))
}

#[test]
fn simple_agent_fetches_a_page_with_its_url_tool() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
    let input = format!(r#"use fetch_content {{"urls": ["{}/docs"]}}"#, web.url());
    let outcome = run(&runtime, &flow, &request(&input, &[])).expect("runs");
    let text = answer(&outcome);
    assert!(text.starts_with("fetch_content returned: "), "{text}");

    let results = tool_results(&model);
    assert_eq!(results.len(), 1, "{results:?}");
    let rows: Json = serde_json::from_str(&results[0]).expect("the tool answers the page table as JSON");
    let row = &rows[0];
    assert_eq!(row["url"], format!("{}/docs", web.url()));
    assert_eq!(row["title"], "Sandflow docs");
    assert_eq!(row["description"], "How Sandflow runs flows.");
    assert_eq!(row["language"], "en");
    assert_eq!(row["content_type"], "text/html; charset=utf-8");
    let page = row["text"].as_str().expect("text");
    assert!(page.contains(DOCS_FACT) && page.contains("Sandflow & sandboxes"), "{page}");
    assert!(!page.contains("never in the text") && !page.contains("color: blue") && !page.contains("comment"));
    // The export also switches the agent's built-in calculator and current date on.
    assert_eq!(offered_tools(&model), ["evaluate_expression", "fetch_content", "get_current_date", "perform_search"]);
    let schema = chat_requests(&model)[0]["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["function"]["name"] == "fetch_content").cloned())
        .expect("fetch_content offered");
    assert_eq!(schema["function"]["parameters"]["properties"]["urls"]["type"], "array");
}

#[test]
fn simple_agent_searches_through_the_operators_provider() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
    let outcome = run(&runtime, &flow, &request(r#"use perform_search {"query": "sandflow <b>"}"#, &[])).expect("runs");
    assert!(answer(&outcome).starts_with("perform_search returned: "));
    let rows: Json = serde_json::from_str(&tool_results(&model)[0]).expect("JSON rows");
    assert_eq!(rows[0]["title"], "Sandflow docs");
    assert_eq!(rows[0]["snippet"], "How Sandflow runs flows.");
    let content = rows[0]["content"].as_str().expect("content");
    assert!(content.contains(DOCS_FACT), "the result's page was fetched: {content}");
    let blocked = rows[1]["content"].as_str().expect("content");
    assert!(blocked.starts_with("(Blocked by the egress policy:") && blocked.contains(BLOCKED_HOST), "{blocked}");
    let searched = web.seen().into_iter().find(|s| s.uri.starts_with("/search")).expect("the provider was asked");
    assert_eq!(searched.uri, "/search?q=sandflow+b&format=json", "Langflow strips <>\"' from queries");
}

#[test]
fn blog_writer_fetches_its_source_through_redirects() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/blog-writer.json"));
    // The reader's URL goes into the system prompt; the agent's own input
    // (empty in the export) carries the directive for the test model.
    let source = format!("{}/redirect/3", web.url());
    let directive = format!(r#"use fetch_content {{"urls": ["{source}"]}}"#);
    let outcome =
        run(&runtime, &flow, &request(&source, &[("Agent-9tNMJ", json!({"input_value": directive}))])).expect("runs");
    let text = answer(&outcome);
    assert!(text.starts_with("fetch_content returned: ") && text.contains(DOCS_FACT), "{text}");
    let system = chat_requests(&model)[0]["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
    assert!(system.contains(&format!("SOURCE URL: {source}")), "{system}");
    let hops: Vec<String> = web.seen().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(hops, ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0", "/docs"]);
}

#[test]
fn social_media_agent_searches_and_fetches_in_one_turn() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/social-media-agent.json"));
    let input =
        format!(r#"use perform_search {{"query": "sandflow"}} and use fetch_content {{"urls": ["{}/"]}}"#, web.url());
    let text = answer(&run(&runtime, &flow, &request(&input, &[])).expect("runs"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("perform_search returned: ") && lines[0].contains(DOCS_FACT), "{text}");
    assert!(lines[1].starts_with("fetch_content returned: ") && lines[1].contains("Welcome"), "{text}");
    assert_eq!(tool_results(&model).len(), 2);
}

#[test]
fn instagram_copywriter_hands_search_results_to_the_next_agent() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/instagram-copywriter.json"));
    let text =
        answer(&run(&runtime, &flow, &request(r#"use perform_search {"query": "sandflow"}"#, &[])).expect("runs"));
    assert!(text.starts_with("You said: perform_search returned: ") && text.contains(DOCS_FACT), "{text}");
}

#[test]
fn deep_research_agent_searches_between_planning_and_synthesis() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/deep-research-agent.json"));
    // The planner echoes the input; the researcher's prompt then carries
    // the directive and it searches; the synthesiser sees the findings.
    let text =
        answer(&run(&runtime, &flow, &request(r#"use perform_search {"query": "sandflow"}"#, &[])).expect("runs"));
    assert!(text.starts_with("You said: RESEARCH FINDINGS: perform_search returned: "), "{text}");
    assert!(text.contains(DOCS_FACT) && text.contains("ORIGINAL QUERY:"), "{text}");
    assert_eq!(tool_results(&model).len(), 1, "one agent of three has the search tool");
}

#[test]
fn travel_planning_chains_search_page_and_calculator_agents() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/travel-planning-agents.json"));
    // The search result's snippet tells the second agent to fetch; the
    // URL node's address is the seller's (a tweak here).
    let tweak = ("URL-bhDqU", json!({"urls": [format!("{}/lisbon", web.url())]}));
    let outcome = run(&runtime, &flow, &request(r#"use perform_search {"query": "lisbon"}"#, &[tweak])).expect("runs");
    let text = answer(&outcome);
    assert!(text.starts_with("You said: fetch_content returned: ") && text.contains(LISBON_FACT), "{text}");
    let results = tool_results(&model);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].contains("Seven hills") && results[1].contains(LISBON_FACT));
    assert_eq!(offered_tools(&model), ["evaluate_expression", "fetch_content", "get_current_date", "perform_search"]);
    // The calculator the export switches on: the first agent's result
    // travels down the chain.
    let input = r#"use evaluate_expression {"expression": "3 * 120"}"#;
    let text = answer(&run(&runtime, &flow, &request(input, &[])).expect("runs"));
    assert!(text.contains("evaluate_expression returned: ") && text.contains("360"), "{text}");
}

#[test]
fn hosts_off_the_allow_list_are_refused_and_the_host_goes_on() {
    let (web, model) = (WebFixture::start(), model());
    let runtime = runtime(Some(&model), Some(egress(&web)));
    let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
    for (url, says) in [
        (format!("http://{BLOCKED_HOST}/x"), format!("`{BLOCKED_HOST}` is not on this host's egress allow-list")),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "`169.254.169.254` is not on this host's egress allow-list".to_owned(),
        ),
        (
            format!("{}/away?to=http://{BLOCKED_HOST}/", web.url()),
            format!("denied: redirect refused: `{BLOCKED_HOST}` is not on this host's egress allow-list"),
        ),
        ("file:///etc/passwd".to_owned(), "Invalid URL: https://file:///etc/passwd".to_owned()),
    ] {
        let input = format!(r#"use fetch_content {{"urls": ["{url}"]}}"#);
        let text = answer(&run(&runtime, &flow, &request(&input, &[])).expect("the run goes on"));
        assert!(text.contains("Error: tool `fetch_content` failed: Error loading documents:"), "{url}: {text}");
        assert!(text.contains(&says), "{url}: {text}");
    }
    let text = answer(
        &run(&runtime, &flow, &request(&format!(r#"use fetch_content {{"urls": ["{}/docs"]}}"#, web.url()), &[]))
            .expect("runs"),
    );
    assert!(text.contains(DOCS_FACT), "the host still serves: {text}");
    assert!(web.seen().iter().all(|s| !s.uri.contains("169.254")));
}

/// The hostile guest's `HttpProbe`: the capability with nothing in between.
fn probe(runtime: &Runtime, limits: Limits, fields: &[(&str, &str)]) -> (Result<String, RunError>, u64) {
    let bytes = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    let node = runtime.load_node(&bytes).expect("loads");
    let invocation = Invocation {
        component: "HttpProbe".into(),
        node_id: "probe".into(),
        display_name: "probe".into(),
        session_id: "s".into(),
        fields: fields.iter().map(|(n, v)| Field { name: (*n).into(), value: Value::Text((*v).into()) }).collect(),
        wanted: vec!["out".into()],
    };
    let mut sandbox = runtime.sandbox(limits);
    let result =
        sandbox.run_node(&node, &invocation).map(|r| match r.expect("the probe never fails").remove(0).value {
            Value::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        });
    (result, sandbox.http_bytes())
}

fn probe_says(runtime: &Runtime, fields: &[(&str, &str)]) -> String {
    probe(runtime, Limits::default(), fields).0.expect("no trap")
}

#[test]
fn the_capability_refuses_hostile_urls_itself() {
    let web = WebFixture::start();
    let runtime = runtime(None, Some(egress(&web)));
    let port = web.addr().port();
    for (url, says) in [
        ("file:///etc/passwd".to_owned(), "denied: `file:` URLs are not fetched; only http and https are".to_owned()),
        (
            format!("http://user@127.0.0.1:{port}/docs"),
            "URLs with user information (`user@host`) are refused".to_owned(),
        ),
        (format!("http://user:pw@127.0.0.1:{port}/docs"), "URLs with user information".to_owned()),
        (
            format!("http://127.0.0.1:{}/", port + 1),
            format!("`127.0.0.1:{}` is not on this host's egress allow-list", port + 1),
        ),
        (format!("http://2130706433:{port}/docs"), "status=200".to_owned()),
        (format!("{}/redirect/5", web.url()), "denied: more than 5 redirects".to_owned()),
        (format!("{}/redirect/4", web.url()), "status=200".to_owned()),
        (
            format!("{}/away?to=http://169.254.169.254/latest", web.url()),
            "denied: redirect refused: `169.254.169.254` is not on this host's egress allow-list".to_owned(),
        ),
        ("gopher://127.0.0.1/".to_owned(), "only http and https".to_owned()),
        ("not a url".to_owned(), "invalid request: `not a url` is not a URL".to_owned()),
    ] {
        let said = probe_says(&runtime, &[("url", &url)]);
        assert!(said.contains(&says), "{url}: {said}");
    }
    assert!(!probe_says(&runtime, &[("url", &format!("http://user:pw@127.0.0.1:{port}/"))]).contains("pw"));
    let said = probe_says(&runtime, &[("url", &format!("{}/echo", web.url())), ("method", "CONNECT")]);
    assert!(said.contains("invalid request: method `CONNECT` is not sent"), "{said}");
}

#[test]
fn loopback_behind_a_name_is_refused_unless_the_operator_allows_private_networks() {
    let web = WebFixture::start();
    let port = web.addr().port();
    let by_name =
        HttpConfig { allow: vec![format!("localhost:{port}").parse().expect("pattern")], ..HttpConfig::default() };
    let runtime = runtime(None, Some(by_name.clone()));
    let said = probe_says(&runtime, &[("url", &format!("http://localhost:{port}/docs"))]);
    assert!(said.contains("`localhost` resolves to") && said.contains("a loopback address"), "{said}");
    assert!(said.contains("--http-allow-private"), "it says how the operator allows it: {said}");
    let said = probe_says(&runtime, &[("url", &format!("{}/docs", web.url()))]);
    assert!(said.contains(&format!("`127.0.0.1:{port}` is not on this host's egress allow-list")), "{said}");
    assert!(web.seen().is_empty(), "nothing reached the server");

    let open = runtime_with(HttpConfig { allow_private: true, ..by_name });
    let said = probe_says(&open, &[("url", &format!("http://localhost:{port}/docs"))]);
    assert!(said.starts_with("status=200") && said.contains(DOCS_FACT), "{said}");
}

fn runtime_with(http: HttpConfig) -> Runtime {
    runtime(None, Some(http))
}

#[test]
fn bodies_over_the_cap_are_refused_and_counted() {
    let web = WebFixture::start();
    let runtime = runtime_with(HttpConfig { max_response_bytes: 1 << 20, ..egress(&web) });
    for path in ["/huge", "/huge-chunked"] {
        let (said, bytes) = probe(&runtime, Limits::default(), &[("url", &format!("{}{path}", web.url()))]);
        let said = said.expect("no trap");
        assert!(
            said.contains("is larger than this host's limit of 1048576 bytes (--http-max-bytes)"),
            "{path}: {said}"
        );
        assert!(bytes <= (1 << 20) + (256 << 10), "{path}: reading stopped at the cap, read {bytes}");
    }
    let (said, bytes) = probe(&runtime, Limits::default(), &[("url", &format!("{}/docs", web.url()))]);
    assert!(said.expect("no trap").starts_with("status=200"));
    assert!(bytes > 0 && bytes < 1024, "the run's fetched bytes are counted: {bytes}");
    let default = runtime_with(egress(&web));
    let said = probe_says(&default, &[("url", &format!("{}/huge", web.url()))]);
    assert!(said.contains(&format!("limit of {} bytes", 4 << 20)), "default cap 4 MiB, body {HUGE_BYTES}: {said}");
}

#[test]
fn slow_servers_are_cut_off_by_the_timeout_and_the_deadline() {
    let web = WebFixture::start();
    let runtime = runtime_with(egress(&web));
    let slow = format!("{}/slow?ms=60000", web.url());
    let said = probe_says(&runtime, &[("url", &slow), ("timeout_ms", "300")]);
    assert!(said.contains("did not answer within 300 ms"), "{said}");

    let started = Instant::now();
    let limits = Limits { deadline: Duration::from_secs(2), ..Limits::default() };
    let (result, _) = probe(&runtime, limits, &[("url", &slow)]);
    match result {
        Ok(said) => assert!(said.contains("did not answer within"), "{said}"),
        Err(error) => assert!(matches!(error, RunError::Deadline(_)), "{error:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the deadline, not the server, ended the call");
    assert!(
        probe_says(&runtime, &[("url", &format!("{}/docs", web.url()))]).starts_with("status=200"),
        "still serving"
    );
}

#[test]
fn framing_and_proxy_headers_never_leave_the_host() {
    let web = WebFixture::start();
    let runtime = runtime_with(egress(&web));
    let said = probe_says(
        &runtime,
        &[
            ("url", &format!("{}/echo", web.url())),
            ("method", "POST"),
            ("body", "hello"),
            ("header", "Host: internal.example"),
            ("header", "Content-Length: 999"),
            ("header", "Transfer-Encoding: chunked"),
            ("header", "Proxy-Authorization: Basic eA=="),
            ("header", "X-Kept: yes"),
        ],
    );
    let echoed: Json = serde_json::from_str(said.split_once("body=").expect("a body").1).expect("echo JSON");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body"], "hello");
    assert_eq!(echoed["headers"]["host"], web.host_port());
    assert_eq!(echoed["headers"]["content-length"], "5");
    assert_eq!(echoed["headers"]["x-kept"], "yes");
    assert!(
        echoed["headers"].get("proxy-authorization").is_none() && echoed["headers"].get("transfer-encoding").is_none()
    );
    let said = probe_says(&runtime, &[("url", &format!("{}/echo", web.url())), ("header", "X-Split: a\r\nHost: evil")]);
    assert!(said.contains("is not a valid header value"), "{said}");
}

#[test]
fn without_configuration_the_web_nodes_say_what_is_missing() {
    let model = model();
    let runtime = runtime(Some(&model), None);
    let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
    let text = answer(
        &run(&runtime, &flow, &request(r#"use fetch_content {"urls": ["http://example.com/"]}"#, &[])).expect("runs"),
    );
    assert!(
        text.contains("the `http` capability is not configured on this host") && text.contains("--http-allow"),
        "{text}"
    );

    let web = WebFixture::start();
    let runtime = runtime_with(HttpConfig { web_search: None, ..egress(&web) });
    let (std, fields) = (std_library(&runtime), vec![field("query", json!("sandflow"))]);
    let error = run_std(&runtime, &std, "web-search", fields).expect_err("no provider");
    assert!(format!("{error:?}").contains("--web-search-url"), "{error:?}");
}

fn std_library(runtime: &Runtime) -> NodeComponent {
    runtime.load_node(&std::fs::read(sandflow_guest_artifacts::STD_NODES).expect("built")).expect("loads")
}

fn field(name: &str, value: Json) -> Field {
    let value = match value {
        Json::String(s) => Value::Text(s),
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => Value::Integer(n.as_i64().unwrap_or_default()),
        other => Value::Json(other.to_string()),
    };
    Field { name: name.into(), value }
}

fn run_std(
    runtime: &Runtime,
    std: &NodeComponent,
    component: &str,
    fields: Vec<Field>,
) -> Result<Vec<sandflow_runtime_host::Output>, sandflow_runtime_host::NodeError> {
    let invocation = Invocation {
        component: component.into(),
        node_id: format!("{component}-1"),
        display_name: component.into(),
        session_id: "s".into(),
        fields,
        wanted: Vec::new(),
    };
    runtime.sandbox(Limits::default()).run_node(std, &invocation).expect("no trap")
}

fn rows(value: &Value) -> Vec<Json> {
    match value {
        Value::Table(t) => t.rows.iter().map(|r| serde_json::from_str(r).expect("JSON row")).collect(),
        other => panic!("expected a table, got {other:?}"),
    }
}

#[test]
fn the_url_node_crawls_within_the_site_and_keeps_html_when_asked() {
    let web = WebFixture::start();
    let runtime = runtime_with(egress(&web));
    let std = std_library(&runtime);
    let outputs = run_std(
        &runtime,
        &std,
        "url",
        vec![
            field("urls", json!(format!("{}/", web.url()))),
            field("max_depth", json!(2)),
            field("urls", json!(format!("{}/style.css", web.url()))),
        ],
    )
    .expect("runs");
    let pages = rows(&outputs[0].value);
    let urls: Vec<&str> = pages.iter().filter_map(|p| p["url"].as_str()).collect();
    assert_eq!(
        urls,
        [format!("{}/", web.url()), format!("{}/docs", web.url())],
        "CSS filtered, the off-site link not followed"
    );
    let Value::Message(raw) = &outputs[1].value else { panic!("raw_results is a message") };
    assert!(raw.text.contains("Welcome") && raw.text.contains(DOCS_FACT), "{}", raw.text);
    assert!(web.seen().iter().all(|s| !s.uri.contains("blocked")));

    let outputs = run_std(
        &runtime,
        &std,
        "url",
        vec![field("urls", json!(format!("{}/docs", web.url()))), field("format", json!("HTML"))],
    )
    .expect("runs");
    assert!(rows(&outputs[0].value)[0]["text"].as_str().is_some_and(|t| t.contains("<script>")));

    let outputs = run_std(
        &runtime,
        &std,
        "url",
        vec![field("urls", json!(format!("{}/docs", web.url()))), field("format", json!("Markdown"))],
    )
    .expect("runs");
    let markdown = rows(&outputs[0].value)[0]["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        markdown.starts_with("# Sandflow & sandboxes\n\n") && markdown.contains("* fuel\n* deadlines"),
        "{markdown}"
    );
}

#[test]
fn api_request_sends_json_and_reads_json() {
    let web = WebFixture::start();
    let runtime = runtime_with(egress(&web));
    let std = std_library(&runtime);
    let outputs = run_std(
        &runtime,
        &std,
        "api-request",
        vec![
            field("url_input", json!(format!("{}/echo?a=1", web.url()))),
            field("method", json!("POST")),
            field("body", json!([{"key": "n", "value": "2"}, {"key": "s", "value": "x"}])),
            field("headers", json!([{"key": "X-Token", "value": "t"}])),
            field("query_params", json!("b=2")),
        ],
    )
    .expect("runs");
    let Value::Data(data) = &outputs[0].value else { panic!("a Data") };
    let data: Json = serde_json::from_str(&data.data).expect("JSON");
    assert_eq!(data["status_code"], 200);
    assert_eq!(data["source"], format!("{}/echo?a=1&b=2", web.url()));
    assert_eq!(data["result"]["method"], "POST");
    assert_eq!(data["result"]["query"], "a=1&b=2");
    assert_eq!(
        serde_json::from_str::<Json>(data["result"]["body"].as_str().expect("body")).ok(),
        Some(json!({"n": 2, "s": "x"}))
    );
    assert_eq!(data["result"]["headers"]["x-token"], "t");
    assert_eq!(data["response_headers"]["content-type"], "application/json");

    let error =
        run_std(&runtime, &std, "api-request", vec![field("url_input", json!(format!("http://{BLOCKED_HOST}/")))])
            .expect_err("refused");
    assert!(format!("{error:?}").contains("not on this host's egress allow-list"), "{error:?}");
    let outputs = run_std(
        &runtime,
        &std,
        "api-request",
        vec![field("url_input", json!(format!("{}/slow?ms=5000", web.url()))), field("timeout", json!(1))],
    )
    .expect("a failed request is Data");
    let Value::Data(data) = &outputs[0].value else { panic!("a Data") };
    let data: Json = serde_json::from_str(&data.data).expect("JSON");
    assert_eq!(data["status_code"], 500);
    assert!(data["error"].as_str().is_some_and(|e| e.contains("did not answer within 1000 ms")), "{data}");
}

#[test]
fn web_search_reads_rss_and_arxiv_is_refused_off_the_list() {
    let web = WebFixture::start();
    let runtime = runtime_with(egress(&web));
    let std = std_library(&runtime);
    let outputs = run_std(
        &runtime,
        &std,
        "web-search",
        vec![field("search_mode", json!("RSS")), field("query", json!(format!("{}/rss", web.url())))],
    )
    .expect("runs");
    let items = rows(&outputs[0].value);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title"], "First & foremost");
    assert_eq!(items[0]["summary"], "<p>One <b>bold</b> story</p>", "RSS mode keeps the feed's text as is");
    assert_eq!(items[1]["published"], "Tue, 02 Jan 2024 00:00:00 GMT");

    let outputs = run_std(&runtime, &std, "arxiv", vec![field("search_query", json!("sandbox"))]).expect("runs");
    let papers = rows(&outputs[0].value);
    let error = papers[0]["error"].as_str().expect("an error row");
    assert!(
        error.starts_with("Request error: denied: `export.arxiv.org` is not on this host's egress allow-list"),
        "{error}"
    );
}

/// What the `http` capability received is billed: the run's usage record,
/// written to the outbox before the answer leaves, carries `http_bytes`,
/// and a run that made no request leaves the field out (so a control plane
/// that predates it still takes the record).
#[test]
fn the_usage_record_counts_the_bytes_a_run_fetched() {
    let researcher = Researcher::start();
    for input in
        [format!(r#"use fetch_content {{"urls": ["{}/docs"]}}"#, researcher.web.url()), "just answer".to_owned()]
    {
        let status = researcher.io.block_on(researcher.ask(&input)).expect("infallible").status();
        assert_eq!(status, axum::http::StatusCode::OK);
    }
    let records = researcher.usage_records();
    assert_eq!(records.len(), 2);
    let fetched = records[0]["http_bytes"].as_u64().expect("http_bytes on the fetching run");
    let page = researcher.web.seen().iter().filter(|s| s.uri == "/docs").count();
    assert_eq!(page, 1, "one page fetched");
    assert!(fetched > DOCS_FACT.len() as u64, "at least the page's text: {fetched}");
    assert!(fetched < 64 << 10, "the page, not more: {fetched}");
    assert!(records[1].get("http_bytes").is_none(), "no request, no field: {}", records[1]);
}

/// A caller that hangs up while its run waits for a slow page is charged
/// all the same: the run goes on to its end, leaves its usage record,
/// counts against the tenant's quota and shows in the run metrics.
#[test]
fn a_run_whose_caller_hung_up_still_counts() {
    let researcher = Researcher::start();
    researcher
        .plane
        .quotas
        .set("acme", sandflow_runtime_host::api::quotas::Quota { runs: Some(1), ..Default::default() });
    let slow = format!(r#"use fetch_content {{"urls": ["{}/slow?ms=1500"]}}"#, researcher.web.url());
    let hung_up =
        researcher.io.block_on(async { tokio::time::timeout(Duration::from_millis(300), researcher.ask(&slow)).await });
    assert!(hung_up.is_err(), "the run was still waiting for the page");
    let started = Instant::now();
    while researcher.usage_records().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "the run never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = researcher.io.block_on(researcher.ask("just answer")).expect("infallible");
    assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS, "the run that was hung up on counted");
    let metrics = researcher.io.block_on(researcher.metrics());
    assert!(metrics.contains("sandflow_runs_total{outcome=\"completed\"} 1"), "{metrics}");
}

/// simple-agent.json as agent `researcher-flow` of tenant `acme`, with a
/// model, the web fixture behind its tools, and a usage outbox.
struct Researcher {
    web: WebFixture,
    _model: Model,
    plane: std::sync::Arc<sandflow_runtime_host::api::DataPlane>,
    key: String,
    outbox: tempfile::TempDir,
    io: tokio::runtime::Runtime,
}

impl Researcher {
    fn start() -> Self {
        use sandflow_runtime_host::api::{Agent, DataPlane, DataPlaneConfig};
        use sandflow_runtime_host::{Secrets, usage::Outbox};
        let (web, model) = (WebFixture::start(), model());
        let runtime = runtime(Some(&model), Some(egress(&web)));
        let flow = load(&runtime, &shared_flow("starter/simple-agent.json"));
        let outbox = tempfile::tempdir().expect("temp dir");
        let usage = std::sync::Arc::new(Outbox::open(outbox.path()).expect("outbox"));
        let plane = std::sync::Arc::new(DataPlane::new(runtime, DataPlaneConfig::default()).with_usage(usage));
        plane.keys.add_secret(support::KID, b"web-test-secret");
        plane.agents.provision(Agent {
            id: "researcher".into(),
            tenant: "acme".into(),
            flow_id: "researcher-flow".into(),
            endpoint_name: None,
            flow,
            limits: Limits::default(),
            secrets: Secrets::default(),
            persona: None,
            widget_origins: Vec::new(),
        });
        let key = support::run_key("acme", b"web-test-secret");
        let io = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { web, _model: model, plane, key, outbox, io }
    }

    /// Runs the agent on `input` through the Langflow API.
    fn ask(&self, input: &str) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> {
        use tower::ServiceExt as _;
        let request = axum::http::Request::post("/api/v1/run/researcher-flow")
            .header("content-type", "application/json")
            .header("x-api-key", &self.key)
            .body(axum::body::Body::from(json!({"input_value": input}).to_string()))
            .expect("request");
        sandflow_runtime_host::api::router(self.plane.clone()).oneshot(request)
    }

    /// What `GET /metrics` says.
    async fn metrics(&self) -> String {
        use tower::ServiceExt as _;
        let request = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).expect("request");
        let response =
            sandflow_runtime_host::api::router(self.plane.clone()).oneshot(request).await.expect("infallible");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    /// The usage records in the outbox, oldest first.
    fn usage_records(&self) -> Vec<Json> {
        let segment = std::fs::read_dir(self.outbox.path())
            .expect("outbox dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"));
        let Some(segment) = segment else { return Vec::new() };
        std::fs::read_to_string(segment)
            .expect("read")
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON line"))
            .collect()
    }
}
