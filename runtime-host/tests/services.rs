//! Well-known services behind operator routes, end to end through the data
//! plane (`POST /api/v1/run/{flow}`), with `tests/web-fixture` standing in
//! for arXiv and AssemblyAI (`--http-route`) and `tests/model-server` for
//! the model: Research Translation Loop runs the model once per paper of
//! the feed and answers every translation; Meeting Summary transcribes an
//! uploaded recording (upload, transcript, polls), the agent's prompt holds
//! the transcript, Chat Input and Output store the turn and Memory Base
//! answers the agent's tool call from the session's memories. Hostile:
//! AssemblyAI's error status, a transcript that never completes (the
//! node's `poll_timeout`, the run's deadline), an oversized answer, a
//! wrong, missing or unset key; a key in a global variable never reaches
//! the answer, and the operator's secrets are never sent.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::api::DataPlane;
use sandflow_runtime_host::doc_index::{DocIndex, NewChunk, Scope};
use sandflow_runtime_host::{
    CapabilityConfig, FileStore, FilesConfig, HttpConfig, Limits, LlmConfig, MemoryScope, MemoryStore, Secret, Secrets,
};
use sandflow_web_fixture::WebFixture;
use sandflow_web_fixture::assemblyai::{API_KEY, ERROR_TEXT, URL_TRANSCRIPT};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{send, shared_flow};

const SECRET: &[u8] = b"services-test-secret";
const TENANT: &str = "acme";
/// The "audio" of the uploaded recording: the fixture transcribes its bytes.
const MEETING: &str = "Ana: the launch moves to March 3. Ben: I will update the pricing page by Friday. \
                       Ana: the budget stays at forty thousand.";
const TRANSCRIBER: &str = "AAITranscriber-ms";
/// The export's Memory Base, a collection of the agent's document index.
const MEMORY_BASE: &str = "test MB";

struct World {
    plane: Arc<DataPlane>,
    model: ModelServer,
    web: WebFixture,
    index: DocIndex,
    memory: MemoryStore,
    _dir: tempfile::TempDir,
}

/// Meeting Summary with its transcriber's key in global variable `name`
/// (as a seller exports it after choosing a variable).
fn meeting_with_variable(name: &str) -> Json {
    let mut flow = shared_flow("starter/meeting-summary.json");
    let nodes = flow["data"]["nodes"].as_array_mut().expect("nodes");
    let node = nodes.iter_mut().find(|n| n["id"] == TRANSCRIBER).expect("the transcriber");
    let key = &mut node["data"]["node"]["template"]["api_key"];
    key["load_from_db"] = json!(true);
    key["value"] = json!(name);
    flow
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    // The fixture runs its own runtime, started off this one.
    let web = std::thread::spawn(WebFixture::start).join().expect("the web fixture starts");
    let model = ModelServer::start(Options::default()).await.expect("model server");
    let documents = DocIndex::sqlite_url_in(dir.path());
    let index = DocIndex::open(&documents).await.expect("index");
    let memory = MemoryStore::open("sqlite::memory:").await.expect("memory");
    let files = FileStore::open(FilesConfig {
        root: dir.path().join("files"),
        max_file_bytes: 1 << 20,
        max_tenant_bytes: 1 << 30,
    })
    .expect("files");
    let http = HttpConfig {
        allow: vec![web.host_port().parse().expect("pattern")],
        routes: vec![
            format!("http://export.arxiv.org={}/arxiv", web.url()).parse().expect("route"),
            format!("https://api.assemblyai.com={}/assemblyai", web.url()).parse().expect("route"),
        ],
        max_response_bytes: 1 << 20,
        ..HttpConfig::default()
    };
    let capabilities = CapabilityConfig {
        llm: LlmConfig {
            providers: vec![format!("OpenAI=openai,{}/v1,gpt-test", model.url()).parse().expect("provider")],
        },
        http: Some(http),
        files: Some(files),
        memory: Some(memory.clone()),
        documents: Some(sandflow_runtime_host::open_documents(&documents).await.expect("index")),
        // The operator's key for AssemblyAI: never sent by `http` for a flow.
        secrets: [("ASSEMBLYAI_API_KEY", API_KEY)].into_iter().collect(),
        ..CapabilityConfig::default()
    };
    let plane = support::data_plane(capabilities, SECRET);
    let short = Limits { deadline: Duration::from_secs(4), ..Limits::default() };
    let agent_key: Secrets = [("ASSEMBLYAI_API_KEY", API_KEY)].into_iter().collect();
    // A buyer's key as the control plane hands it over: with the hosts it may go to.
    let buyers_key = |hosts: &[&str]| {
        let mut secrets = Secrets::default();
        let hosts = hosts.iter().map(|h| h.parse().expect("pattern")).collect();
        secrets.insert("ASSEMBLYAI_API_KEY", Secret::for_hosts(API_KEY, hosts));
        secrets
    };
    for (id, flow, limits, secrets) in [
        ("research", shared_flow("starter/research-translation-loop.json"), Limits::default(), Secrets::default()),
        ("meeting", shared_flow("starter/meeting-summary.json"), Limits::default(), Secrets::default()),
        ("meeting-short", shared_flow("starter/meeting-summary.json"), short, Secrets::default()),
        ("meeting-variable", meeting_with_variable("ASSEMBLYAI_API_KEY"), Limits::default(), agent_key),
        ("meeting-unset", meeting_with_variable("ASSEMBLYAI_API_KEY"), Limits::default(), Secrets::default()),
        (
            "meeting-scoped",
            meeting_with_variable("ASSEMBLYAI_API_KEY"),
            Limits::default(),
            buyers_key(&["api.assemblyai.com"]),
        ),
        (
            "meeting-elsewhere",
            meeting_with_variable("ASSEMBLYAI_API_KEY"),
            Limits::default(),
            buyers_key(&["api.tavily.com"]),
        ),
    ] {
        support::provision(&plane, TENANT, id, &flow, limits, secrets);
    }
    World { plane: Arc::new(plane), model, web, index, memory, _dir: dir }
}

