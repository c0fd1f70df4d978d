//! The `retrieval` and `embeddings` capabilities, on a document index in
//! SQLite and in a fresh PostgreSQL database each, with the test suite's
//! model server (chat and embeddings) over HTTP: Document Q&A and Vector
//! Store RAG answer from the run's tenant's chunks (the retrieved text
//! reaches the model and its answer), never from another tenant's or
//! agent's; Vector Store RAG ranks hybrid (the query is embedded and its
//! tokens counted); the vector-store node ingests into the run's scope
//! (with embeddings) and searches it; Memory Chatbot's agent calls Memory
//! Base as a tool; a host without an index says which flag is missing.
//!
//! PostgreSQL is reached at `SANDFLOW_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`; a test fails if it is not
//! there, since both stores must be tested.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::doc_index::{DocIndex, NewChunk, Scope, SearchRequest};
use sandflow_runtime_host::{
    CapabilityConfig, Field, FlowComponent, Invocation, Limits, LlmConfig, RunContext, RunError, RunOutcome,
    RunRequest, Runtime, RuntimeConfig, Value,
};
use serde_json::{Value as Json, json};
use sqlx::{Connection, Executor};
use std::path::Path;

/// The services of one test: a model server, and a document index with
/// its own connection pool for seeding and checking (on the test's
/// runtime, which outlives the test's runs).
struct World {
    model: ModelServer,
    index: DocIndex,
    url: String,
    io: tokio::runtime::Runtime,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl World {
    fn new(postgres: bool) -> Self {
        let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let model = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
        let (url, postgres, dir) = if postgres {
            let admin = std::env::var("SANDFLOW_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let name = format!("retrieval_{}", uuid::Uuid::new_v4().simple());
            io.block_on(admin_sql(&admin, &format!("CREATE DATABASE {name}")));
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
            (format!("{base}/{name}"), Some((admin, name)), None)
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            (DocIndex::sqlite_url_in(dir.path()), None, Some(dir))
        };
        let index = io.block_on(DocIndex::open(&url)).expect("index opens");
        Self { model, index, url, io, postgres, _dir: dir }
    }

    /// A runtime with the model server as provider `OpenAI` and this
    /// world's index (its own pool, on the capabilities' I/O runtime).
    fn runtime(&self, with_index: bool) -> Runtime {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
        let provider = format!("OpenAI=openai,{}/v1,gpt-test", self.model.url());
        let capabilities = CapabilityConfig {
            llm: LlmConfig { providers: vec![provider.parse().expect("provider spec")] },
            documents: with_index
                .then(|| sandflow_runtime_host::open_documents_blocking(&self.url).expect("index opens")),
            ..CapabilityConfig::default()
        };
        Runtime::new(&RuntimeConfig {
            max_instances: 32,
            cache_dir: Some(cache),
            capabilities,
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    }

    fn seed(&self, scope: &Scope, collection: &str, document: &str, texts: &[&str]) {
        let chunks: Vec<NewChunk> =
            texts.iter().map(|t| NewChunk { metadata: json!({"source": document}), ..NewChunk::text(*t) }).collect();
        self.io.block_on(self.index.replace_document(scope, collection, document, &chunks, None)).expect("seeded");
    }

    fn search(&self, scope: &Scope, query: &str) -> Vec<String> {
        let hits = self.io.block_on(self.index.search(scope, &SearchRequest::lexical("", query, 10))).expect("search");
        hits.into_iter().map(|h| h.text).collect()
    }

    fn requests(&self, path: &str) -> Vec<Json> {
        self.model.requests().into_iter().filter(|r| r.path == path).map(|r| r.body).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.io.block_on(self.index.close());
        if let Some((admin, name)) = &self.postgres {
            self.io.block_on(admin_sql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
        }
    }
}

async fn admin_sql(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for these tests at {url} (set SANDFLOW_TEST_POSTGRES_URL): {e}")
    });
    conn.execute(sql).await.expect(sql);
    conn.close().await.ok();
}

fn shared_flow(path: &str) -> FlowComponent2 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path);
    let source = std::fs::read(path).expect("shared flow");
    let (artifact, _) = compile(&source, &CompileOptions::default()).expect("compiles");
    FlowComponent2(artifact.component)
}

/// A compiled flow, loaded into a runtime on demand.
struct FlowComponent2(Vec<u8>);

impl FlowComponent2 {
    fn load(&self, runtime: &Runtime) -> FlowComponent {
        runtime.load_flow(&self.0).expect("links")
    }
}

fn context(tenant: &str, agent: &str) -> RunContext {
    RunContext { tenant: tenant.into(), agent: agent.into(), ..RunContext::default() }
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

const REFUNDS: &str = "Refunds are granted within 30 days of purchase when the receipt is shown.";
const SHIPPING: &str = "Shipping to Europe takes five working days.";
const OTHER_TENANT: &str = "Tenant B's refund policy: refunds only as store credit, code 4242.";
const OTHER_AGENT: &str = "Agent two's refund note: refunds need approval from the manager.";

/// Tenant A's agent 1 holds the refund and shipping chunks; tenant B's
/// agent 1 and tenant A's agent 2 hold refund chunks of their own.
fn seed_tenants(world: &World) {
    world.seed(&Scope::new("tenant-a", "agent-1"), "", "policy.md", &[REFUNDS, SHIPPING]);
    world.seed(&Scope::new("tenant-b", "agent-1"), "", "policy.md", &[OTHER_TENANT]);
    world.seed(&Scope::new("tenant-a", "agent-2"), "", "policy.md", &[OTHER_AGENT]);
}

fn answers_from_the_tenants_documents(postgres: bool, flow_path: &str) {
    let world = World::new(postgres);
    seed_tenants(&world);
    let runtime = world.runtime(true);
    let flow = shared_flow(flow_path).load(&runtime);
    let outcome = run(&runtime, &flow, "What is the refund policy?", context("tenant-a", "agent-1")).expect("runs");
    let text = answer(&outcome);
    // The model echoes its input: the prompt holds the retrieved chunk.
    assert!(text.starts_with("You said: "), "{text}");
    assert!(text.contains(REFUNDS), "{text}");
    assert!(text.contains("What is the refund policy?"), "{text}");
    for foreign in [OTHER_TENANT, OTHER_AGENT, "4242"] {
        assert!(!text.contains(foreign), "{foreign} leaked: {text}");
    }
    let chats = world.requests("/v1/chat/completions");
    let sent = chats.last().expect("the model was called").to_string();
    assert!(sent.contains("Refunds are granted within 30 days"), "{sent}");
    assert!(!sent.contains("4242") && !sent.contains("Agent two"), "{sent}");
    // The other tenant, asking the same, gets only its own chunk.
    let other = run(&runtime, &flow, "What is the refund policy?", context("tenant-b", "agent-1")).expect("runs");
    let text = answer(&other);
    assert!(text.contains(OTHER_TENANT) && !text.contains(REFUNDS) && !text.contains(OTHER_AGENT), "{text}");
    // A tweak naming another knowledge base cannot leave the run's scope.
    let request = RunRequest {
        input_value: Some("refund".into()),
        session_id: "s1".into(),
        tweaks: serde_json::from_value(json!({"Knowledge": {"knowledge_base": "tenant-b"}})).expect("tweaks"),
        ..RunRequest::default()
    };
    // Refused or answered from the run's own scope; never the other's.
    match runtime.sandbox_for(Limits::default(), context("tenant-a", "agent-1")).run_flow(&flow, &request) {
        Ok(outcome) => assert!(!answer(&outcome).contains("4242")),
        Err(error) => assert!(!error.to_string().contains("4242"), "{error}"),
    }
    // The export switches the Agent's calculator on: the model can use it.
    let input = r#"use evaluate_expression {"expression": "30 * 24"}"#;
    let outcome = run(&runtime, &flow, input, context("tenant-a", "agent-1")).expect("runs");
    let text = answer(&outcome);
    assert!(text.starts_with("evaluate_expression returned: ") && text.contains("720"), "{text}");
}

fn document_qanda(postgres: bool) {
    answers_from_the_tenants_documents(postgres, "starter/document-qanda.json");
}

fn vector_store_rag(postgres: bool) {
    answers_from_the_tenants_documents(postgres, "starter/vector-store-rag.json");
}

fn queries_are_embedded_and_counted(postgres: bool) {
    let world = World::new(postgres);
    seed_tenants(&world);
    let runtime = world.runtime(true);
    let flow = shared_flow("starter/vector-store-rag.json").load(&runtime);
    let outcome = run(&runtime, &flow, "refund policy", context("tenant-a", "agent-1")).expect("runs");
    // The query is embedded, then the scope's chunks that have no vector
    // of that model yet (the seeded ones), once.
    let embeddings = world.requests("/v1/embeddings");
    assert_eq!(embeddings.len(), 2, "{embeddings:?}");
    assert_eq!(embeddings[0]["input"], json!(["refund policy"]));
    assert_eq!(embeddings[0]["model"], "text-embedding-3-small");
    assert_eq!(embeddings[1]["input"], json!([REFUNDS, SHIPPING]));
    // Their tokens count into the run's usage with the chat model's (a
    // word a token, every message).
    let words = |text: &str| u64::from(sandflow_model_server::script::tokens(text));
    let chat_tokens: u64 = world
        .requests("/v1/chat/completions")
        .iter()
        .flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default())
        .map(|m| words(m["content"].as_str().unwrap_or_default()))
        .sum();
    assert_eq!(outcome.tokens.input, chat_tokens + 2 + words(REFUNDS) + words(SHIPPING), "{:?}", outcome.tokens);
    // The next search embeds only its query; the other tenant's chunks
    // were never embedded for this one.
    run(&runtime, &flow, "shipping time", context("tenant-a", "agent-1")).expect("runs");
    assert_eq!(world.requests("/v1/embeddings").len(), 3);
    let pending = world.io.block_on(world.index.unembedded(
        &Scope::new("tenant-b", "agent-1"),
        "",
        "OpenAI/text-embedding-3-small",
        10,
    ));
    assert_eq!(pending.expect("pending").len(), 1);
    assert!(answer(&outcome).contains(REFUNDS));
}

/// Runs one node of the standard library in a sandbox for `context`.
fn run_node(
    runtime: &Runtime,
    context: RunContext,
    component: &str,
    fields: Vec<(&str, Value)>,
) -> Vec<(String, Value)> {
    let library = runtime.load_node(sandflow_guest_artifacts::STD_NODES_WASM).expect("library loads");
    let invocation = Invocation {
        component: component.into(),
        node_id: format!("{component}-1"),
        display_name: component.into(),
        session_id: "s1".into(),
        fields: fields.into_iter().map(|(name, value)| Field { name: name.into(), value }).collect(),
        wanted: Vec::new(),
    };
    let outputs = runtime
        .sandbox_for(Limits::default(), context)
        .run_node(&library, &invocation)
        .expect("no trap")
        .unwrap_or_else(|e| panic!("{component} failed: {e:?}"));
    outputs.into_iter().map(|o| (o.name, o.value)).collect()
}

fn rows(value: &Value) -> Vec<Json> {
    match value {
        Value::Table(table) => table.rows.iter().map(|r| serde_json::from_str(r).expect("row")).collect(),
        other => panic!("expected a table, got {other:?}"),
    }
}

fn vector_store_ingests_into_the_runs_scope(postgres: bool) {
    let world = World::new(postgres);
    let runtime = world.runtime(true);
    let table = Value::Table(sandflow_runtime_host::Table {
        rows: vec![
            json!({"text": "The pump needs a 12 V supply.", "page": 1}).to_string(),
            json!({"text": "Clean the filter monthly.", "page": 2}).to_string(),
        ],
    });
    let ingest = vec![("collection_name", Value::Text("manuals".into())), ("ingest_data", table)];
    let outputs = run_node(&runtime, context("tenant-a", "agent-1"), "vector-store", ingest.clone());
    assert!(rows(&outputs[0].1).is_empty(), "no query, no results: {outputs:?}");
    // Ingesting again adds nothing; the chunks were embedded.
    run_node(&runtime, context("tenant-a", "agent-1"), "vector-store", ingest);
    assert_eq!(world.search(&Scope::new("tenant-a", "agent-1"), "pump filter").len(), 2);
    assert!(world.search(&Scope::new("tenant-b", "agent-1"), "pump filter").is_empty());
    assert!(world.search(&Scope::new("tenant-a", "agent-2"), "pump filter").is_empty());
    let embedded: Vec<Json> = world.requests("/v1/embeddings");
    assert!(
        embedded.iter().any(|r| r["input"] == json!(["The pump needs a 12 V supply.", "Clean the filter monthly."]))
    );
    // Searching (hybrid) answers Langflow's Data rows, best first.
    let search = vec![
        ("collection_name", Value::Text("manuals".into())),
        ("search_query", Value::Text("What voltage does the pump need?".into())),
        ("number_of_results", Value::Integer(1)),
    ];
    let outputs = run_node(&runtime, context("tenant-a", "agent-1"), "vector-store", search.clone());
    let found = rows(&outputs.iter().find(|(n, _)| n == "dataframe").expect("dataframe").1);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["text"], "The pump needs a 12 V supply.");
    assert_eq!(found[0]["page"], 1);
    assert_eq!(found[0]["ranking"], "hybrid");
    // Another tenant searching the same collection name finds nothing.
    let outputs = run_node(&runtime, context("tenant-b", "agent-1"), "vector-store", search);
    assert!(rows(&outputs[0].1).is_empty());
    // Knowledge and Memory Base answer Langflow's `content` rows.
    let knowledge = vec![
        ("mode", Value::Text("Retrieve".into())),
        ("knowledge_base", Value::Text("manuals".into())),
        ("search_query", Value::Text("filter".into())),
    ];
    let outputs = run_node(&runtime, context("tenant-a", "agent-1"), "knowledge", knowledge);
    let found = rows(&outputs[0].1);
    assert_eq!(found[0]["content"], "Clean the filter monthly.");
    assert!(found[0]["_score"].is_number() && found[0]["page"] == 2, "{found:?}");
    let memory = vec![("memory_base", Value::Text("manuals".into())), ("search_query", Value::Text("pump".into()))];
    let outputs = run_node(&runtime, context("tenant-a", "agent-1"), "memory-base", memory);
    assert_eq!(rows(&outputs[0].1)[0]["content"], "The pump needs a 12 V supply.");
}

