//! Four Agent starter flows end to end, each exactly as exported (plus the
//! tweaks a user would set), run through the data plane's
//! `POST /api/v1/run/{flow}` on a host with every capability they use: the
//! test model server (OpenAI and Anthropic), the test web (pages and
//! SearXNG-style search), tenant file storage, chat memory and a document
//! index. Each test checks the answer and what reached the model: the
//! tools offered to the agent and the tool results fed back.
//!
//! - Content Aggregator: Web Search's feed items through Batch Run, Parser
//!   and the Agent into Save To File, in the tenant's storage.
//! - Market Research: the Agent searches as a tool; Structured Output turns
//!   its text into the export's schema; Parser formats the profile.
//! - Langflow Assistant: the Agent searches the tenant's files (Directory
//!   into DataFrame Keyword Search) and fetches a docs page (URL).
//! - Custom Component Generator: the Agent fetches with URL and recalls
//!   with Memory Base; the session's history reaches the model.
//! - The pre-1.0 Vector Store exports: a loaded, split and ingested page
//!   searched by the agent through its one tool.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::api::DataPlane;
use sandflow_runtime_host::doc_index::{DocIndex, NewChunk, Scope, SearchRequest};
use sandflow_runtime_host::{
    CapabilityConfig, FileStore, FilesConfig, FilesScope, HttpConfig, Limits, LlmConfig, MemoryStore, Secrets,
};
use sandflow_web_fixture::{BLOCKED_HOST, DOCS_FACT, WebFixture};
use serde_json::{Value as Json, json};
use std::sync::Arc;

mod support;

const SECRET: &[u8] = b"agent-flows-secret";
const TENANT: &str = "acme";

/// A data plane with every capability these flows use, and the services
/// behind it.
struct World {
    plane: Arc<DataPlane>,
    model: ModelServer,
    web: WebFixture,
    files: FileStore,
    index: DocIndex,
    io: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        Self::with_http(|_, _| {})
    }

    /// A world whose egress policy `adjust` changes (routes, allow-list).
    fn with_http(adjust: impl FnOnce(&mut HttpConfig, &WebFixture)) -> Self {
        let io = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let model = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
        let web = WebFixture::start();
        let files = FileStore::open(FilesConfig {
            root: dir.path().join("files"),
            max_file_bytes: 1 << 20,
            max_tenant_bytes: 1 << 30,
        })
        .expect("file store opens");
        let index_url = DocIndex::sqlite_url_in(dir.path());
        let index = io.block_on(DocIndex::open(&index_url)).expect("index opens");
        let providers = [
            format!("OpenAI=openai,{}/v1,gpt-test", model.url()),
            format!("Anthropic=anthropic,{}/v1,claude-test", model.url()),
        ];
        let capabilities = CapabilityConfig {
            llm: LlmConfig { providers: providers.iter().map(|p| p.parse().expect("provider")).collect() },
            memory: Some(MemoryStore::open_blocking("sqlite::memory:").expect("memory opens")),
            http: Some({
                let mut http = HttpConfig {
                    allow: vec![web.host_port().parse().expect("pattern")],
                    web_search: Some(format!("{}/search", web.url()).parse().expect("search URL")),
                    ..HttpConfig::default()
                };
                adjust(&mut http, &web);
                http
            }),
            files: Some(files.clone()),
            documents: Some(sandflow_runtime_host::open_documents_blocking(&index_url).expect("index opens")),
            ..CapabilityConfig::default()
        };
        let plane = support::data_plane(capabilities, SECRET);
        Self { plane: Arc::new(plane), model, web, files, index, io, _dir: dir }
    }

    /// Provisions the shared starter flow `name` as agent `name` of the tenant.
    fn provision(&self, name: &str) {
        self.provision_shared(&format!("starter/{name}.json"), name);
    }

    /// Provisions the shared export at `path` as agent `agent` of the tenant.
    fn provision_shared(&self, path: &str, agent: &str) {
        let flow = support::shared_flow(path);
        support::provision(&self.plane, TENANT, agent, &flow, Limits::default(), Secrets::default());
    }

    /// `POST /api/v1/run/{agent}` as Langflow's API is called.
    fn run(&self, agent: &str, input: &str, tweaks: Json) -> Json {
        let key = support::run_key(TENANT, SECRET);
        let body = json!({"input_value": input, "input_type": "chat", "output_type": "chat", "tweaks": tweaks, "session_id": "s1"});
        let request = Request::post(format!("/api/v1/run/{agent}"))
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, body) = self.io.block_on(support::send(&self.plane, request));
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn requests(&self, path: &str) -> Vec<Json> {
        self.model.requests().into_iter().filter(|r| r.path == path).map(|r| r.body).collect()
    }

    fn seed(&self, agent: &str, document: &str, text: &str) {
        let chunk = NewChunk { metadata: json!({"source": document}), ..NewChunk::text(text) };
        self.io
            .block_on(self.index.replace_document(&Scope::new(TENANT, agent), "", document, &[chunk], None))
            .expect("seeded");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.io.block_on(self.index.close());
    }
}

