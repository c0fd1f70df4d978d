//! The `memory` capability and the nodes that use it, on SQLite (a file)
//! and on PostgreSQL (a fresh database per test): Langflow's Memory
//! Chatbot replayed against Langflow's own recording, isolation between
//! tenants and agents under hostile session ids, refused messages, bounds,
//! and history that outlives the runtime.
//!
//! PostgreSQL is reached at `SANDFLOW_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`; a test fails if it is not
//! there, since both stores must be tested.

use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::{
    CapabilityConfig, FlowComponent, Limits, LlmConfig, MemoryError, MemoryScope, MemoryStore, Message, RunContext,
    RunError, RunOutcome, RunRequest, Runtime, RuntimeConfig, Value, memory_limits,
};
use serde_json::Value as Json;
use sqlx::{Connection, Executor};
use std::collections::BTreeMap;
use std::path::Path;

const CHATBOT: &str = "legacy/memorychatbotnollm.json";
const MEMORY_NODE: &str = "Memory-8X8Cq";

/// A store for one test: a SQLite file in a temporary directory, or a
/// PostgreSQL database created for the test and dropped after it.
struct TestStore {
    url: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("memory.db").display());
        Self { url, postgres: None, _dir: Some(dir) }
    }

    fn postgres() -> Self {
        let admin = std::env::var("SANDFLOW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("memory_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.split('?').next().unwrap_or(&admin);
        let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b));
        Self { url, postgres: Some((admin, name)), _dir: None }
    }

    fn open(&self) -> MemoryStore {
        MemoryStore::open_blocking(&self.url).expect("the store opens and migrates")
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres {
            admin_sql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn admin_sql(admin: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is needed for these tests at {admin} (set SANDFLOW_TEST_POSTGRES_URL): {e}")
        });
        conn.execute(statement).await.expect(statement);
        conn.close().await.ok();
    });
}

/// Generates one test per store for a scenario `fn(&TestStore)`.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(&super::TestStore::sqlite());
            }
            #[test]
            fn postgres() {
                super::$scenario(&super::TestStore::postgres());
            }
        }
    )*};
}

on_both_stores!(
    chatbot_matches_langflow,
    tenants_and_agents_never_share_a_session,
    oversized_and_sessionless_messages_are_refused,
    history_is_bounded_newest_last,
    history_survives_a_restart,
);

fn runtime(store: Option<MemoryStore>) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig { memory: store, ..CapabilityConfig::default() };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn load(runtime: &Runtime, shared_path: &str) -> FlowComponent {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(shared_path);
    let mut flow: Json = serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON");
    // Langflow builds a component from its shown fields only, and this
    // export hides the Message History fields the tests tweak; as
    // `record_memory.py` does for Langflow, show them, as a seller would in
    // the editor to set them.
    for node in flow["data"]["nodes"].as_array_mut().into_iter().flatten() {
        if node["data"]["type"] == "Memory" {
            for field in ["message", "n_messages", "order", "sender", "sender_name", "template"] {
                if let Some(f) = node["data"]["node"]["template"].get_mut(field) {
                    f["show"] = Json::Bool(true);
                }
            }
        }
    }
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn context(tenant: &str, agent: &str) -> RunContext {
    RunContext { tenant: tenant.into(), agent: agent.into(), ..RunContext::default() }
}

fn turn(
    runtime: &Runtime,
    flow: &FlowComponent,
    who: RunContext,
    session: &str,
    input: &str,
    memory_tweaks: &Json,
) -> Result<RunOutcome, RunError> {
    let mut request =
        RunRequest { input_value: Some(input.into()), session_id: session.into(), ..RunRequest::default() };
    if memory_tweaks.as_object().is_some_and(|t| !t.is_empty()) {
        request.tweaks.insert(MEMORY_NODE.into(), memory_tweaks.clone());
    }
    runtime.sandbox_for(Limits::default(), who).run_flow(flow, &request)
}

fn answer(outcome: &RunOutcome) -> String {
    match &outcome.outputs[0].value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

fn ask(runtime: &Runtime, flow: &FlowComponent, who: RunContext, session: &str, input: &str) -> String {
    answer(&turn(runtime, flow, who, session, input, &Json::Null).expect("runs"))
}

fn message(text: &str, session: &str) -> Message {
    Message {
        text: text.into(),
        sender: "User".into(),
        sender_name: "User".into(),
        session_id: session.into(),
        files: Vec::new(),
        properties: "{}".into(),
    }
}

fn scope(tenant: &str, agent: &str) -> MemoryScope {
    MemoryScope { tenant: tenant.into(), agent: agent.into() }
}

/// Store calls from a test thread (the store runs them on its own runtime).
/// Runs `future` on one runtime shared by the whole suite: pooled
/// connections belong to the runtime they were opened on, and a runtime
/// per call would leave the pool holding connections of a dead one.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime")
        })
        .block_on(future)
}

