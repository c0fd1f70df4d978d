//! The `files` capability, its nodes and Langflow's upload endpoint:
//! hostile names (`../x`, `/etc/passwd`, `a/../../b`, NUL, backslashes)
//! and planted symbolic links never reach outside a tenant's directory;
//! a tenant never reads or lists another's files, even by their exact
//! stored name; size caps per file and per tenant; Portfolio Website Code
//! Generator and Text Sentiment Analysis reading a file uploaded through
//! `POST /api/v1/files/upload/{flow}`, checked on what reaches the model
//! (the test model server) and on the answers; Write File, Read File and
//! Directory round trips.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{Agent, DataPlane, DataPlaneConfig, Quota, router};
use sandflow_runtime_host::{
    CapabilityConfig, DIRECTORY_BYTES, FileStore, FilesConfig, FilesError, FilesScope, FlowComponent, Limits,
    LlmConfig, RunContext, RunError, RunOutcome, RunRequest, Runtime, RuntimeConfig, Secrets, Value,
};
use serde_json::{Value as Json, json};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

fn scope(tenant: &str, agent: &str) -> FilesScope {
    FilesScope { tenant: tenant.into(), agent: agent.into() }
}

fn store(dir: &Path, max_file: u64, max_tenant: u64) -> FileStore {
    FileStore::open(FilesConfig { root: dir.join("files"), max_file_bytes: max_file, max_tenant_bytes: max_tenant })
        .expect("store opens")
}

// ---------------------------------------------------------------- the store

#[test]
fn names_that_climb_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    let acme = scope("acme", "agent");
    std::fs::write(dir.path().join("secret.txt"), "outside").expect("outside file");
    let long = "n".repeat(600);
    for name in [
        "../x",
        "../../secret.txt",
        "/etc/passwd",
        "a/../../b",
        "a/./b",
        "a\0b",
        "..\\..\\secret.txt",
        ".tmp-1",
        "a//b",
        long.as_str(),
    ] {
        let shown = name.escape_debug().to_string();
        assert!(matches!(files.write(&acme, name, b"x"), Err(FilesError::Invalid(_))), "write {shown}");
        assert!(matches!(files.read(&acme, name), Err(FilesError::Invalid(_))), "read {shown}");
    }
    for prefix in ["../", "/etc", "a/../.."] {
        assert!(matches!(files.list(&acme, prefix), Err(FilesError::Invalid(_))), "list {prefix}");
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("secret.txt")).expect("outside"), "outside");
    assert!(files.list(&acme, "").expect("lists").is_empty(), "nothing was written");
}

#[test]
fn tenants_and_agents_never_see_each_others_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    let stored = files.write(&scope("acme", "agent"), "flow-1/report.txt", b"acme's numbers").expect("writes");
    assert_eq!(stored, "flow-1/report.txt", "write returns the stored name");
    assert_eq!(files.read(&scope("acme", "agent"), &stored).expect("reads").content, b"acme's numbers");
    for other in [scope("globex", "agent"), scope("acme", "other-agent")] {
        assert!(matches!(files.read(&other, &stored), Err(FilesError::NotFound(_))), "{other:?} reads by name");
        assert!(files.list(&other, "").expect("lists").is_empty(), "{other:?} lists");
        for climb in ["../acme/agent/flow-1/report.txt", "../../acme/agent/flow-1/report.txt"] {
            assert!(matches!(files.read(&other, climb), Err(FilesError::Invalid(_))), "{other:?} climbs");
        }
    }
    // Hostile tenant ids cannot climb either: each is one directory of its own.
    for tenant in ["..", "../acme", "acme/agent", ""] {
        assert!(matches!(files.read(&scope(tenant, "agent"), &stored), Err(FilesError::NotFound(_))), "{tenant}");
    }
}

#[test]
fn planted_symbolic_links_are_never_followed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    let acme = scope("acme", "agent");
    files.write(&acme, "ok.txt", b"fine").expect("writes");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside dir");
    std::fs::write(outside.join("secret.txt"), "outside secret").expect("secret");
    let agent_dir = dir.path().join("files/acme/agent");
    std::os::unix::fs::symlink(outside.join("secret.txt"), agent_dir.join("leak.txt")).expect("file link");
    std::os::unix::fs::symlink("/etc/passwd", agent_dir.join("passwd.txt")).expect("absolute link");
    std::os::unix::fs::symlink(&outside, agent_dir.join("docs")).expect("directory link");

    for name in ["leak.txt", "passwd.txt", "docs/secret.txt"] {
        match files.read(&acme, name) {
            Err(FilesError::Denied(m)) => assert!(m.contains("symbolic link"), "{name}: {m}"),
            other => panic!("{name} must be refused, got {other:?}"),
        }
    }
    assert_eq!(files.list(&acme, "").expect("lists"), ["ok.txt"], "links are not listed");
    assert!(matches!(files.write(&acme, "docs/new.txt", b"x"), Err(FilesError::Denied(_))));
    assert!(!outside.join("new.txt").exists(), "nothing written through the link");
    // Writing a linked name replaces the link itself, never its target.
    files.write(&acme, "leak.txt", b"replaced").expect("writes");
    assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).expect("secret"), "outside secret");
    assert_eq!(files.read(&acme, "leak.txt").expect("reads").content, b"replaced");

    // Another tenant's directory linked into this tenant's is refused too.
    files.write(&scope("globex", "agent"), "theirs.txt", b"globex only").expect("writes");
    std::os::unix::fs::symlink(dir.path().join("files/globex/agent"), agent_dir.join("globex")).expect("link");
    assert!(matches!(files.read(&acme, "globex/theirs.txt"), Err(FilesError::Denied(_))));
    // And a tenant directory replaced by a link to another tenant's.
    std::fs::remove_dir_all(dir.path().join("files/initech")).ok();
    std::os::unix::fs::symlink(dir.path().join("files/globex"), dir.path().join("files/initech")).expect("link");
    assert!(matches!(files.read(&scope("initech", "agent"), "theirs.txt"), Err(FilesError::Denied(_))));
}