fn answer(body: &Json) -> String {
    body["outputs"][0]["outputs"][0]["results"]["message"]["text"].as_str().expect("an answer").to_owned()
}

fn scope(agent: &str) -> FilesScope {
    FilesScope { tenant: TENANT.into(), agent: agent.into() }
}

/// The text content of an OpenAI chat message.
fn content(message: &Json) -> String {
    message["content"].as_str().unwrap_or_default().to_owned()
}

/// Names of the tools offered in OpenAI requests, sorted.
fn openai_tools(requests: &[Json]) -> Vec<String> {
    support::openai_tool_names(requests)
}

/// What the tools answered, in OpenAI requests, in order and once each.
fn openai_tool_results(requests: &[Json]) -> Vec<String> {
    let mut seen = Vec::new();
    for message in requests.iter().flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default()) {
        if message["role"] == "tool" && !seen.contains(&content(&message)) {
            seen.push(content(&message));
        }
    }
    seen
}

// ------------------------------------------------------------ Content Aggregator

#[test]
fn content_aggregator_saves_the_digest_of_the_feed_into_the_tenants_files() {
    let world = World::new();
    world.provision("content-aggregator");
    // The export searches Google News, which no test reaches; a user
    // switches Web Search to RSS and gives a feed (the fixture's) instead.
    let feed = format!("{}/rss", world.web.url());
    let body = world.run("content-aggregator", &feed, json!({"WebSearch-ca": {"search_mode": "RSS"}}));
    let digest = answer(&body);

    let sent = world.requests("/v1/chat/completions");
    assert_eq!(sent.len(), 3, "one Batch Run call per feed item, then the agent: {sent:?}");
    let batch_system = "Write one concise, neutral sentence capturing the key point of this news item. Output only \
                        the sentence, with no preamble.";
    for (request, summary) in sent[..2].iter().zip(["<p>One <b>bold</b> story</p>", "Two"]) {
        let messages = request["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!((messages[0]["role"].as_str(), content(&messages[0]).as_str()), (Some("system"), batch_system));
        assert_eq!((messages[1]["role"].as_str(), content(&messages[1]).as_str()), (Some("user"), summary));
    }
    // Parser's pattern over Batch Run's rows is the agent's input.
    let parsed = "## First & foremost\nYou said: <p>One <b>bold</b> story</p>\n_Mon, 01 Jan 2024 00:00:00 GMT_ - \
                  http://example.invalid/1\n\n## Second\nYou said: Two\n_Tue, 02 Jan 2024 00:00:00 GMT_ - \
                  http://example.invalid/2\n";
    let agent = &sent[2];
    assert!(agent.get("tools").is_none(), "the export gives its agent no tools: {agent}");
    let messages: Vec<(&str, String)> = agent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["role"].as_str().unwrap_or_default(), content(m)))
        .collect();
    assert!(messages[0].0 == "system" && messages[0].1.starts_with("You are a content aggregator."), "{messages:?}");
    // The session's history is the user's message (Chat Input stored it);
    // Parser's text, the agent's input, comes last.
    assert_eq!(messages[1..], [("user", feed.clone()), ("user", parsed.to_owned())]);
    assert_eq!(digest, format!("You said: {parsed}"));

    // Chat Output's message, saved as JSON in the agent's own storage.
    let saved = world.files.read(&scope("content-aggregator"), "news-aggregated.json").expect("saved");
    let saved: Json = serde_json::from_slice(&saved.content).expect("JSON");
    assert_eq!(saved, json!({"message": digest}));
    assert!(world.web.seen().iter().any(|s| s.uri == "/rss"), "the feed was read");

    // As exported, Web Search asks Google News, which this host does not
    // allow: its error row (Langflow's shape) says how the operator allows it.
    let digest = answer(&world.run("content-aggregator", "artificial intelligence", json!({})));
    assert!(digest.starts_with("You said: ## Error\nYou said: "), "{digest}");
    assert!(
        digest.contains("`news.google.com` is not on this host's egress allow-list")
            && digest.contains("--http-allow news.google.com"),
        "{digest}"
    );
}