fn key() -> String {
    support::run_key(TENANT, SECRET)
}

async fn run(world: &World, agent: &str, input: &str, session: &str, tweaks: Json) -> (StatusCode, Json) {
    let body = json!({"input_value": input, "output_type": "chat", "tweaks": tweaks, "session_id": session});
    let request = Request::post(format!("/api/v1/run/{agent}"))
        .header("content-type", "application/json")
        .header("x-api-key", key())
        .body(Body::from(body.to_string()))
        .expect("request");
    send(&world.plane, request).await
}

async fn upload(world: &World, agent: &str, filename: &str, content: &[u8]) -> String {
    support::upload(&world.plane, &key(), agent, filename, content).await
}

fn answer(body: &Json) -> String {
    body["outputs"][0]["outputs"][0]["results"]["message"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no answer: {body}"))
        .to_owned()
}

fn detail(body: &Json) -> String {
    body["detail"].as_str().unwrap_or_else(|| panic!("no detail: {body}")).to_owned()
}

fn chat_requests(model: &ModelServer) -> Vec<Json> {
    model.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

fn last_user_message(request: &Json) -> String {
    let messages = request["messages"].as_array().expect("messages");
    messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("").to_owned()
}

/// The requests that reached the AssemblyAI fixture: method, path.
fn transcription_calls(web: &WebFixture) -> Vec<(String, String)> {
    web.seen()
        .into_iter()
        .filter_map(|s| s.uri.strip_prefix("/assemblyai/v2").map(|p| (s.method.clone(), p.to_owned())))
        .collect()
}

// ------------------------------------------------- Research Translation Loop

const PAPERS: [(&str, &str); 3] = [
    ("Sandboxed Agents at Scale", "We run agents in WebAssembly sandboxes."),
    ("Fuel Metering", "Counting instructions."),
    ("Deadlines for Untrusted Code", "Epochs interrupt guests that run too long."),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_translation_loop_runs_the_model_once_per_paper() {
    let world = world().await;
    let (status, body) = run(&world, "research", "sandboxes", "r1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // arXiv was asked as Langflow asks it, and the route took it to the fixture.
    let feeds: Vec<String> = world.web.seen().into_iter().map(|s| s.uri).filter(|u| u.starts_with("/arxiv")).collect();
    assert_eq!(feeds, ["/arxiv/api/query?search_query=sandboxes&max_results=3"]);
    // One model call per paper, each seeing its own paper only.
    let sent = chat_requests(&world.model);
    assert_eq!(sent.len(), PAPERS.len(), "{sent:?}");
    for (request, (title, summary)) in sent.iter().zip(PAPERS) {
        assert_eq!(last_user_message(request), format!("Title: {title}\nSummary: {summary}"));
        for (other, _) in PAPERS.iter().filter(|(t, _)| *t != title) {
            assert!(!request.to_string().contains(other), "{title}'s call saw {other}");
        }
    }
    // Every translation (the scripted model's answer) is in the output:
    // Chat Output shows the Loop's DataFrame as Langflow's Markdown table.
    let text = answer(&body);
    assert!(text.starts_with("| text "), "{text}");
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), PAPERS.len(), "{text}");
    for (row, (title, summary)) in rows.iter().zip(PAPERS) {
        let cell = row.trim_start_matches('|').trim_end_matches('|').trim();
        assert_eq!(cell, format!("You said: Title: {title}<br/>Summary: {summary}"), "{text}");
    }
}

// ------------------------------------------------------------ Meeting Summary

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_summary_transcribes_an_uploaded_recording() {
    let world = world().await;
    let recording = upload(&world, "meeting", "standup.mp3", MEETING.as_bytes()).await;
    let tweaks = json!({TRANSCRIBER: {"audio_url": recording, "api_key": API_KEY}});
    let (status, body) = run(&world, "meeting", "Summarize the meeting.", "m1", tweaks.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Upload, transcript, then polls until `completed`, each with the key.
    let calls = transcription_calls(&world.web);
    assert_eq!(
        calls,
        [
            ("POST".into(), "/upload".into()),
            ("POST".into(), "/transcript".into()),
            ("GET".into(), "/transcript/tr-0".into()),
            ("GET".into(), "/transcript/tr-0".into()),
        ]
    );
    let keys: Vec<String> = world
        .web
        .seen()
        .iter()
        .filter(|s| s.uri.starts_with("/assemblyai"))
        .map(|s| s.headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.clone()).unwrap_or_default())
        .collect();
    assert!(keys.iter().all(|k| k == API_KEY), "{keys:?}");

    // The agent's prompt holds the transcript and the request.
    let sent = chat_requests(&world.model);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let prompt = last_user_message(&sent[0]);
    assert!(
        prompt.starts_with(&format!("Meeting transcript:\n{MEETING}\n\n---\nUser request:\nSummarize the meeting.")),
        "{prompt}"
    );
    assert!(sent[0]["messages"][0]["content"].as_str().unwrap_or("").starts_with("You are a meeting assistant."));
    let tools: Vec<&str> =
        sent[0]["tools"].as_array().into_iter().flatten().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(tools, ["retrieve_memory"]);
    assert_eq!(answer(&body), format!("You said: {prompt}"));

    // Chat Input and Chat Output stored the turn, as the flow says.
    let scope = MemoryScope { tenant: TENANT.into(), agent: "meeting".into() };
    let stored = world.memory.history(&scope, "m1", 10).await.expect("history");
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Summarize the meeting.", answer(&body).as_str()]);

    // A follow-up: the agent's Memory tool reads this session's memories.
    let memories = [("Ben owns the pricing page update.", "m1"), ("Pricing is frozen for the other team.", "m2")];
    for (n, (text, session)) in memories.iter().enumerate() {
        let chunk = NewChunk { metadata: json!({"session_id": session}), ..NewChunk::text(*text) };
        world
            .index
            .replace_document(&Scope::new(TENANT, "meeting"), MEMORY_BASE, &format!("memory-{n}"), &[chunk], None)
            .await
            .expect("seeded");
    }
    let ask = r#"Who owns the pricing page? use retrieve_memory {"search_query": "pricing page"}"#;
    let (status, body) = run(&world, "meeting", ask, "m1", tweaks).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = answer(&body);
    assert!(text.starts_with("retrieve_memory returned: ") && text.contains(memories[0].0), "{text}");
    assert!(!text.contains(memories[1].0), "another session's memory: {text}");
    let sent = chat_requests(&world.model);
    assert!(last_user_message(&sent[1]).contains(MEETING), "the follow-up's prompt holds the transcript too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_a_global_variable_is_filled_in_by_the_host() {
    let world = world().await;
    let (status, body) = run(&world, "meeting-variable", "Summarize.", "v1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The export's own audio URL, transcribed with the agent's key.
    let text = answer(&body);
    assert!(text.contains(&format!("Meeting transcript:\n{URL_TRANSCRIPT}")), "{text}");
    assert!(!body.to_string().contains(API_KEY), "the key stays on the host");
    let seen = world.web.seen();
    let create = seen.iter().find(|s| s.uri == "/assemblyai/v2/transcript").expect("transcript created");
    assert!(create.headers.contains(&("authorization".into(), API_KEY.into())));
    assert!(!chat_requests(&world.model).iter().any(|r| r.to_string().contains(API_KEY)));

    // The same variable unset for the agent: the operator's secret of that
    // name is not sent to a service a flow reaches.
    let (status, body) = run(&world, "meeting-unset", "Summarize.", "v2", json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let said = detail(&body);
    assert!(said.contains("names the global variable `ASSEMBLYAI_API_KEY`, which is not set for this agent"), "{said}");
    assert_eq!(transcription_calls(&world.web).len(), 3, "the second run reached nothing");
}

// ------------------------------------------------------------------- hostile

/// A buyer's key goes only to the hosts the buyer listed with it: the
/// seller's flow names the URL, so it could name its own. Checked against
/// the URL the node asked for, before the operator's route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_key_goes_only_to_the_hosts_it_lists() {
    let world = world().await;
    let (status, body) = run(&world, "meeting-scoped", "Summarize.", "s1", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let create =
        world.web.seen().into_iter().find(|s| s.uri == "/assemblyai/v2/transcript").expect("transcript created");
    assert!(create.headers.contains(&("authorization".into(), API_KEY.into())));

    let before = transcription_calls(&world.web).len();
    let (status, body) = run(&world, "meeting-elsewhere", "Summarize.", "s2", json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let said = detail(&body);
    assert!(
        said.contains("`ASSEMBLYAI_API_KEY` may be sent to `api.tavily.com`, not to `api.assemblyai.com`"),
        "{said}"
    );
    assert!(!body.to_string().contains(API_KEY));
    assert_eq!(transcription_calls(&world.web).len(), before, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_is_explained() {
    let world = world().await;
    let (status, body) = run(&world, "meeting", "Summarize.", "k1", json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(detail(&body).contains("AssemblyAI API Key is required."), "{body}");
    assert!(transcription_calls(&world.web).is_empty(), "nothing was sent without a key");

    let (status, body) = run(&world, "meeting", "Summarize.", "k2", json!({TRANSCRIBER: {"api_key": "wrong"}})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let said = detail(&body);
    assert!(
        said.contains("401 Client Error for url: https://api.assemblyai.com/v2/transcript: Authentication error"),
        "{said}"
    );
    assert!(chat_requests(&world.model).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transcription_is_the_nodes_error() {
    let world = world().await;
    let tweaks = json!({TRANSCRIBER: {"api_key": API_KEY, "audio_url": "https://media.example/error.mp3"}});
    let (status, body) = run(&world, "meeting", "Summarize.", "e1", tweaks).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(detail(&body).contains(&format!("AssemblyAI transcription error: {ERROR_TEXT}")), "{body}");
    assert!(chat_requests(&world.model).is_empty(), "the agent never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_that_never_completes_stops_at_the_poll_timeout() {
    let world = world().await;
    let tweaks =
        json!({TRANSCRIBER: {"api_key": API_KEY, "audio_url": "https://media.example/never.mp3", "poll_timeout": 3}});
    let (status, body) = run(&world, "meeting", "Summarize.", "t1", tweaks).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(detail(&body).contains("Transcription timed out after 3s (last status: processing)."), "{body}");
    let polls = transcription_calls(&world.web).iter().filter(|(m, _)| m == "GET").count();
    assert_eq!(polls, 2, "a poll, 3 s, a poll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_that_never_completes_stops_at_the_runs_deadline() {
    let world = world().await;
    let tweaks = json!({TRANSCRIBER: {"api_key": API_KEY, "audio_url": "https://media.example/never.mp3"}});
    let started = Instant::now();
    let (status, body) = run(&world, "meeting-short", "Summarize.", "d1", tweaks).await;
    let took = started.elapsed();
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(detail(&body).contains("deadline"), "{body}");
    // Not a timing test: 300 s of polling would be the alternative.
    assert!(took < Duration::from_secs(60), "the 4 s deadline cut the 300 s poll timeout short: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_without_naming_the_route() {
    let world = world().await;
    let tweaks = json!({TRANSCRIBER: {"api_key": API_KEY, "audio_url": "https://media.example/oversized.mp3"}});
    let (status, body) = run(&world, "meeting", "Summarize.", "o1", tweaks).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let said = detail(&body);
    assert!(
        said.contains("the response of `api.assemblyai.com` is larger than this host's limit of 1048576 bytes"),
        "{said}"
    );
    assert!(!said.contains("127.0.0.1"), "the route's destination is the operator's: {said}");
    assert!(chat_requests(&world.model).is_empty());
}