fn memory_chatbot_retrieves_as_a_tool(postgres: bool) {
    let world = World::new(postgres);
    seed_tenants(&world);
    let runtime = world.runtime(true);
    let flow = shared_flow("starter/memory-chatbot.json").load(&runtime);
    let input = r#"use retrieve_memory {"search_query": "refund"}"#;
    let outcome = run(&runtime, &flow, input, context("tenant-a", "agent-1")).expect("runs");
    let text = answer(&outcome);
    // The model called Memory Base (the host ran it with the model's query)
    // and read back its rows.
    assert!(text.starts_with("retrieve_memory returned: "), "{text}");
    assert!(text.contains(REFUNDS) && text.contains("\"content\""), "{text}");
    assert!(!text.contains("4242") && !text.contains("Agent two"), "{text}");
}

fn a_host_without_an_index_says_so(postgres: bool) {
    let world = World::new(postgres);
    let runtime = world.runtime(false);
    let flow = shared_flow("starter/document-qanda.json").load(&runtime);
    let error = run(&runtime, &flow, "refunds?", context("tenant-a", "agent-1")).expect_err("fails");
    let message = format!("{error}");
    assert!(message.contains("--documents-url"), "{message}");
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $scenario() { super::$scenario(false); })*
        }
        mod postgres {
            $(#[test] fn $scenario() { super::$scenario(true); })*
        }
    };
}

on_both!(
    document_qanda,
    vector_store_rag,
    queries_are_embedded_and_counted,
    vector_store_ingests_into_the_runs_scope,
    memory_chatbot_retrieves_as_a_tool,
    a_host_without_an_index_says_so,
);