#[test]
fn content_aggregator_searches_google_news_as_exported_through_an_operator_route() {
    // The operator sends Google News to a mirror (the fixture): the flow
    // runs as exported, News mode and all.
    let world = World::with_http(|http, web| {
        http.routes.push(format!("https://news.google.com={}/news", web.url()).parse().expect("route"));
    });
    world.provision("content-aggregator");
    let digest = answer(&world.run("content-aggregator", "artificial intelligence", json!({})));
    assert!(
        world
            .web
            .seen()
            .iter()
            .any(|s| s.uri == "/news/rss/search?q=artificial+intelligence&hl=en-US&gl=US&ceid=US:en"),
        "Web Search asked Google News for the user's query: {:?}",
        world.web.seen().iter().map(|s| &s.uri).collect::<Vec<_>>()
    );
    // Both items went through Batch Run, Parser and the Agent.
    let sent = world.requests("/v1/chat/completions");
    assert_eq!(sent.len(), 3, "{sent:?}");
    // News mode gives each item's summary as text, its HTML taken out.
    assert!(digest.starts_with("You said: ## First & foremost\nYou said: One bold story\n"), "{digest}");
    assert!(digest.contains("## Second\nYou said: Two\n"), "{digest}");
}

// ---------------------------------------------- Pre-1.0 Vector Store agents

#[test]
fn pre_1_0_vector_store_agents_search_the_page_they_loaded() {
    // The export loads a page of Langflow's docs; the operator routes that
    // site to the fixture.
    let world = World::with_http(|http, web| {
        http.routes.push(format!("http://docs.langflow.org={}", web.url()).parse().expect("route"));
    });
    for export in ["vector-store", "vector-store-grouped"] {
        world.provision_shared(&format!("legacy/{export}.json"), export);
        // VectorStoreInfo named the store `UploadExamples`: the agent's one tool.
        let input = r#"use UploadExamples {"search_query": "how do I share an example?"}"#;
        let text = answer(&world.run(export, input, json!({})));
        assert!(text.starts_with("UploadExamples returned: "), "{export}: {text}");
        // Split Text cut the page at the export's separator, `.`.
        let fact = sandflow_web_fixture::UPLOAD_FACT.trim_end_matches('.');
        assert!(text.contains(fact), "{export}: the loaded page was searched: {text}");
        let sent = world.requests("/v1/chat/completions");
        let first = &sent[sent.len() - 2];
        assert_eq!(openai_tools(std::slice::from_ref(first)), ["UploadExamples"], "{export}");
        assert_eq!(first["model"], "gpt-3.5-turbo-0613", "{export}: ChatOpenAI's model");
        let system = content(&first["messages"][0]);
        assert!(system.starts_with("You answer questions about UploadExamples: "), "{export}: {system}");
    }
    // What the page said went into the agent's own part of the tenant's
    // index, in the export's collection.
    let search = SearchRequest::lexical("langflow", "share example", 5);
    let found = world.io.block_on(world.index.search(&Scope::new(TENANT, "vector-store"), &search));
    assert!(found.expect("search").iter().any(|hit| hit.text.contains("pull request")));
    let elsewhere = world.io.block_on(world.index.search(&Scope::new(TENANT, "content-aggregator"), &search));
    assert!(elsewhere.expect("search").is_empty());
}

// --------------------------------------------------------------- Market Research