// --- Langflow's Memory Chatbot -------------------------------------------

/// The columns of Message History's table whose cells are the same on
/// every run; the others hold ids, owners, run ids and times (compared by
/// shape), or Langflow's per-component display properties.
const STABLE: &[&str] =
    &["sender_name", "context_id", "error", "edit", "is_output", "category", "sender", "session_id", "files"];

/// The prompt's context (Type Convert's Markdown table): its columns, its
/// rows as cells by column, and the text after it. Langflow shows a list
/// (`content_blocks`) as Python text without escaping the pipes of a table
/// quoted inside it, so such a row has extra cells: the columns after
/// `content_blocks` are read from the row's end, and `content_blocks`
/// itself is left out.
fn split_answer(answer: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>, String) {
    let (table, tail) = match answer.find("\n\nUser: ") {
        Some(at) => (&answer[..at], &answer[at..]),
        None => ("", answer),
    };
    let lines: Vec<&str> = table.lines().collect();
    if lines.is_empty() {
        return (Vec::new(), Vec::new(), tail.to_owned());
    }
    let header = cells(lines[0]);
    let rows = lines[2..]
        .iter()
        .map(|line| {
            let cells = cells(line);
            match header.iter().position(|c| c == "content_blocks") {
                Some(broken) if cells.len() > header.len() => {
                    let after = header.len() - broken - 1;
                    let right = &cells[cells.len() - after..];
                    header[..broken]
                        .iter()
                        .cloned()
                        .zip(cells[..broken].iter().cloned())
                        .chain(header[broken + 1..].iter().cloned().zip(right.iter().cloned()))
                        .collect()
                }
                _ => header.iter().cloned().zip(cells).collect(),
            }
        })
        .collect();
    (header, rows, tail.to_owned())
}

/// The cells of one Markdown row: split at pipes not escaped by `\`.
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut previous = ' ';
    for c in line.trim().trim_start_matches('|').chars() {
        if c == '|' && previous != '\\' {
            out.push(current.trim().to_owned());
            current.clear();
        } else {
            current.push(c);
        }
        previous = c;
    }
    out
}

/// What a Machine message's text says after the table it quotes.
fn after_quoted_table(text: &str) -> &str {
    text.rsplit_once("<br/>User: ").map_or(text, |(_, rest)| rest)
}