#[test]
fn sizes_are_capped_per_file_and_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Room for 250 bytes of files in two agents' directories.
    let cap = 250 + 2 * DIRECTORY_BYTES;
    let files = store(dir.path(), 100, cap);
    let acme = scope("acme", "agent");
    assert!(matches!(files.write(&acme, "big.txt", &[b'x'; 101]), Err(FilesError::TooLarge(_))));
    files.write(&acme, "a.txt", &[b'a'; 100]).expect("first");
    files.write(&scope("acme", "second-agent"), "b.txt", &[b'b'; 100]).expect("second, other agent");
    match files.write(&acme, "c.txt", &[b'c'; 100]) {
        Err(FilesError::TooLarge(m)) => assert!(m.contains(&cap.to_string()), "{m}"),
        other => panic!("the tenant cap counts every agent's files: {other:?}"),
    }
    files.write(&acme, "a.txt", &[b'A'; 90]).expect("replacing counts the replaced file out");
    assert_eq!(files.tenant_bytes("acme").expect("size"), 190 + 2 * DIRECTORY_BYTES);
    files.write(&scope("globex", "agent"), "c.txt", &[b'c'; 100]).expect("other tenants have their own cap");
    // A file that grew on disk past the cap is not read into memory.
    std::fs::write(dir.path().join("files/acme/agent/grown.txt"), [b'g'; 500]).expect("grown");
    assert!(matches!(files.read(&acme, "grown.txt"), Err(FilesError::TooLarge(_))));
}

#[test]
fn directories_count_and_deleting_gives_everything_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 4 * DIRECTORY_BYTES + 10);
    let acme = scope("acme", "agent");
    // Empty files in fresh directories are not free: each directory
    // counts a block.
    match files.write(&acme, "a/b/c/d/empty.txt", b"") {
        Err(FilesError::TooLarge(m)) => assert!(m.contains("each directory counts 4096"), "{m}"),
        other => panic!("five new directories are over a cap of four: {other:?}"),
    }
    assert!(!dir.path().join("files/acme/agent/a").exists(), "a refused write makes no directory");
    files.write(&acme, "a/b/c/ten.txt", &[b't'; 10]).expect("four directories and ten bytes fit");
    assert_eq!(files.tenant_bytes("acme").expect("size"), 4 * DIRECTORY_BYTES + 10);
    assert!(matches!(files.write(&acme, "a/b/other/x.txt", b""), Err(FilesError::TooLarge(_))));
    assert!(matches!(files.write(&acme, "a/b/c/eleven.txt", b"x"), Err(FilesError::TooLarge(_))));
    files.write(&acme, "a/b/c/empty.txt", b"").expect("an empty file in an existing directory fits");

    // Deleting: a directory is not a file, a missing file is no error.
    assert!(matches!(files.delete(&acme, "a/b"), Err(FilesError::Invalid(_))));
    assert!(!files.delete(&acme, "a/b/c/none.txt").expect("missing"));
    assert!(!files.delete(&scope("acme", "other-agent"), "a/b/c/ten.txt").expect("another agent has none"));
    assert!(!files.delete(&scope("globex", "agent"), "a/b/c/ten.txt").expect("another tenant has none"));
    assert!(matches!(files.delete(&acme, "../agent/a/b/c/ten.txt"), Err(FilesError::Invalid(_))));
    assert!(files.delete(&acme, "a/b/c/ten.txt").expect("deleted"));
    assert!(matches!(files.read(&acme, "a/b/c/ten.txt"), Err(FilesError::NotFound(_))));
    assert_eq!(files.tenant_bytes("acme").expect("size"), 4 * DIRECTORY_BYTES, "the directories still hold a file");
    assert!(files.delete(&acme, "a/b/c/empty.txt").expect("deleted"));
    assert_eq!(files.tenant_bytes("acme").expect("size"), 0, "emptied directories go, the agent's too");
    assert!(!dir.path().join("files/acme/agent").exists());

    // A link planted where a file was is not followed, nor removed.
    std::fs::create_dir_all(dir.path().join("files/acme/agent")).expect("agent dir");
    std::fs::write(dir.path().join("outside.txt"), "keep me").expect("outside");
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), dir.path().join("files/acme/agent/link.txt"))
        .expect("link");
    assert!(matches!(files.delete(&acme, "link.txt"), Err(FilesError::Denied(_))));
    assert_eq!(std::fs::read_to_string(dir.path().join("outside.txt")).expect("kept"), "keep me");
    std::fs::remove_file(dir.path().join("files/acme/agent/link.txt")).expect("unlink");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("files/acme/agent/a")).expect("dir link");
    assert!(matches!(files.delete(&acme, "a/outside.txt"), Err(FilesError::Denied(_))));
    assert!(dir.path().join("outside.txt").exists());
}