#[test]
fn market_research_searches_then_structures_the_agents_findings() {
    let world = World::new();
    world.provision("market-research");
    let body = world.run("market-research", r#"use perform_search {"query": "sandflow pricing"}"#, json!({}));
    let report = answer(&body);

    let sent = world.requests("/v1/chat/completions");
    assert_eq!(sent.len(), 3, "the agent's tool call, its answer, Structured Output: {sent:?}");
    // The export also switches the built-in calculator and current date on.
    assert_eq!(openai_tools(&sent[..2]), ["evaluate_expression", "get_current_date", "perform_search"]);
    let search = sent[0]["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["function"]["name"] == "perform_search").cloned())
        .expect("perform_search offered");
    assert_eq!(search["function"]["parameters"]["properties"]["query"]["type"], "string");

    let results = openai_tool_results(&sent);
    assert_eq!(results.len(), 1, "{results:?}");
    let rows: Json = serde_json::from_str(&results[0]).expect("the search answers its rows as JSON");
    assert_eq!(rows[0]["title"], "Sandflow docs");
    assert!(rows[0]["content"].as_str().is_some_and(|c| c.contains(DOCS_FACT)), "{rows}");
    assert!(rows[1]["content"].as_str().is_some_and(|c| c.contains(BLOCKED_HOST)), "{rows}");
    let searched = world.web.seen().into_iter().find(|s| s.uri.starts_with("/search")).expect("searched");
    assert_eq!(searched.uri, "/search?q=sandflow+pricing&format=json");

    // Structured Output gets the agent's findings and the export's schema.
    let findings = format!("perform_search returned: {}", results[0]);
    let structured = &sent[2];
    let messages = structured["messages"].as_array().expect("messages");
    assert_eq!(content(messages.last().expect("a message")), findings);
    let schema = &structured["response_format"]["json_schema"]["schema"];
    let row = &schema["properties"]["objects"]["items"];
    assert_eq!(row["properties"]["cheapestPlan"]["type"], "string", "the export's type: {schema}");
    assert_eq!(row["properties"]["hasFreeTrial"]["type"], "boolean", "{schema}");
    assert_eq!(row["properties"]["pricingTiers"]["items"]["type"], "string", "`multiple`: {schema}");

    // The model fills strings with its input and booleans with true;
    // Parser formats the row as Python would.
    assert!(report.starts_with("# Company Profile\n\n## Basic Information\n\n"), "{report}");
    assert!(report.contains(&format!("- **Domain:** {findings}\n")), "{report}");
    assert!(report.contains(&format!("- **Cheapest Plan:** {findings}\n")), "{report}");
    assert!(report.contains("- **Has API:** True\n"), "{report}");
    assert!(report.contains("- **Has Free Trial:** True\n"), "{report}");
    assert!(report.contains("- **Has Enterprise Plan:** True\n"), "{report}");
}

// ------------------------------------------------------------ Langflow Assistant

/// Anthropic Messages requests: names of the tools offered, sorted.
fn anthropic_tools(requests: &[Json]) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter()
        .flat_map(|r| r["tools"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What the tools answered, in Anthropic requests, in order and once each.
fn anthropic_tool_results(requests: &[Json]) -> Vec<String> {
    let mut seen = Vec::new();
    for message in requests.iter().flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default()) {
        for block in message["content"].as_array().cloned().unwrap_or_default() {
            if block["type"] == "tool_result" {
                let text = match &block["content"] {
                    Json::String(s) => s.clone(),
                    Json::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                    _ => String::new(),
                };
                if !seen.contains(&text) {
                    seen.push(text);
                }
            }
        }
    }
    seen
}

#[test]
fn langflow_assistant_searches_the_tenants_components_and_fetches_the_docs() {
    let world = World::new();
    world.provision("langflowassistant");
    // Directory reads the export's path inside the agent's own storage.
    let components = "src/lfx/src/lfx/components";
    let agent = scope("langflowassistant");
    let composio = "class ComposioAPIComponent(Component):\n    display_name = \"Composio Tools\"\n";
    world.files.write(&agent, &format!("{components}/composio/composio_api.py"), composio.as_bytes()).expect("writes");
    world.files.write(&agent, &format!("{components}/openai/openai_chat.py"), b"class OpenAIModel: ...\n").expect("w");
    world.files.write(&agent, &format!("{components}/composio/README.md"), b"composio notes").expect("writes");
    world.files.write(&scope("other-agent"), &format!("{components}/composio/theirs.py"), b"other").expect("writes");

    let input = format!(
        r#"use component_code_search {{"column": "file_path", "keywords": ["composio"]}} and use fetch_content {{"urls": ["{}/docs"]}} and use Call_Agent_message_response {{"input_value": "write a hello component"}}"#,
        world.web.url()
    );
    let body = world.run("langflowassistant", &input, json!({}));
    let text = answer(&body);

    let sent = world.requests("/v1/messages");
    assert_eq!(sent.len(), 3, "the tool calls, the sub-agent, then the answer: {sent:?}");
    for request in &sent {
        assert_eq!(request["model"], "claude-sonnet-4-5-20250929", "the export's model");
    }
    let system = |r: &Json| r["system"].as_str().unwrap_or_default().to_owned();
    assert!(system(&sent[0]).starts_with("# Role\nYou are the Langflow Official Support Agent"), "{}", sent[0]);
    assert_eq!(
        anthropic_tools(&sent[..1]),
        [
            "Call_Agent_json_response",
            "Call_Agent_message_response",
            "component_code_search",
            "evaluate_expression",
            "fetch_content",
            "get_current_date"
        ],
        "the sub-agent's two outputs, the keyword search, URL and the built-in calculator and date"
    );
    // The sub-agent runs with its own prompt and tools (the built-in
    // calculator and date), the session's history (the user's question, stored by
    // Chat Input; as in Langflow, only the agent's own input message is
    // left out of its history) and the main agent's argument as its input:
    // two user turns, which Anthropic's API takes as one message.
    let sub = &sent[1];
    assert!(system(sub).starts_with("You are a helpful assistant to create Langflow custom components."), "{sub}");
    assert_eq!(
        sub["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": input},
            {"type": "text", "text": "write a hello component"},
        ]}]),
        "{sub}"
    );
    assert_eq!(anthropic_tools(&sent[1..2]), ["evaluate_expression", "get_current_date"]);

    let results = anthropic_tool_results(&sent);
    assert_eq!(results.len(), 3, "{results:?}");
    let found: Json = serde_json::from_str(&results[0]).expect("keyword search answers rows as JSON");
    let found = found.as_array().expect("rows");
    assert_eq!(found.len(), 1, "only the agent's .py file matches: {found:?}");
    assert_eq!(found[0]["file_path"], format!("{components}/composio/composio_api.py"));
    assert_eq!(found[0]["text"], composio);
    let pages: Json = serde_json::from_str(&results[1]).expect("URL answers rows as JSON");
    assert!(pages[0]["text"].as_str().is_some_and(|t| t.contains(DOCS_FACT)), "{pages}");
    // The test model echoes the last user message, its text blocks joined.
    let sub_answer = format!("You said: {input}write a hello component");
    assert_eq!(results[2], sub_answer, "the sub-agent's answer");

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("component_code_search returned: ") && lines[0].contains("ComposioAPIComponent"),
        "{text}"
    );
    assert!(lines[1].starts_with("fetch_content returned: ") && lines[1].contains(DOCS_FACT), "{text}");
    assert_eq!(lines[2], format!("Call_Agent_message_response returned: {sub_answer}"));
}