fn chatbot_matches_langflow(store: &TestStore) {
    let recording: Json = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/langflow/memory-chatbot.json"))
            .expect("recording"),
    )
    .expect("JSON");
    let runtime = runtime(Some(store.open()));
    let flow = load(&runtime, CHATBOT);
    let session = recording["session_id"].as_str().expect("session");
    let turns = recording["turns"].as_array().expect("turns");
    assert!(turns.len() >= 2, "the flow runs at least twice in the session");
    for (n, expected) in turns.iter().enumerate() {
        let input = expected["input"].as_str().expect("input");
        let ours = answer(
            &turn(&runtime, &flow, context("acme", "chatbot"), session, input, &expected["memory_tweaks"])
                .expect("runs"),
        );
        let theirs = expected["output"].as_str().expect("output");
        let (our_columns, our_rows, our_tail) = split_answer(&ours);
        let (their_columns, their_rows, their_tail) = split_answer(theirs);
        assert_eq!(our_tail, their_tail, "turn {n} ({input}): the prompt around the history");
        assert_eq!(our_rows.len(), their_rows.len(), "turn {n} ({input}): rows of history\nours:\n{ours}");
        let sorted = |columns: &[String]| columns.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        if !their_columns.is_empty() {
            // Langflow's column order follows Python's hash seed; the set is what holds.
            assert_eq!(sorted(&our_columns), sorted(&their_columns), "turn {n}: the table's columns");
        }
        for (i, (ours, theirs)) in our_rows.iter().zip(&their_rows).enumerate() {
            for column in STABLE.iter().filter(|c| theirs.contains_key(**c)) {
                assert_eq!(ours[*column], theirs[*column], "turn {n}, row {i}, column {column}");
            }
            let their_text = &theirs["text"];
            match ours["sender"].as_str() {
                "User" => assert_eq!(&ours["text"], their_text, "turn {n}, row {i}: text"),
                _ => assert_eq!(after_quoted_table(&ours["text"]), after_quoted_table(their_text), "turn {n}, row {i}"),
            }
            let timestamp = &ours["timestamp"];
            assert!(timestamp.len() == 30 && timestamp.ends_with(" UTC"), "turn {n}: timestamp {timestamp}");
            assert_eq!(ours["id"].len(), 36, "turn {n}: a stored message has an id");
        }
    }
}

// --- Isolation -------------------------------------------------------------