#[test]
fn listing_by_prefix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    let acme = scope("acme", "agent");
    for name in ["docs/a.md", "docs/deep/b.py", "notes.txt", "docsx/c.txt"] {
        files.write(&acme, name, b"x").expect("writes");
    }
    assert_eq!(files.list(&acme, "").expect("all"), ["docs/a.md", "docs/deep/b.py", "docsx/c.txt", "notes.txt"]);
    assert_eq!(files.list(&acme, "docs/").expect("folder"), ["docs/a.md", "docs/deep/b.py"]);
    assert_eq!(files.list(&acme, "no").expect("partial"), ["notes.txt"]);
}

// -------------------------------------------------------- nodes in sandboxes

fn shared_flow(path: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path);
    serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON")
}

#[expect(clippy::too_many_arguments, reason = "an edge has this many parts")]
fn edge(
    source_type: &str,
    source: &str,
    output: &str,
    output_types: &[&str],
    target: &str,
    field: &str,
    input_types: &[&str],
    field_type: &str,
) -> Json {
    let source_handle = json!({"dataType": source_type, "id": source, "name": output, "output_types": output_types});
    let target_handle = json!({"fieldName": field, "id": target, "inputTypes": input_types, "type": field_type});
    let encode = |v: &Json| v.to_string().replace('"', "œ");
    json!({
        "id": format!("reactflow__edge-{source}-{target}-{field}"),
        "source": source,
        "target": target,
        "sourceHandle": encode(&source_handle),
        "targetHandle": encode(&target_handle),
        "data": {"sourceHandle": source_handle, "targetHandle": target_handle},
    })
}

const ANY: &[&str] = &["Data", "JSON", "DataFrame", "Table", "Message"];

/// `source`'s node of `flow` and a Chat Output, the one feeding the other.
fn into_chat_output(flow: &str, node_type: &str, output: &str, types: &[&str]) -> Json {
    let mut flow = shared_flow(flow);
    let nodes = flow["data"]["nodes"].as_array_mut().expect("nodes");
    nodes.retain(|n| [node_type, "ChatOutput"].contains(&n["data"]["type"].as_str().unwrap_or("")));
    let id = |t: &str| nodes.iter().find(|n| n["data"]["type"] == t).and_then(|n| n["id"].as_str()).map(str::to_owned);
    let (source, target) = (id(node_type).expect("source"), id("ChatOutput").expect("chat output"));
    flow["data"]["edges"] = json!([edge(node_type, &source, output, types, &target, "input_value", ANY, "other")]);
    flow
}

fn runtime_with(files: Option<FileStore>, providers: &[String]) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let capabilities = CapabilityConfig {
        files,
        llm: LlmConfig { providers: providers.iter().map(|p| p.parse().expect("provider")).collect() },
        ..CapabilityConfig::default()
    };
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

fn load(runtime: &Runtime, flow: &Json) -> FlowComponent {
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    runtime.load_flow(&artifact.component).expect("links")
}

fn run(
    runtime: &Runtime,
    flow: &FlowComponent,
    input: &str,
    tweaks: Json,
    tenant: &str,
    agent: &str,
) -> Result<RunOutcome, RunError> {
    let mut request = RunRequest { input_value: Some(input.into()), session_id: "s1".into(), ..RunRequest::default() };
    request.tweaks = tweaks.as_object().cloned().unwrap_or_default();
    let context = RunContext { tenant: tenant.into(), agent: agent.into(), ..RunContext::default() };
    runtime.sandbox_for(Limits::default(), context).run_flow(flow, &request)
}

fn answer(outcome: &RunOutcome) -> String {
    match &outcome.outputs[0].value {
        Value::Message(m) => m.text.clone(),
        other => panic!("expected a Message, got {other:?}"),
    }
}