// ---------------------------------------------------- Custom Component Generator

#[test]
fn custom_component_generator_fetches_recalls_and_remembers_the_session() {
    let world = World::new();
    world.provision("custom-component-generator");
    let convention = "Langflow components subclass Component and declare inputs and outputs.";
    world.seed("custom-component-generator", "conventions.md", convention);
    world.seed("other-agent", "secret.md", "Langflow components of another agent.");

    let first = format!(
        r#"use retrieve_memory {{"search_query": "Langflow components"}} and use fetch_content {{"urls": ["{}/docs"]}}"#,
        world.web.url()
    );
    let text = answer(&world.run("custom-component-generator", &first, json!({})));
    let sent = world.requests("/v1/chat/completions");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(openai_tools(&sent), ["fetch_content", "retrieve_memory"]);
    let results = openai_tool_results(&sent);
    assert_eq!(results.len(), 2, "{results:?}");
    let memories: Json = serde_json::from_str(&results[0]).expect("Memory Base answers rows as JSON");
    assert_eq!(memories.as_array().map(Vec::len), Some(1), "{memories}");
    assert_eq!(memories[0]["content"], convention);
    assert!(results[1].contains(DOCS_FACT), "{}", results[1]);
    assert!(text.contains(&format!("retrieve_memory returned: {}", results[0])), "{text}");
    assert!(text.contains(DOCS_FACT), "{text}");

    // The next turn of the session carries the first one to the model.
    let text = answer(&world.run("custom-component-generator", "now add a docstring", json!({})));
    assert_eq!(text, "You said: now add a docstring");
    let sent = world.requests("/v1/chat/completions");
    assert_eq!(sent.len(), 3);
    let messages = sent[2]["messages"].as_array().expect("messages");
    let turns: Vec<(&str, String)> =
        messages.iter().map(|m| (m["role"].as_str().unwrap_or_default(), content(m))).collect();
    assert!(turns[0].0 == "system" && turns[0].1.starts_with("You are a Langflow custom-component generator."));
    assert_eq!(
        turns[1..],
        [("user", first.clone()), ("assistant", sent_answer(&sent)), ("user", "now add a docstring".into())]
    );
}

/// The agent's answer to the first turn, as the model produced it.
fn sent_answer(sent: &[Json]) -> String {
    let results = openai_tool_results(&sent[..2]);
    let names = ["retrieve_memory", "fetch_content"];
    names.iter().zip(results).map(|(n, r)| format!("{n} returned: {r}")).collect::<Vec<_>>().join("\n")
}