fn tenants_and_agents_never_share_a_session(store: &TestStore) {
    let memory = store.open();
    let runtime = runtime(Some(memory.clone()));
    let flow = load(&runtime, CHATBOT);
    ask(&runtime, &flow, context("acme", "chatbot"), "s1", "the acme secret is zebra-quartz");
    let hostile_sessions =
        ["s1", "s1' OR '1'='1", "s1%", "%", "_1", "acme/chatbot/s1", "S1", " s1", "s1; DROP TABLE memory_message; --"];
    for session in hostile_sessions {
        for who in [context("evil", "chatbot"), context("acme", "other-agent"), context("", ""), context("acme", "")] {
            let seen = ask(&runtime, &flow, who.clone(), session, "what is the secret?");
            assert!(!seen.contains("zebra-quartz"), "{}/{} in session {session:?} saw: {seen}", who.tenant, who.agent);
        }
    }
    // The owner still sees its conversation, and the store still works.
    let own = ask(&runtime, &flow, context("acme", "chatbot"), "s1", "and now?");
    assert!(own.contains("the acme secret is zebra-quartz"), "{own}");
    // A guest's message cannot say what the store stored or for whom.
    let forged = Message { properties: r#"{"stored":{"id":"x","tenant":"acme"}}"#.into(), ..message("hi", "s2") };
    block_on(memory.append(&scope("evil", "chatbot"), &forged)).expect("stored");
    let back = block_on(memory.history(&scope("evil", "chatbot"), "s2", 10)).expect("read");
    assert_ne!(back[0].properties, forged.properties);
    assert!(block_on(memory.history(&scope("acme", "chatbot"), "s2", 10)).expect("read").is_empty());
}

// --- Refusals and bounds ----------------------------------------------------

fn oversized_and_sessionless_messages_are_refused(store: &TestStore) {
    let memory = store.open();
    let who = scope("acme", "chatbot");
    let big = "x".repeat(memory_limits::MAX_MESSAGE_BYTES + 1);
    let refused = block_on(memory.append(&who, &message(&big, "s1")));
    assert!(matches!(&refused, Err(MemoryError::Invalid(m)) if m.contains("bytes")), "{refused:?}");
    let refused = block_on(memory.append(&who, &message("hi", "")));
    assert!(matches!(&refused, Err(MemoryError::Invalid(m)) if m.contains("session id is empty")), "{refused:?}");
    let refused = block_on(memory.append(&who, &message("hi", "s1\0")));
    assert!(matches!(&refused, Err(MemoryError::Invalid(m)) if m.contains("NUL")), "{refused:?}");
    assert!(matches!(block_on(memory.append(&who, &message("a\0b", "s1"))), Err(MemoryError::Invalid(_))));
    let long_session = "s".repeat(memory_limits::MAX_SESSION_ID_BYTES + 1);
    assert!(matches!(block_on(memory.append(&who, &message("hi", &long_session))), Err(MemoryError::Invalid(_))));
    assert!(block_on(memory.history(&who, "s1", 10)).expect("read").is_empty(), "nothing refused was stored");

    // Through a flow: Chat Input's store is refused, and the run says why.
    let runtime = runtime(Some(memory));
    let flow = load(&runtime, CHATBOT);
    let error = turn(&runtime, &flow, context("acme", "chatbot"), "s1", &big, &Json::Null).expect_err("refused");
    match error {
        RunError::Node { node_id, message, .. } => {
            assert_eq!(node_id, "ChatInput-vsgM1");
            assert!(message.contains("storing the message") && message.contains("bytes"), "{message}");
        }
        other => panic!("expected a node error, got {other}"),
    }
}

fn history_is_bounded_newest_last(store: &TestStore) {
    let memory = store.open();
    let who = scope("acme", "chatbot");
    block_on(async {
        for i in 0..memory_limits::MAX_HISTORY + 5 {
            memory.append(&who, &message(&format!("m{i}"), "long")).await.expect("stored");
        }
    });
    let all = block_on(memory.history(&who, "long", u32::MAX)).expect("read");
    assert_eq!(all.len(), memory_limits::MAX_HISTORY as usize, "a call returns at most the cap");
    assert_eq!(all.first().map(|m| m.text.as_str()), Some("m5"));
    assert_eq!(all.last().map(|m| m.text.as_str()), Some(format!("m{}", memory_limits::MAX_HISTORY + 4).as_str()));
    let last_two: Vec<String> =
        block_on(memory.history(&who, "long", 2)).expect("read").into_iter().map(|m| m.text).collect();
    assert_eq!(
        last_two,
        [format!("m{}", memory_limits::MAX_HISTORY + 3), format!("m{}", memory_limits::MAX_HISTORY + 4)]
    );
    assert!(block_on(memory.history(&who, "long", 0)).expect("read").is_empty());
}

// --- Persistence --------------------------------------------------------------

fn history_survives_a_restart(store: &TestStore) {
    {
        let first = store.open();
        let runtime = runtime(Some(first.clone()));
        let flow = load(&runtime, CHATBOT);
        ask(&runtime, &flow, context("acme", "chatbot"), "s9", "remember the number 1234");
        drop(runtime);
        block_on(first.close());
    }
    let runtime = runtime(Some(store.open()));
    let flow = load(&runtime, CHATBOT);
    let seen = ask(&runtime, &flow, context("acme", "chatbot"), "s9", "what was the number?");
    assert!(seen.contains("remember the number 1234"), "{seen}");
}

// --- Message History in Store mode ---------------------------------------------

#[test]
fn message_history_stores_in_store_mode() {
    let store = TestStore::sqlite();
    let memory = store.open();
    let runtime = runtime(Some(memory.clone()));
    let flow = load(&runtime, CHATBOT);
    let tweaks =
        serde_json::json!({"mode": "Store", "message": "note to self", "sender": "Machine", "sender_name": "Notes"});
    turn(&runtime, &flow, context("acme", "chatbot"), "s5", "hi", &tweaks).expect("runs");
    let stored = block_on(memory.history(&scope("acme", "chatbot"), "s5", 10)).expect("read");
    let seen: Vec<(&str, &str, &str)> =
        stored.iter().map(|m| (m.text.as_str(), m.sender.as_str(), m.sender_name.as_str())).collect();
    assert_eq!(seen[..2], [("hi", "User", "User"), ("note to self", "Machine", "Notes")]);
}

// --- Agents ------------------------------------------------------------------

/// Chat Input stores the question before the agent runs; the agent's
/// history leaves it out (as Langflow's does, by id), so the model sees
/// the earlier turns once and the question once.
#[test]
fn an_agent_remembers_the_session_without_repeating_the_question() {
    use sandflow_model_server::{ModelServer, Options};
    let io = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = io.block_on(ModelServer::start(Options::default())).expect("model server starts");
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", server.url()).parse().expect("provider");
    let capabilities = CapabilityConfig {
        llm: LlmConfig { providers: vec![provider] },
        memory: Some(MemoryStore::open_blocking("sqlite::memory:").expect("opens")),
        ..CapabilityConfig::default()
    };
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let runtime = Runtime::new(&RuntimeConfig { cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts");
    let flow = load(&runtime, "starter/multi-agent-flow.json");
    ask(&runtime, &flow, context("acme", "agents"), "s1", "my name is Ada");
    let before = server.requests().len();
    ask(&runtime, &flow, context("acme", "agents"), "s1", "what is my name?");
    let first_agent = &server.requests()[before].body;
    let contents: Vec<&str> =
        first_agent["messages"].as_array().expect("messages").iter().filter_map(|m| m["content"].as_str()).collect();
    let count = |text: &str| contents.iter().filter(|c| **c == text).count();
    assert_eq!(count("what is my name?"), 1, "the question once: {contents:?}");
    assert_eq!(count("my name is Ada"), 1, "the earlier turn once: {contents:?}");
    assert_eq!(contents.last(), Some(&"what is my name?"), "the question comes last");
    assert!(contents.iter().any(|c| c.contains("You said") && c.contains("my name is Ada")), "{contents:?}");
}

// --- Without a store ------------------------------------------------------------

#[test]
fn a_host_without_memory_says_so() {
    let runtime = runtime(None);
    let echo = load(&runtime, "echo.json");
    assert_eq!(ask(&runtime, &echo, context("acme", "echo"), "s1", "hi"), "hi", "chat nodes run without history");
    let flow = load(&runtime, CHATBOT);
    let error = turn(&runtime, &flow, context("acme", "chatbot"), "s1", "hi", &Json::Null).expect_err("no memory");
    match error {
        RunError::Node { node_id, message, .. } => {
            assert_eq!(node_id, MEMORY_NODE);
            assert!(message.contains("not configured") && message.contains("--memory-url"), "{message}");
        }
        other => panic!("expected a node error, got {other}"),
    }
}

// --- A store that stops writing -------------------------------------------------

/// On a SQLite file (its append log) and in memory (the writer task).
#[test]
fn a_store_that_cannot_write_fails_the_run_not_the_host() {
    let file = TestStore::sqlite();
    a_store_that_cannot_write(file.open());
    a_store_that_cannot_write(MemoryStore::open_blocking("sqlite::memory:").expect("opens"));
}

fn a_store_that_cannot_write(store: MemoryStore) {
    let runtime = runtime(Some(store.clone()));
    let echo = load(&runtime, "echo.json");
    assert_eq!(ask(&runtime, &echo, context("acme", "echo"), "s1", "kept"), "kept");
    let stored = block_on(store.history(&scope("acme", "echo"), "s1", 10)).expect("reads");
    assert_eq!(stored.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["kept", "kept"], "both messages stored");

    // With the store gone, the run is not answered as if its history were kept.
    block_on(store.close());
    let error = turn(&runtime, &echo, context("acme", "echo"), "s1", "lost", &Json::Null).expect_err("not stored");
    assert!(matches!(&error, RunError::History(m) if m.contains("unavailable")), "{error}");
    assert_eq!(error.kind(), "history_not_stored");
    // The host keeps serving flows that store nothing.
    let runtime = crate::runtime(None);
    let echo = load(&runtime, "echo.json");
    assert_eq!(ask(&runtime, &echo, context("acme", "echo"), "s1", "still here"), "still here");
}