#[test]
fn the_file_node_reads_only_its_own_tenants_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    files.write(&scope("acme", "reader"), "flow/notes.md", b"# Notes\r\nacme only\r\n").expect("writes");
    files.write(&scope("acme", "reader"), "flow/plans.csv", b"plan,price\nBasic,9\nPro,19.5\n").expect("writes");
    std::fs::write(dir.path().join("outside.txt"), "outside").expect("outside");
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), dir.path().join("files/acme/reader/link.txt"))
        .expect("link");
    let runtime = runtime_with(Some(files), &[]);
    let flow = load(
        &runtime,
        &into_chat_output("starter/portfolio-website-code-generator.json", "File", "message", &["Message"]),
    );
    let read =
        |path: Json, tenant: &str| run(&runtime, &flow, "", json!({"File-wvfA7": {"path": path}}), tenant, "reader");

    let text = answer(&read(json!("flow/notes.md"), "acme").expect("reads"));
    assert_eq!(text, "# Notes\nacme only\n", "Langflow's newline handling");
    let both = answer(&read(json!(["flow/notes.md", "flow/plans.csv"]), "acme").expect("reads both"));
    assert_eq!(both, "# Notes\nacme only\n\n\nplan,price\nBasic,9\nPro,19.5\n", "joined by the separator");

    let said = read(json!("flow/notes.md"), "globex").expect_err("another tenant").to_string();
    assert!(said.contains("File not found"), "{said}");
    for hostile in
        ["../acme/reader/flow/notes.md", "/etc/hosts.txt", "a/../../b.txt", "flow/\u{0}notes.md", "..\\x.txt"]
    {
        let said = read(json!(hostile), "acme").expect_err(hostile).to_string();
        assert!(said.contains("invalid request"), "{hostile}: {said}");
    }
    // Without a text extension, Langflow skips a name; nothing is read.
    let said = read(json!("/etc/passwd"), "acme").expect_err("skipped").to_string();
    assert!(said.contains("No files to process"), "{said}");
    let said = read(json!("link.txt"), "acme").expect_err("a link").to_string();
    assert!(said.contains("symbolic link"), "{said}");
    // PDF and DOCX are read too (`tests/documents.rs`), from the same scope.
    let said = read(json!("flow/cv.pdf"), "acme").expect_err("no such pdf").to_string();
    assert!(said.contains("File not found"), "{said}");

    // A host without file storage says so.
    let bare = runtime_with(None, &[]);
    let flow = load(
        &bare,
        &into_chat_output("starter/portfolio-website-code-generator.json", "File", "message", &["Message"]),
    );
    let said = run(&bare, &flow, "", json!({"File-wvfA7": {"path": "a.txt"}}), "acme", "reader")
        .expect_err("no storage")
        .to_string();
    assert!(said.contains("--files-dir"), "{said}");
}

#[test]
fn write_file_then_directory_reads_it_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), 1 << 20, 1 << 30);
    let runtime = runtime_with(Some(files.clone()), &[]);

    // Content Aggregator's Write File, fed by its Chat Input through Chat Output.
    let mut source = shared_flow("starter/content-aggregator.json");
    let nodes = source["data"]["nodes"].as_array_mut().expect("nodes");
    nodes.retain(|n| ["ChatInput", "ChatOutput", "SaveToFile"].contains(&n["data"]["type"].as_str().unwrap_or("")));
    // The export hides Append Mode, and Langflow ignores tweaks to hidden
    // fields: show it, as a seller who wants it tweakable would.
    for node in nodes.iter_mut().filter(|n| n["data"]["type"] == "SaveToFile") {
        node["data"]["node"]["template"]["append_mode"]["show"] = json!(true);
    }
    source["data"]["edges"] = json!([
        edge("ChatInput", "ChatInput-S2wgk", "message", &["Message"], "ChatOutput-jNfAw", "input_value", ANY, "other"),
        edge("ChatOutput", "ChatOutput-jNfAw", "message", &["Message"], "SaveToFile-VVVVb", "input", ANY, "other"),
    ]);
    let writer = load(&runtime, &source);
    run(&runtime, &writer, "today's news: café ☕", json!({}), "acme", "news").expect("runs");
    let saved = files.read(&scope("acme", "news"), "news-aggregated.json").expect("saved");
    assert_eq!(String::from_utf8_lossy(&saved.content), "{\n  \"message\": \"today's news: caf\\u00e9 \\u2615\"\n}");
    run(&runtime, &writer, "again", json!({"SaveToFile-VVVVb": {"append_mode": true}}), "acme", "news")
        .expect("appends");
    let saved = files.read(&scope("acme", "news"), "news-aggregated.json").expect("saved");
    let items: Json = serde_json::from_slice(&saved.content).expect("JSON");
    assert_eq!(items, json!([{"message": "today's news: café ☕"}, {"message": "again"}]));
    let said = run(&runtime, &writer, "x", json!({"SaveToFile-VVVVb": {"file_name": "../escape"}}), "acme", "news")
        .expect_err("a path")
        .to_string();
    assert!(said.contains("file name only"), "{said}");

    // Langflow Assistant's Directory lists and loads the agent's files.
    files.write(&scope("acme", "news"), "docs/guide.md", b"# Guide").expect("writes");
    files.write(&scope("acme", "news"), "docs/deep/er/x.md", b"too deep").expect("writes");
    files.write(&scope("globex", "news"), "docs/theirs.md", b"globex only").expect("writes");
    let lister =
        load(&runtime, &into_chat_output("starter/langflowassistant.json", "Directory", "dataframe", &["DataFrame"]));
    let text = answer(
        &run(
            &runtime,
            &lister,
            "",
            json!({"Directory-JiAX8": {"path": "./docs", "types": ["md"], "depth": 2}}),
            "acme",
            "news",
        )
        .expect("lists"),
    );
    assert!(text.contains("docs/guide.md") && text.contains("# Guide"), "{text}");
    assert!(!text.contains("too deep") && !text.contains("globex"), "{text}");
    let text = answer(
        &run(
            &runtime,
            &lister,
            "",
            json!({"Directory-JiAX8": {"path": ".", "types": ["json"], "depth": 0}}),
            "acme",
            "news",
        )
        .expect("lists"),
    );
    assert!(text.contains("news-aggregated.json"), "{text}");
    let said = run(&runtime, &lister, "", json!({"Directory-JiAX8": {"path": "../globex"}}), "acme", "news")
        .expect_err("escapes")
        .to_string();
    assert!(said.contains("escapes the allowed root"), "{said}");
}

// ---------------------------------------------- uploads and flows end to end

const SECRET: &[u8] = b"files-test-secret";
const FLOW_ID: &str = "portfolio-flow";

struct Plane {
    plane: Arc<DataPlane>,
    model: ModelServer,
    files: FileStore,
    _dir: tempfile::TempDir,
}

async fn plane(max_file: u64, max_tenant: u64) -> Plane {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = store(dir.path(), max_file, max_tenant);
    let model = ModelServer::start(Options::default()).await.expect("model server");
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", model.url());
    let runtime = runtime_with(Some(files.clone()), &[provider]);
    let plane = DataPlane::new(runtime, DataPlaneConfig::default());
    plane.keys.add_secret("k1", SECRET);
    for (id, tenant, path) in [
        ("portfolio", "acme", "starter/portfolio-website-code-generator.json"),
        ("rival-portfolio", "globex", "starter/portfolio-website-code-generator.json"),
        ("sentiment", "acme", "starter/text-sentiment-analysis.json"),
    ] {
        let (artifact, _) =
            compile(shared_flow(path).to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
        let flow = plane.runtime.load_flow(&artifact.component).expect("loads");
        // Two buyers of one seller's flow share its flow id.
        let flow_id = if id == "sentiment" { "sentiment-flow".to_owned() } else { FLOW_ID.to_owned() };
        plane.agents.provision(Agent {
            id: id.into(),
            tenant: tenant.into(),
            flow_id,
            endpoint_name: None,
            flow,
            limits: Limits::default(),
            secrets: Secrets::default(),
            persona: None,
            widget_origins: Vec::new(),
        });
    }
    Plane { plane: Arc::new(plane), model, files, _dir: dir }
}

fn key(tenant: &str, scopes: &[&str]) -> String {
    let claims = Claims {
        sub: format!("key-{tenant}"),
        tenant: tenant.into(),
        agents: vec![],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        subscription: None,
        rpm: None,
        exp: 4_000_000_000,
    };
    issue(&claims, "k1", SECRET).expect("signs")
}

fn multipart(filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sandflow-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: \
         text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(plane: &Arc<DataPlane>, request: Request<Body>) -> (StatusCode, Json) {
    let (status, _, bytes) = exchange(plane, request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
}

async fn exchange(plane: &Arc<DataPlane>, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = router(plane.clone()).oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.expect("body").to_bytes().to_vec())
}

/// A `GET` or `DELETE` with the key.
fn without_body(method: &str, uri: &str, api_key: &str) -> Request<Body> {
    Request::builder().method(method).uri(uri).header("x-api-key", api_key).body(Body::empty()).expect("request")
}

async fn upload(
    plane: &Arc<DataPlane>,
    flow: &str,
    api_key: Option<&str>,
    filename: &str,
    content: &[u8],
) -> (StatusCode, Json) {
    let (content_type, body) = multipart(filename, content);
    let mut request = Request::post(format!("/api/v1/files/upload/{flow}")).header("content-type", content_type);
    if let Some(k) = api_key {
        request = request.header("x-api-key", k);
    }
    send(plane, request.body(Body::from(body)).expect("request")).await
}

async fn run_flow(plane: &Arc<DataPlane>, flow: &str, api_key: &str, tweaks: Json) -> (StatusCode, Json) {
    let body = json!({"input_value": "", "output_type": "any", "tweaks": tweaks, "session_id": "s1"});
    let request = Request::post(format!("/api/v1/run/{flow}"))
        .header("content-type", "application/json")
        .header("x-api-key", api_key)
        .body(Body::from(body.to_string()))
        .expect("request");
    send(plane, request).await
}

fn chat_requests(model: &ModelServer) -> Vec<Json> {
    model.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

fn last_user_message(request: &Json) -> String {
    let messages = request["messages"].as_array().expect("messages");
    messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("").to_owned()
}

const RESUME: &str = "Ada Lovelace\nAnalyst and writer.\nSkills: notes on the Analytical Engine.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_generator_reads_an_uploaded_resume() {
    let p = plane(1 << 20, 1 << 30).await;
    let acme = key("acme", &["run"]);
    let (status, body) =
        upload(&p.plane, "portfolio", Some(&acme), "C:\\fakepath\\resume.txt", RESUME.as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["flowId"], FLOW_ID, "Langflow's response shape: {body}");
    let file_path = body["file_path"].as_str().expect("file_path").to_owned();
    assert!(file_path.starts_with(&format!("{FLOW_ID}/")) && file_path.ends_with("_resume.txt"), "{file_path}");
    let stored = p.files.read(&scope("acme", "portfolio"), &file_path).expect("stored in acme's storage");
    assert_eq!(stored.content, RESUME.as_bytes());

    let (status, body) = run_flow(&p.plane, "portfolio", &acme, json!({"File-wvfA7": {"path": file_path}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = body["outputs"][0]["outputs"][0]["results"]["message"]["text"].as_str().expect("answer");
    assert_eq!(answer, format!("You said: {RESUME}"));
    let sent = chat_requests(&p.model);
    assert_eq!(sent.len(), 1);
    assert_eq!(last_user_message(&sent[0]), RESUME, "the file's text is what the agent sends the model");
    assert_eq!(sent[0]["messages"][0]["role"], "system");
    assert!(sent[0]["messages"][0]["content"].as_str().unwrap_or("").contains("portfolio website generator"));

    // Another tenant's agent of the same flow, with acme's exact stored name.
    let globex = key("globex", &["run"]);
    let (status, body) =
        run_flow(&p.plane, "rival-portfolio", &globex, json!({"File-wvfA7": {"path": file_path}})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("File not found"), "{body}");
    assert_eq!(chat_requests(&p.model).len(), 1, "nothing of acme's reached the model for globex");
    // And it cannot upload into acme's agent.
    let (status, _) = upload(&p.plane, "portfolio", Some(&globex), "x.txt", b"x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_sentiment_analysis_reads_an_uploaded_file() {
    let p = plane(1 << 20, 1 << 30).await;
    let acme = key("acme", &["run"]);
    let discussion = "User A: the new release is great.\nUser B: the docs are confusing.\n";
    let (status, body) = upload(&p.plane, "sentiment", Some(&acme), "discussion.md", discussion.as_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let file_path = body["file_path"].as_str().expect("file_path").to_owned();
    let (status, body) = run_flow(&p.plane, "sentiment", &acme, json!({"File-a3YoT": {"path": [file_path]}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outputs = body["outputs"][0]["outputs"].as_array().expect("outputs");
    let answers: Vec<&str> = outputs.iter().filter_map(|o| o["results"]["message"]["text"].as_str()).collect();
    assert_eq!(answers.len(), 2, "{body}");
    assert!(answers.contains(&format!("You said: {discussion}").as_str()), "the analysis agent: {answers:?}");
    let sent = chat_requests(&p.model);
    let with_file = sent.iter().filter(|r| last_user_message(r) == discussion).count();
    assert_eq!(with_file, 2, "both agents the File node feeds receive its text");
    assert!(
        sent.iter().any(|r| last_user_message(r).contains(&format!("You said: {discussion}"))),
        "the summary reaches the third agent through the prompt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_clearly() {
    // 3,000 bytes of files, in two agents' directories and their flows' folders.
    let cap = 3_000 + 4 * DIRECTORY_BYTES;
    let p = plane(1_024, cap).await;
    let acme = key("acme", &["run"]);
    let (status, body) = upload(&p.plane, "portfolio", None, "a.txt", b"x").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no key: {body}");
    let (status, body) = upload(&p.plane, "portfolio", Some(&key("acme", &["widget"])), "a.txt", b"x").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "widget keys: {body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("`run` scope"), "{body}");
    let (status, _) = upload(&p.plane, "no-such-flow", Some(&acme), "a.txt", b"x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = upload(&p.plane, "portfolio", Some(&acme), "big.txt", &[b'x'; 1_025]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = upload(&p.plane, "portfolio", Some(&acme), "huge.txt", &vec![b'x'; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "over the body limit: {body}");
    for n in 0..2 {
        let (status, body) = upload(&p.plane, "portfolio", Some(&acme), &format!("f{n}.txt"), &[b'x'; 1_000]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = upload(&p.plane, "sentiment", Some(&acme), "f3.txt", &[b'x'; 1_000]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = upload(&p.plane, "sentiment", Some(&acme), "f4.txt", &[b'x'; 1_000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "the tenant's cap: {body}");
    assert!(body["detail"].as_str().unwrap_or("").contains(&cap.to_string()), "{body}");

    // A hostile file name is one name inside the agent's storage.
    let (status, body) =
        upload(&p.plane, "rival-portfolio", Some(&key("globex", &["run"])), "../../../etc/passwd", b"x").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = body["file_path"].as_str().expect("path");
    assert!(path.starts_with(&format!("{FLOW_ID}/")) && path.ends_with("_passwd") && !path.contains(".."), "{path}");

    let request = Request::post("/api/v1/files/upload/portfolio")
        .header("content-type", "application/json")
        .header("x-api-key", &acme)
        .body(Body::from("{}"))
        .expect("request");
    let (status, body) = send(&p.plane, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (content_type, _) = multipart("a.txt", b"");
    let request = Request::post("/api/v1/files/upload/portfolio")
        .header("content-type", content_type)
        .header("x-api-key", &acme)
        .body(Body::from("--sandflow-test-boundary\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--sandflow-test-boundary--\r\n"))
        .expect("request");
    let (status, body) = send(&p.plane, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("`file` field"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_listed_downloaded_and_deleted_as_in_langflow() {
    let p = plane(1 << 20, 1 << 30).await;
    let acme = key("acme", &["run"]);
    let mut stored = Vec::new();
    for (name, content) in
        [("notes.txt", &b"first notes"[..]), ("chart.png", b"\x89PNG fake"), ("r\u{e9}sum\u{e9}.md", b"# CV")]
    {
        let (status, body) = upload(&p.plane, "portfolio", Some(&acme), name, content).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let path = body["file_path"].as_str().expect("file_path");
        stored.push(path.strip_prefix(&format!("{FLOW_ID}/")).expect("in the flow's folder").to_owned());
    }
    let (notes, chart, resume) = (&stored[0], &stored[1], &stored[2]);
    // What a flow wrote elsewhere in the agent's storage.
    p.files.write(&scope("acme", "portfolio"), "reports/week.txt", b"written by a run").expect("a run's file");
    p.files.write(&scope("acme", "portfolio"), &format!("{FLOW_ID}/drafts/old.txt"), b"deeper").expect("deeper");

    // Langflow's listing: the flow folder's own files.
    let (status, body) = send(&p.plane, without_body("GET", "/api/v1/files/list/portfolio", &acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut listed: Vec<&str> = body["files"].as_array().expect("files").iter().filter_map(|f| f.as_str()).collect();
    listed.sort_unstable();
    let mut expected = vec![notes.as_str(), chart.as_str(), resume.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);

    // Downloads are attachments that never render.
    let (status, headers, bytes) =
        exchange(&p.plane, without_body("GET", &format!("/api/v1/files/download/portfolio/{notes}"), &acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"first notes");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(disposition.starts_with(&format!("attachment; filename=\"{notes}\"")), "{disposition}");
    let encoded = resume.replace('\u{e9}', "%C3%A9");
    let (status, headers, bytes) =
        exchange(&p.plane, without_body("GET", &format!("/api/v1/files/download/portfolio/{encoded}"), &acme)).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, &b"# CV"[..]));
    assert!(headers["content-disposition"].to_str().expect("ascii").contains(&format!("UTF-8''{encoded}")));
    let (status, headers, bytes) =
        exchange(&p.plane, without_body("GET", &format!("/api/v1/files/images/portfolio/{chart}"), &acme)).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, &b"\x89PNG fake"[..]));
    assert_eq!(headers["content-type"], "image/png");
    assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
    let (status, body) =
        send(&p.plane, without_body("GET", &format!("/api/v1/files/images/portfolio/{notes}"), &acme)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("not an image"), "{body}");

    // Names that leave the folder, or do not exist.
    for hostile in ["..%2F..%2Fetc%2Fpasswd", "drafts%2Fold.txt", "%2E%2E", ".hidden"] {
        let (status, body) =
            send(&p.plane, without_body("GET", &format!("/api/v1/files/download/portfolio/{hostile}"), &acme)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile}: {body}");
        let (status, body) =
            send(&p.plane, without_body("DELETE", &format!("/api/v1/files/delete/portfolio/{hostile}"), &acme)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile}: {body}");
    }
    let (status, body) =
        send(&p.plane, without_body("GET", "/api/v1/files/download/portfolio/missing.txt", &acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Another tenant's agent of the same flow sees none of them.
    let globex = key("globex", &["run"]);
    let (status, body) = send(&p.plane, without_body("GET", "/api/v1/files/list/rival-portfolio", &globex)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"files": []})));
    let (status, _) =
        send(&p.plane, without_body("GET", &format!("/api/v1/files/download/rival-portfolio/{notes}"), &globex)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (method, uri) in [
        ("GET", "/api/v1/files/list/portfolio".to_owned()),
        ("GET", format!("/api/v1/files/download/portfolio/{notes}")),
        ("DELETE", format!("/api/v1/files/delete/portfolio/{notes}")),
        ("GET", "/v1/agents/portfolio/files".to_owned()),
        ("DELETE", "/v1/agents/portfolio/files/reports/week.txt".to_owned()),
    ] {
        let (status, body) = send(&p.plane, without_body(method, &uri, &globex)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri} with another tenant's key: {body}");
        let (status, body) = send(&p.plane, without_body(method, &uri, &key("acme", &["widget"]))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri} with a widget key: {body}");
    }
    assert!(p.files.read(&scope("acme", "portfolio"), &format!("{FLOW_ID}/{notes}")).is_ok(), "still there");

    // Deleting, as Langflow answers it: also for a file that is not there.
    let used = p.files.tenant_bytes("acme").expect("used");
    for _ in 0..2 {
        let (status, body) =
            send(&p.plane, without_body("DELETE", &format!("/api/v1/files/delete/portfolio/{notes}"), &acme)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"message": format!("File {notes} deleted successfully")}));
    }
    assert_eq!(p.files.tenant_bytes("acme").expect("used"), used - 11, "its bytes are given back");
    let (_, body) = send(&p.plane, without_body("GET", "/api/v1/files/list/portfolio", &acme)).await;
    assert_eq!(body["files"].as_array().map(Vec::len), Some(2), "{body}");

    // The native API reaches every file of the agent.
    let (status, body) = send(&p.plane, without_body("GET", "/v1/agents/portfolio/files", &acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["files"].as_array().expect("files").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{FLOW_ID}/{chart}"),
            format!("{FLOW_ID}/{resume}"),
            format!("{FLOW_ID}/drafts/old.txt"),
            "reports/week.txt".to_owned()
        ]
    );
    assert_eq!(body["files"][3]["bytes"], 16);
    assert_eq!(body["tenant_bytes"], p.files.tenant_bytes("acme").expect("used"));
    assert_eq!(body["max_tenant_bytes"], 1u64 << 30);
    let (_, body) = send(&p.plane, without_body("GET", "/v1/agents/portfolio/files?prefix=reports/", &acme)).await;
    assert_eq!(body["files"], json!([{"name": "reports/week.txt", "bytes": 16}]));
    let (status, _) = send(&p.plane, without_body("GET", "/v1/agents/portfolio/files?limit=3", &acme)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown query parameter is named, not ignored");
    let (status, headers, bytes) =
        exchange(&p.plane, without_body("GET", "/v1/agents/portfolio/files/reports/week.txt", &acme)).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, &b"written by a run"[..]));
    assert!(headers["content-disposition"].to_str().expect("ascii").contains("filename=\"week.txt\""));
    let (status, _) =
        send(&p.plane, without_body("DELETE", "/v1/agents/portfolio/files/reports/week.txt", &acme)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        send(&p.plane, without_body("DELETE", "/v1/agents/portfolio/files/reports/week.txt", &acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        send(&p.plane, without_body("GET", "/v1/agents/portfolio/files/..%2F..%2Fsentiment/x", &acme)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!p.files.config().root.join("acme/portfolio/reports").exists(), "the emptied folder went with its file");

    // A tenant whose month is used up may not upload, but may still see
    // and free its storage.
    p.plane.quotas.set("acme", Quota { runs: Some(0), ..Quota::default() });
    let (status, body) = upload(&p.plane, "portfolio", Some(&acme), "more.txt", b"more").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, body) = send(&p.plane, without_body("GET", "/api/v1/files/list/portfolio", &acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        send(&p.plane, without_body("DELETE", &format!("/api/v1/files/delete/portfolio/{chart}"), &acme)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A download is sent a chunk at a time from the file as it was when the
/// download began: a write or a deletion meanwhile changes nothing of what
/// this download sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_streams_the_file_it_opened() {
    let p = plane(1 << 20, 1 << 30).await;
    let acme = key("acme", &["run"]);
    let content: Vec<u8> = (0..200_000u32).map(|n| (n * 7 % 251) as u8).collect();
    p.files.write(&scope("acme", "portfolio"), "reports/big.bin", &content).expect("written");

    let request = without_body("GET", "/v1/agents/portfolio/files/reports/big.bin", &acme);
    let response = router(p.plane.clone()).oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], content.len().to_string());
    p.files.write(&scope("acme", "portfolio"), "reports/big.bin", b"replaced").expect("replaced");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("read").into_data().expect("data");
    assert!(first.len() <= 64 << 10, "a chunk, not the whole file: {} bytes", first.len());
    assert!(p.files.delete(&scope("acme", "portfolio"), "reports/big.bin").expect("deleted"));
    let rest = body.collect().await.expect("the rest").to_bytes();
    assert_eq!([&first[..], &rest[..]].concat(), content, "the file as it was opened");

    let (status, body) = send(&p.plane, without_body("GET", "/v1/agents/portfolio/files/reports/big.bin", &acme)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
