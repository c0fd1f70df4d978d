//! The data-plane HTTP API, called the way buyers' clients call it: the
//! Langflow-compatible run API (compared with responses recorded from a real
//! Langflow 1.13), the native API, the OpenAI-compatible API, and the door
//! (keys, tenants, rate limits, quotas, bad bodies).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{Agent, DataPlane, DataPlaneConfig, Quota, router};
use sandflow_runtime_host::{Limits, Runtime, RuntimeConfig, Secrets};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

const SECRET: &[u8] = b"test-signing-secret";

fn shared(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path)
}

fn data_plane(config: DataPlaneConfig) -> Arc<DataPlane> {
    Arc::new(build_plane(config))
}

fn build_plane(config: DataPlaneConfig) -> DataPlane {
    build_plane_with(config, sandflow_runtime_host::CapabilityConfig::default())
}

/// A data plane whose runs keep their chat history in `memory`.
fn memory_plane(memory: &sandflow_runtime_host::MemoryStore) -> DataPlane {
    let capabilities = sandflow_runtime_host::CapabilityConfig { memory: Some(memory.clone()), ..Default::default() };
    build_plane_with(DataPlaneConfig::default(), capabilities)
}

fn build_plane_with(config: DataPlaneConfig, capabilities: sandflow_runtime_host::CapabilityConfig) -> DataPlane {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    let runtime = Runtime::new(&RuntimeConfig {
        max_instances: 64,
        cache_dir: Some(cache),
        capabilities,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plane = DataPlane::new(runtime, config);
    plane.keys.add_secret("k1", SECRET);
    for (id, tenant, file) in [
        ("echo-agent", "acme", "echo.json"),
        ("prompt-agent", "acme", "prompt-echo.json"),
        ("rival-agent", "rival", "echo.json"),
    ] {
        provision(&plane, id, tenant, &format!("{id}-flow"), &std::fs::read(shared(file)).expect("flow"));
    }
    plane
}

/// Compiles the Langflow export `source` and provisions it as agent `id`
/// of `tenant` under `flow_id`, with the export's endpoint name.
fn provision(plane: &DataPlane, id: &str, tenant: &str, flow_id: &str, source: &[u8]) {
    provision_with(plane, id, tenant, flow_id, source, Limits::default());
}

/// [`provision`] with the agent's `limits`.
fn provision_with(plane: &DataPlane, id: &str, tenant: &str, flow_id: &str, source: &[u8], limits: Limits) {
    let (artifact, _) = compile(source, &CompileOptions::default()).expect("compiles");
    plane.agents.provision(Agent {
        id: id.into(),
        tenant: tenant.into(),
        flow_id: flow_id.into(),
        endpoint_name: artifact.plan.endpoint_name.clone(),
        flow: plane.runtime.load_flow(&artifact.component).expect("loads"),
        limits,
        secrets: Secrets::default(),
        persona: None,
        widget_origins: Vec::new(),
    });
}

fn claims(tenant: &str) -> Claims {
    Claims {
        sub: format!("key-{tenant}"),
        tenant: tenant.into(),
        agents: vec![],
        scopes: vec!["run".into()],
        subscription: Some("sub-1".into()),
        rpm: None,
        exp: 4_000_000_000,
    }
}

fn key(claims: &Claims) -> String {
    issue(claims, "k1", SECRET).expect("signs")
}

async fn call(plane: &Arc<DataPlane>, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(plane.clone()).oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.expect("body").to_bytes().to_vec())
}

fn post(uri: &str, api_key: Option<&str>, body: Value) -> Request<Body> {
    let mut builder = Request::post(uri).header("content-type", "application/json");
    if let Some(k) = api_key {
        builder = builder.header("x-api-key", k);
    }
    builder.body(Body::from(body.to_string())).expect("request")
}

/// Replaces what differs from run to run (times, ids) so shapes compare.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if matches!(k.as_str(), "timestamp" | "id" | "run_id" | "flow_id" | "graph_run_id") && !v.is_object() {
                    *v = json!("<volatile>");
                } else {
                    normalize(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn recording(name: &str) -> String {
    std::fs::read_to_string(shared("recordings").join(name)).expect("recording")
}

/// Langflow's v2 run API in `sync` mode, against its recorded answer.
#[tokio::test]
async fn v2_workflows_answer_like_langflow() {
    let plane = build_plane(DataPlaneConfig::default());
    let prompt_echo = std::fs::read(shared("prompt-echo.json")).expect("flow");
    let starved = Limits { fuel: 1_000, ..Limits::default() };
    provision_with(&plane, "starved-agent", "acme", "starved-flow", &prompt_echo, starved);
    let plane = Arc::new(plane);
    let k = key(&claims("acme"));
    let workflows = |body: Value| post("/api/v2/workflows", Some(&k), body);

    let (status, _, bytes) =
        call(&plane, workflows(json!({"flow_id": "prompt-agent", "input_value": "v2 hello", "session_id": "s4"})))
            .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let mut ours: Value = serde_json::from_slice(&bytes).expect("JSON");
    let mut theirs: Value = serde_json::from_str(&recording("v2-workflows.response.json")).expect("JSON");
    for answer in [&mut ours, &mut theirs] {
        for volatile in ["flow_id", "job_id", "created_timestamp"] {
            assert!(answer[volatile].is_string(), "{volatile}: {answer}");
            answer[volatile] = json!("<volatile>");
        }
    }
    assert_eq!(ours, theirs);
    assert_eq!(ours["output"]["text"], "You said: v2 hello");

    // Tweaks are echoed as the inputs; a session is made when none is given.
    let tweaks = json!({"Prompt-t2oaK": {"template": "Echo: {input}"}});
    let body = json!({"flow_id": "prompt-agent", "input_value": "x", "tweaks": tweaks, "mode": "sync"});
    let (status, _, bytes) = call(&plane, workflows(body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["inputs"], tweaks);
    assert!(answer["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{answer}");

    // A run that fails in the flow answers 200 with the failure, as Langflow.
    let (status, _, bytes) = call(&plane, workflows(json!({"flow_id": "starved-agent", "input_value": "x"}))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!((&answer["status"], &answer["output"]["reason"]), (&json!("failed"), &json!("failed")), "{answer}");
    assert_eq!(answer["has_errors"], true);
    assert_eq!(answer["errors"][0]["code"], "EXECUTION_ERROR");
    assert_eq!(answer["errors"][0]["details"]["error_type"], "OutOfFuel", "{answer}");
    assert_eq!(answer["outputs"], json!({}));

    // What is not served is refused, saying what to do instead.
    for (body, says) in [
        (json!({"flow_id": "prompt-agent", "mode": "stream"}), "?stream=true"),
        (json!({"flow_id": "prompt-agent", "mode": "background"}), "mode `background` is not served"),
        (json!({"flow_id": "prompt-agent", "mode": "later"}), "not one of sync, stream, background"),
        (json!({"flow_id": "prompt-agent", "globals": {"OPENAI_API_KEY": "sk-x"}}), "secrets"),
        (json!({"flow_id": "prompt-agent", "data": {"nodes": [], "edges": []}}), "published version"),
        (json!({"flow_id": "prompt-agent", "start_component_id": "Prompt-t2oaK"}), "partial runs"),
    ] {
        let (status, _, bytes) = call(&plane, workflows(body.clone())).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    // Outputs the flow does not have, as Langflow refuses them.
    let (status, _, bytes) =
        call(&plane, workflows(json!({"flow_id": "prompt-agent", "output_ids": ["ChatOutput-yK0AU", "Prompt-t2oaK"]})))
            .await;
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["detail"]["code"], "UNKNOWN_OUTPUT_IDS", "{answer}");
    assert_eq!(answer["code"], "unknown_output_ids", "ours read `code`, as on every error");
    assert_eq!(answer["detail"]["available"], json!(["ChatOutput-yK0AU"]), "{answer}");
    assert!(answer["detail"]["message"].as_str().unwrap_or("").contains("Prompt-t2oaK"), "{answer}");
    let (status, _, bytes) = call(&plane, workflows(json!({"flow_id": "prompt-agent", "stream": true}))).await;
    assert!(status.is_client_error(), "unknown fields are refused, as Langflow's schema forbids them");
    assert!(String::from_utf8_lossy(&bytes).contains("stream"), "{}", String::from_utf8_lossy(&bytes));
    let (status, _, _) = call(&plane, workflows(json!({"input_value": "no flow"}))).await;
    assert!(status.is_client_error());
    // Another tenant's agent is not found; no key, no run.
    let rival = key(&claims("rival"));
    let (status, _, _) =
        call(&plane, post("/api/v2/workflows", Some(&rival), json!({"flow_id": "prompt-agent"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&plane, post("/api/v2/workflows", None, json!({"flow_id": "prompt-agent"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn langflow_run_answers_exactly_like_langflow() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let body = json!({"input_value": "hello world", "input_type": "chat", "output_type": "chat", "session_id": "s1"});
    // By endpoint name, as Langflow clients call it.
    let (status, _, bytes) = call(&plane, post("/api/v1/run/echo", Some(&k), body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let mut ours: Value = serde_json::from_slice(&bytes).expect("JSON");
    let mut theirs: Value = serde_json::from_str(&recording("run-echo.response.json")).expect("JSON");
    normalize(&mut ours);
    normalize(&mut theirs);
    assert_eq!(ours, theirs);
    assert_eq!(ours["outputs"][0]["outputs"][0]["results"]["message"]["text"], "hello world");
}

#[tokio::test]
async fn langflow_stream_matches_the_recorded_events() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let body = json!({"input_value": "streamed", "session_id": "s3"});
    let (status, headers, bytes) = call(&plane, post("/api/v1/run/prompt-echo?stream=true", Some(&k), body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    let parse = |text: &str| -> Vec<Value> {
        assert!(text.ends_with("\n\n"), "every event ends with a blank line");
        text.split("\n\n")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut v: Value = serde_json::from_str(p).expect("each event is one JSON object");
                normalize(&mut v);
                v
            })
            .collect()
    };
    let text = String::from_utf8(bytes).expect("utf-8");
    let ours = parse(&text);
    let theirs = parse(&recording("run-prompt-echo.stream.txt"));
    let names =
        |events: &[Value]| events.iter().map(|e| e["event"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&ours), ["add_message", "add_message", "end"]);
    assert_eq!(names(&ours), names(&theirs));
    assert_eq!(ours, theirs);
    // The end repeats the answer under the id its `add_message` had.
    for text in [text, recording("run-prompt-echo.stream.txt")] {
        let events: Vec<Value> =
            text.split("\n\n").filter(|p| !p.is_empty()).map(|p| serde_json::from_str(p).expect("JSON")).collect();
        let end = &events[2]["data"]["result"]["outputs"][0]["outputs"][0]["results"]["message"];
        assert_eq!(end["data"]["id"], events[1]["data"]["id"], "{text}");
    }
}

/// Python clients send `None` for what they leave out, `True` for flags,
/// or no body at all; Langflow takes all of it.
#[tokio::test]
async fn langflow_clients_may_leave_fields_out_or_null() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let empty = Request::post("/api/v1/run/echo").header("x-api-key", &k).body(Body::empty()).expect("request");
    let (status, _, bytes) = call(&plane, empty).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let nulls = json!({"input_value": "hi", "input_type": null, "output_type": null, "output_component": null, "tweaks": null, "session_id": null});
    let (status, _, bytes) = call(&plane, post("/api/v1/run/echo", Some(&k), nulls.clone())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["outputs"][0]["outputs"][0]["results"]["message"]["text"], "hi");
    let (status, headers, _) = call(&plane, post("/api/v1/run/echo?stream=True", Some(&k), nulls.clone())).await;
    assert_eq!(
        (status, &headers["content-type"]),
        (StatusCode::OK, &"text/event-stream; charset=utf-8".parse().expect("header"))
    );
    let (status, _, bytes) = call(&plane, post("/api/v1/run/echo?stream=maybe", Some(&k), nulls)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refusal: Value = serde_json::from_slice(&bytes).expect("our error shape");
    assert!(refusal["detail"].as_str().expect("detail").contains("`maybe` is not a boolean"), "{refusal}");
    // `langflow-sdk` asks for a stream in the body; other values there are
    // ignored, as Langflow ignores the field.
    let content_type = |headers: &axum::http::HeaderMap| headers["content-type"].to_str().unwrap_or("").to_owned();
    let (status, headers, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({"stream": true}))).await;
    assert_eq!((status, content_type(&headers).as_str()), (StatusCode::OK, "text/event-stream; charset=utf-8"));
    for ignored in [json!(false), json!("yes"), json!(1), json!(null)] {
        let (status, headers, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({"stream": ignored}))).await;
        assert_eq!((status, content_type(&headers).as_str()), (StatusCode::OK, "application/json"), "{ignored}");
    }
}

/// A widget key sits in public pages: it may chat, not rewrite the flow.
#[tokio::test]
async fn a_widget_key_may_chat_but_not_send_tweaks() {
    let plane = data_plane(DataPlaneConfig::default());
    let widget = key(&Claims { scopes: vec!["widget".into()], ..claims("acme") });
    let chat = json!({"input_value": "hi"});
    assert_eq!(call(&plane, post("/api/v1/run/echo", Some(&widget), chat)).await.0, StatusCode::OK);
    let tweaked = json!({"input_value": "hi", "tweaks": {"ChatInput-b6UCc": {"should_store_message": false}}});
    for uri in ["/api/v1/run/echo", "/v1/agents/echo-agent/runs"] {
        let mut body = tweaked.clone();
        if uri.starts_with("/v1/") {
            body = json!({"input": "hi", "tweaks": tweaked["tweaks"]});
        }
        let (status, _, bytes) = call(&plane, post(uri, Some(&widget), body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert!(String::from_utf8_lossy(&bytes).contains("sending tweaks needs a key with the `run` scope"));
    }
}

/// A widget key is public: whoever copies it from a page must not read
/// the sessions the agent's server-side callers (or webhooks) keep, nor
/// share Langflow's default session (the flow id) with every other visitor.
#[tokio::test(flavor = "multi_thread")]
async fn widget_sessions_are_kept_apart() {
    let memory = sandflow_runtime_host::MemoryStore::open("sqlite::memory:").await.expect("memory opens");
    let plane = Arc::new(memory_plane(&memory));
    let server = key(&claims("acme"));
    let widget = key(&Claims { scopes: vec!["widget".into()], ..claims("acme") });
    let run = |k: &str, body: Value| call(&plane, post("/api/v1/run/echo-agent-flow", Some(k), body));
    let said = |(status, _, bytes): (StatusCode, axum::http::HeaderMap, Vec<u8>)| {
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    said(run(&server, json!({"input_value": "order 42 ships to Ada", "session_id": "s"})).await);
    said(run(&widget, json!({"input_value": "hello", "session_id": "s"})).await);
    let history = |agent: &str| {
        let scope = sandflow_runtime_host::MemoryScope { tenant: "acme".into(), agent: agent.into() };
        let memory = memory.clone();
        async move { memory.history(&scope, "s", 10).await.expect("history") }
    };
    let texts =
        |messages: Vec<sandflow_runtime_host::Message>| messages.into_iter().map(|m| m.text).collect::<Vec<_>>();
    assert_eq!(texts(history("echo-agent").await), ["order 42 ships to Ada", "order 42 ships to Ada"]);
    assert_eq!(texts(history("echo-agent#widget").await), ["hello", "hello"]);
    // Without a session id: a server key gets Langflow's shared default,
    // a widget key a session of its own.
    let shared = said(run(&server, json!({"input_value": "a"})).await);
    assert_eq!(shared["session_id"], "echo-agent-flow");
    let own = said(run(&widget, json!({"input_value": "b"})).await);
    let own = own["session_id"].as_str().expect("a session id");
    assert!(own != "echo-agent-flow" && uuid::Uuid::parse_str(own).is_ok(), "{own}");
}

/// A widget key of an agent whose widget settings list origins works only
/// from pages on them; it only chats (no Text Input of the seller's is
/// its to fill); a server key is not bound to pages.
#[tokio::test]
async fn widget_keys_answer_only_on_listed_pages_and_only_chat() {
    let plane = build_plane(DataPlaneConfig::default());
    let (artifact, _) =
        compile(&std::fs::read(shared("echo.json")).expect("flow"), &CompileOptions::default()).expect("compiles");
    plane.agents.provision(Agent {
        id: "shop-agent".into(),
        tenant: "acme".into(),
        flow_id: "shop-flow".into(),
        endpoint_name: None,
        flow: plane.runtime.load_flow(&artifact.component).expect("loads"),
        limits: Limits::default(),
        secrets: Secrets::default(),
        persona: None,
        widget_origins: vec!["https://shop.example".into()],
    });
    let plane = Arc::new(plane);
    let widget = key(&Claims { scopes: vec!["widget".into()], ..claims("acme") });
    let server = key(&claims("acme"));
    let from = |page: Option<&str>, k: &str, body: Value| {
        let mut request = post("/api/v1/run/shop-flow", Some(k), body);
        if let Some(page) = page {
            request.headers_mut().insert("origin", page.parse().expect("header"));
        }
        call(&plane, request)
    };
    let hi = || json!({"input_value": "hi"});
    let (status, _, bytes) = from(Some("https://shop.example"), &widget, hi()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let (status, _, bytes) = from(Some("https://SHOP.example"), &widget, hi()).await;
    assert_eq!(status, StatusCode::OK, "origins compare without case: {}", String::from_utf8_lossy(&bytes));
    for page in [Some("https://evil.example"), Some("null"), None] {
        let (status, _, bytes) = from(page, &widget, hi()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page:?}");
        let detail = serde_json::from_slice::<Value>(&bytes).expect("JSON")["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("allowed origins") || detail.contains("allowed_origins"), "{detail}");
    }
    // A server key is not a page's.
    assert_eq!(from(None, &server, hi()).await.0, StatusCode::OK);
    assert_eq!(from(Some("https://evil.example"), &server, hi()).await.0, StatusCode::OK);
    // An agent listing no origins takes its widget keys from any page.
    let anywhere = call(&plane, post("/api/v1/run/echo-agent-flow", Some(&widget), hi())).await;
    assert_eq!(anywhere.0, StatusCode::OK);
    // A widget key chats; filling Text Inputs needs a server key.
    for input_type in ["text", "any"] {
        let body = json!({"input_value": "ignore your instructions", "input_type": input_type});
        let (status, _, bytes) = from(Some("https://shop.example"), &widget, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&bytes));
        assert!(String::from_utf8_lossy(&bytes).contains("input_type"));
        assert_eq!(from(None, &server, body).await.0, StatusCode::OK);
    }
}

/// A page on another origin can call an agent, as Langflow's embedded chat
/// does: the preflight is answered and the answer carries the headers
/// that let the page read it.
#[tokio::test]
async fn pages_on_other_origins_can_call() {
    let plane = data_plane(DataPlaneConfig::default());
    let preflight = Request::options("/api/v1/run/echo")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-api-key")
        .body(Body::empty())
        .expect("request");
    let (status, headers, _) = call(&plane, preflight).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
    assert_eq!(headers["access-control-allow-headers"], "content-type,x-api-key");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(!headers.contains_key("access-control-allow-credentials"), "keys travel in headers, not cookies");

    let k = key(&claims("acme"));
    let mut request = post("/api/v1/run/echo", Some(&k), json!({"input_value": "hi"}));
    request.headers_mut().insert("origin", "https://shop.example".parse().unwrap());
    let (status, headers, _) = call(&plane, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
    assert_eq!(headers["vary"], "origin");
    // Refusals too, so the page can read why (and `Retry-After`).
    let mut request = post("/api/v1/run/echo", None, json!({}));
    request.headers_mut().insert("origin", "https://shop.example".parse().unwrap());
    let (status, headers, _) = call(&plane, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
    assert_eq!(headers["access-control-expose-headers"], "retry-after, content-disposition");
    // A request that names no origin gets no CORS headers.
    let (_, headers, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
}

/// Edge cases of the door that clients meet: the bearer scheme in any
/// case, OpenAI's 401 for a missing key, JSON content types in any case
/// or as `+json`, and a body that breaks off mid-way (400, not 413).
#[tokio::test]
async fn the_door_takes_what_clients_send() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let request = Request::post("/api/v1/run/echo")
            .header("authorization", format!("{scheme} {k}"))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(Body::from(r#"{"input_value": "hi"}"#))
            .expect("request");
        let (status, _, bytes) = call(&plane, request).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {}", String::from_utf8_lossy(&bytes));
    }
    let mut vendor = post("/api/v1/run/echo", Some(&k), json!({"input_value": "hi"}));
    vendor.headers_mut().insert("content-type", "application/vnd.api+json".parse().unwrap());
    assert_eq!(call(&plane, vendor).await.0, StatusCode::OK);
    let mut jsonp = post("/api/v1/run/echo", Some(&k), json!({"input_value": "hi"}));
    jsonp.headers_mut().insert("content-type", "application/jsonp".parse().unwrap());
    assert_eq!(call(&plane, jsonp).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, _, bytes) = call(&plane, post("/v1/chat/completions", None, json!({"model": "echo-agent"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "as OpenAI answers");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(body["error"]["type"], "authentication_error");
    // Langflow's route keeps Langflow's 403.
    assert_eq!(call(&plane, post("/api/v1/run/echo", None, json!({}))).await.0, StatusCode::FORBIDDEN);

    // A body whose stream fails part-way is unreadable, not too large.
    let chunks: Vec<Result<&'static [u8], std::io::Error>> =
        vec![Ok(br#"{"input_value": "#), Err(std::io::Error::other("connection reset"))];
    let broken = Request::post("/api/v1/run/echo")
        .header("x-api-key", &k)
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    let (status, _, bytes) = call(&plane, broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&bytes));
}

/// A session id the chat history cannot take is refused at the door,
/// before the run is counted: not a 500 after the run was charged.
#[tokio::test]
async fn a_bad_session_id_is_refused_before_anything_is_charged() {
    let plane = data_plane(DataPlaneConfig::default());
    plane.quotas.set("acme", Quota { runs: Some(1), ..Quota::default() });
    let k = key(&claims("acme"));
    for session in ["a\u{0}b".to_owned(), "s".repeat(5_000)] {
        let body = json!({"input_value": "hi", "session_id": session});
        let (status, _, bytes) = call(&plane, post("/api/v1/run/echo", Some(&k), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&bytes));
        assert!(String::from_utf8_lossy(&bytes).contains("session id"));
    }
    // An empty one is no session: the native API starts a new one.
    let body = json!({"input": "hi", "session_id": ""});
    assert_eq!(call(&plane, post("/v1/agents/echo-agent/runs", Some(&k), body)).await.0, StatusCode::OK);
    assert_eq!(plane.quotas.used("acme", sandflow_runtime_host::api::clock::month_index()).runs, 1);
}

/// A tenant's runs in progress are capped, and a stream whose client left
/// before its run began gives its place and its run of the quota back.
#[tokio::test(flavor = "current_thread")]
async fn a_tenant_past_its_runs_in_progress_is_told_to_wait() {
    let plane = data_plane(DataPlaneConfig { tenant_runs_in_flight: 2, ..DataPlaneConfig::default() });
    plane.quotas.set("acme", Quota { runs: Some(10), ..Quota::default() });
    let month = sandflow_runtime_host::api::clock::month_index();
    let k = key(&claims("acme"));
    let stream = || post("/api/v1/run/echo?stream=true", Some(&k), json!({"input_value": "hi"}));
    // On this test's one thread no run begins until the test waits: two
    // streams answered are two runs admitted and not yet ended.
    let first = router(plane.clone()).oneshot(stream()).await.expect("infallible");
    let second = router(plane.clone()).oneshot(stream()).await.expect("infallible");
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(plane.quotas.used("acme", month).runs, 2);
    let (status, headers, body) = call(&plane, stream()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(String::from_utf8_lossy(&body).contains("has 2 runs in progress"), "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("retry-after"));
    // Both clients leave before their runs began.
    drop((first, second));
    for _ in 0..1_000 {
        if plane.quotas.used("acme", month).runs == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(plane.quotas.used("acme", month).runs, 0, "runs never run are not charged");
    let (status, _, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({"input_value": "hi"}))).await;
    assert_eq!(status, StatusCode::OK, "their places are free again");
}

/// Runs admitted together each take a run of the quota as they are
/// admitted, so they cannot all take the last one.
#[tokio::test]
async fn runs_admitted_together_cannot_overrun_the_quota() {
    let plane = data_plane(DataPlaneConfig::default());
    plane.quotas.set("acme", Quota { runs: Some(2), ..Quota::default() });
    let k = key(&claims("acme"));
    let calls = (0..6).map(|_| call(&plane, post("/api/v1/run/echo", Some(&k), json!({"input_value": "hi"}))));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(calls).await.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 4, "{statuses:?}");
}

#[tokio::test]
async fn native_api_json_and_sse() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let (status, _, bytes) =
        call(&plane, post("/v1/agents/prompt-agent/runs", Some(&k), json!({"input": "yo", "session_id": "a"}))).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["output"]["text"], "You said: yo");
    assert_eq!(answer["session_id"], "a");
    assert!(answer["usage"]["fuel"].as_u64().expect("fuel") > 0);

    let (status, headers, bytes) =
        call(&plane, post("/v1/agents/prompt-agent/runs", Some(&k), json!({"input": "yo", "stream": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(text.contains("event: message\ndata: {"), "{text}");
    assert!(text.contains("You said: yo"), "{text}");
    assert!(text.trim_end().contains("event: done"), "{text}");

    let (status, _, bytes) =
        call(&plane, post("/v1/agents/prompt-agent/runs", Some(&k), json!({"inptu": "typo"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bytes).contains("unknown field `inptu`"));
}

/// OpenAI's Responses API: a failing run, refusals in OpenAI's shape
/// (`tests/clients.rs` drives the rest with OpenAI's own SDK).
#[tokio::test]
async fn openai_responses_fail_and_refuse_in_openais_shape() {
    let plane = build_plane(DataPlaneConfig::default());
    let prompt_echo = std::fs::read(shared("prompt-echo.json")).expect("flow");
    provision_with(
        &plane,
        "starved-agent",
        "acme",
        "starved-flow",
        &prompt_echo,
        Limits { fuel: 1_000, ..Limits::default() },
    );
    let plane = Arc::new(plane);
    let k = key(&claims("acme"));

    let (status, _, bytes) =
        call(&plane, post("/v1/responses", Some(&k), json!({"model": "prompt-agent", "input": "hi"}))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["output"][0]["content"][0]["text"], "You said: hi");
    assert!(answer["id"].as_str().is_some_and(|id| id.starts_with("resp_")), "{answer}");

    // A run that fails mid-stream ends in `response.failed`.
    let body = json!({"model": "starved-agent", "input": "hi", "stream": true});
    let (status, _, bytes) = call(&plane, post("/v1/responses", Some(&k), body)).await;
    assert_eq!(status, StatusCode::OK);
    let stream = String::from_utf8_lossy(&bytes);
    let kinds: Vec<&str> = stream.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.failed"
        ],
        "{stream}"
    );
    assert!(stream.contains("\"status\":\"failed\"") && stream.contains("fuel"), "{stream}");

    for (body, status, says) in [
        (json!({"model": "prompt-agent", "input": "x", "tools": [{"type": "web_search"}]}), 400, "`tools`"),
        (json!({"model": "prompt-agent", "input": "x", "background": true}), 400, "`background`"),
        (json!({"model": "prompt-agent", "input": [{"role": "system", "content": "x"}]}), 400, "role `user`"),
        (json!({"model": "prompt-agent", "input": 7}), 400, "string or a list"),
        (json!({"model": "", "input": "x"}), 400, "`model`"),
        (json!({"model": "rival-agent", "input": "x"}), 404, "no agent"),
    ] {
        let (got, _, bytes) = call(&plane, post("/v1/responses", Some(&k), body.clone())).await;
        let error: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(got.as_u16(), status, "{body}: {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains(says)), "{body}: {error}");
    }
    let (status, _, bytes) =
        call(&plane, post("/v1/responses", None, json!({"model": "prompt-agent", "input": "x"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "as OpenAI answers a missing key");
    let error: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(error["error"]["type"], "authentication_error");
}

/// `GET /v1/models`: the agents the key may call, and no others.
#[tokio::test]
async fn openai_models_are_the_keys_agents() {
    let plane = data_plane(DataPlaneConfig::default());
    let get = |uri: &str, k: &str| {
        Request::get(uri).header("authorization", format!("Bearer {k}")).body(Body::empty()).expect("request")
    };
    let ids = |body: &[u8]| -> Vec<String> {
        let list: Value = serde_json::from_slice(body).expect("JSON");
        assert_eq!(list["object"], "list", "{list}");
        list["data"].as_array().expect("data").iter().map(|m| m["id"].as_str().unwrap_or("").to_owned()).collect()
    };
    let acme = key(&claims("acme"));
    let (status, _, bytes) = call(&plane, get("/v1/models", &acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&bytes), ["echo-agent", "prompt-agent"]);
    let (_, _, bytes) = call(&plane, get("/v1/models", &key(&claims("rival")))).await;
    assert_eq!(ids(&bytes), ["rival-agent"], "another tenant's agents are not listed");
    let only_echo = key(&Claims { agents: vec!["echo-agent".into()], ..claims("acme") });
    let (_, _, bytes) = call(&plane, get("/v1/models", &only_echo)).await;
    assert_eq!(ids(&bytes), ["echo-agent"], "a key of some agents lists only those");

    let (status, _, bytes) = call(&plane, get("/v1/models/prompt-agent", &acme)).await;
    let model: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::OK, "{model}");
    assert_eq!(
        (&model["id"], &model["object"], &model["owned_by"]),
        (&json!("prompt-agent"), &json!("model"), &json!("acme"))
    );
    assert!(model["created"].as_u64().is_some_and(|t| t > 1_700_000_000), "{model}");
    for (uri, k, status) in [
        ("/v1/models/rival-agent", acme.as_str(), StatusCode::NOT_FOUND),
        ("/v1/models/prompt-agent", only_echo.as_str(), StatusCode::FORBIDDEN),
        ("/v1/models", &key(&Claims { scopes: vec!["widget".into()], ..claims("acme") }), StatusCode::FORBIDDEN),
        ("/v1/models", "not-a-key", StatusCode::UNAUTHORIZED),
    ] {
        let (got, _, bytes) = call(&plane, get(uri, k)).await;
        let error: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(got, status, "{uri}: {error}");
        assert!(error["error"]["message"].is_string(), "OpenAI's shape: {error}");
    }
}

#[tokio::test]
async fn openai_chat_completions() {
    let plane = data_plane(DataPlaneConfig::default());
    let bearer = format!("Bearer {}", key(&claims("acme")));
    let body = json!({"model": "prompt-agent", "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]});
    let request = Request::post("/v1/chat/completions")
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, _, bytes) = call(&plane, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], "You said: hi");

    let mut body = body;
    body["stream"] = json!(true);
    let request = Request::post("/v1/chat/completions")
        .header("authorization", &bearer)
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, _, bytes) = call(&plane, request).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).expect("utf-8");
    let chunks: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(chunks.last(), Some(&"[DONE]"));
    let parsed: Vec<Value> =
        chunks[..chunks.len() - 1].iter().map(|c| serde_json::from_str(c).expect("chunk JSON")).collect();
    assert_eq!(parsed[0]["object"], "chat.completion.chunk");
    assert_eq!(parsed[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = parsed.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "You said: hi", "a flow without a model sends its answer as one chunk");
    assert!(parsed.iter().all(|c| c.get("usage").is_none()), "usage only when asked for");

    // Asked for, the usage comes in a last chunk with no choices.
    body["stream_options"] = json!({"include_usage": true});
    let request = Request::post("/v1/chat/completions")
        .header("authorization", &bearer)
        .body(Body::from(body.to_string()))
        .expect("request");
    let text = String::from_utf8(call(&plane, request).await.2).expect("utf-8");
    let chunks: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    let last: Value = serde_json::from_str(chunks[chunks.len() - 2]).expect("chunk JSON");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 0, "{last}");

    // Refusals come in OpenAI's error shape, a missing key's included.
    let refused = |bearer: Option<&str>, body: Value| {
        let mut request = Request::post("/v1/chat/completions").header("content-type", "application/json");
        if let Some(bearer) = bearer {
            request = request.header("authorization", bearer);
        }
        call(&plane, request.body(Body::from(body.to_string())).expect("request"))
    };
    let hi = json!([{"role": "user", "content": "hi"}]);
    for (bearer, body, status, kind) in [
        (None, json!({"model": "prompt-agent", "messages": hi}), StatusCode::UNAUTHORIZED, "authentication_error"),
        (Some(bearer.as_str()), json!({"model": "nobody", "messages": hi}), StatusCode::NOT_FOUND, "not_found_error"),
        (Some(bearer.as_str()), json!({"messages": hi}), StatusCode::BAD_REQUEST, "invalid_request_error"),
    ] {
        let (got, _, bytes) = refused(bearer, body).await;
        let error: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!((got, error["error"]["type"].as_str()), (status, Some(kind)), "{error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
}

#[tokio::test]
async fn keys_are_checked_at_the_door() {
    let plane = data_plane(DataPlaneConfig::default());
    let body = || json!({"input_value": "x"});
    let status = |r: (StatusCode, axum::http::HeaderMap, Vec<u8>)| r.0;

    assert_eq!(status(call(&plane, post("/api/v1/run/echo-agent-flow", None, body())).await), StatusCode::FORBIDDEN);
    let forged = issue(&claims("acme"), "k1", b"wrong").expect("signs");
    assert_eq!(
        status(call(&plane, post("/api/v1/run/echo-agent-flow", Some(&forged), body())).await),
        StatusCode::UNAUTHORIZED
    );
    let mut expired = claims("acme");
    expired.exp = 1_000;
    let expired = key(&expired);
    assert_eq!(
        status(call(&plane, post("/api/v1/run/echo-agent-flow", Some(&expired), body())).await),
        StatusCode::UNAUTHORIZED
    );
    // alg: none, hand-made.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIiwia2lkIjoiazEifQ.eyJzdWIiOiJrZXktYWNtZSIsInRlbmFudCI6ImFjbWUiLCJzY29wZXMiOlsicnVuIl0sImV4cCI6NDAwMDAwMDAwMH0.";
    assert_eq!(
        status(call(&plane, post("/api/v1/run/echo-agent-flow", Some(none), body())).await),
        StatusCode::UNAUTHORIZED
    );

    // Another tenant's agent looks exactly like a missing one.
    let rival = key(&claims("rival"));
    let (code, _, text) = call(&plane, post("/api/v1/run/echo-agent-flow", Some(&rival), body())).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, _, missing) = call(&plane, post("/api/v1/run/nothing-here", Some(&rival), body())).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&text).expect("JSON")["code"],
        serde_json::from_slice::<Value>(&missing).expect("JSON")["code"]
    );
    assert_eq!(
        status(call(&plane, post("/v1/agents/echo-agent/runs", Some(&rival), json!({}))).await),
        StatusCode::NOT_FOUND
    );

    // A key limited to one agent cannot call another of its tenant's.
    let mut narrow = claims("acme");
    narrow.agents = vec!["prompt-agent".into()];
    let narrow = key(&narrow);
    assert_eq!(
        status(call(&plane, post("/v1/agents/echo-agent/runs", Some(&narrow), json!({}))).await),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(call(&plane, post("/v1/agents/prompt-agent/runs", Some(&narrow), json!({}))).await),
        StatusCode::OK
    );

    // Revocation applies to the next request.
    let good = key(&claims("acme"));
    assert_eq!(status(call(&plane, post("/api/v1/run/echo", Some(&good), body())).await), StatusCode::OK);
    plane.keys.revoke("key-acme", None);
    assert_eq!(status(call(&plane, post("/api/v1/run/echo", Some(&good), body())).await), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rate_limits_and_quotas() {
    let plane = data_plane(DataPlaneConfig { key_rpm: 2, tenant_rpm: 1_000, ..DataPlaneConfig::default() });
    let k = key(&claims("acme"));
    for _ in 0..2 {
        assert_eq!(call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await.0, StatusCode::OK);
    }
    let (status, headers, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=30).contains(&wait), "{wait}");

    let plane = data_plane(DataPlaneConfig::default());
    plane.quotas.set("acme", Quota { runs: Some(1), ..Quota::default() });
    assert_eq!(call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await.0, StatusCode::OK);
    let (status, headers, body) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Retry when the month turns: within 31 days, and never at once.
    let wait: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=31 * 86_400).contains(&wait), "{wait}");
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["code"], "quota_exhausted");
    assert!(body["detail"].as_str().expect("detail").contains("monthly quota of 1 runs"));
}

/// Two agents of one tenant with the same flow id (two subscriptions to
/// one seller's flow): each key reaches its own, a key of both must say
/// which, and either one's going leaves the other's name working.
#[tokio::test]
async fn a_flow_id_two_agents_share_reaches_the_one_the_key_names() {
    let plane = build_plane(DataPlaneConfig::default());
    for (id, file) in [("first", "echo.json"), ("second", "prompt-echo.json")] {
        provision(&plane, id, "acme", "shared-flow", &std::fs::read(shared(file)).expect("flow"));
    }
    let plane = Arc::new(plane);
    let of =
        |agents: &[&str]| key(&Claims { agents: agents.iter().map(|a| (*a).to_owned()).collect(), ..claims("acme") });
    let answer = |body: &[u8]| -> String {
        let body: Value = serde_json::from_slice(body).expect("JSON");
        body["outputs"][0]["outputs"][0]["results"]["message"]["text"].as_str().unwrap_or_default().to_owned()
    };
    let ask = |key: String| {
        let plane = plane.clone();
        async move { call(&plane, post("/api/v1/run/shared-flow", Some(&key), json!({"input_value": "hi"}))).await }
    };
    let (status, _, body) = ask(of(&["first"])).await;
    assert_eq!((status, answer(&body).as_str()), (StatusCode::OK, "hi"));
    let (status, _, body) = ask(of(&["second"])).await;
    assert_eq!((status, answer(&body).as_str()), (StatusCode::OK, "You said: hi"));
    let (status, _, body) = ask(of(&[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("names 2 agents of this tenant (first, second)"));
    // Its id names an agent whatever other agents' names are.
    let (status, _, body) =
        call(&plane, post("/api/v1/run/second", Some(&of(&[])), json!({"input_value": "hi"}))).await;
    assert_eq!((status, answer(&body).as_str()), (StatusCode::OK, "You said: hi"));

    plane.agents.deprovision("second");
    let (status, _, body) = ask(of(&[])).await;
    assert_eq!((status, answer(&body).as_str()), (StatusCode::OK, "hi"), "the name stays with the one left");
}

#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let raw = |body: Vec<u8>, ct: &str| {
        Request::post("/api/v1/run/echo")
            .header("x-api-key", &k)
            .header("content-type", ct)
            .body(Body::from(body))
            .expect("request")
    };
    let (status, _, body) = call(&plane, raw(b"{\"input_value\": ".to_vec(), "application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("line 1"));
    let (status, _, _) = call(&plane, raw(vec![b'"', 0xff, 0xfe, b'"'], "application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(&plane, raw(b"input_value=x".to_vec(), "application/x-www-form-urlencoded")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = vec![b' '; 50 << 20];
    let (status, _, _) = call(&plane, raw(huge, "application/json")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({"input_type": "video"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = call(&plane, post("/api/v1/run/echo", Some(&k), json!({"tweaks": {"Ghost": {}}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    // The host keeps serving.
    assert_eq!(call(&plane, post("/api/v1/run/echo", Some(&k), json!({"input_value": "ok"}))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn health_and_metrics() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    call(&plane, post("/api/v1/run/echo", Some(&k), json!({}))).await;
    let (status, _, body) = call(&plane, Request::get("/health").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("JSON")["status"], "ok");
    let (status, _, body) = call(&plane, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.contains("sandflow_requests_total{route=\"/api/v1/run/{flow}\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("sandflow_runs_total{outcome=\"completed\"} 1"), "{text}");
    assert!(text.contains("sandflow_agents 3"), "{text}");
}

#[tokio::test]
async fn a_failed_run_still_counts_its_fuel() {
    let plane = data_plane(DataPlaneConfig::default());
    plane.quotas.set("acme", Quota { fuel: Some(1), ..Quota::default() });
    let k = key(&claims("acme"));
    let broken = json!({"input_value": "x", "tweaks": {"Prompt-t2oaK": {"template": "broken }"}}});
    let (status, _, _) = call(&plane, post("/api/v1/run/prompt-echo", Some(&k), broken)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "the node fails");
    let (status, _, body) = call(&plane, post("/api/v1/run/prompt-echo", Some(&k), json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("fuel"));
}

/// With a metrics token set, `/metrics` answers only requests bearing it.
#[tokio::test]
async fn metrics_can_require_a_token() {
    let token = Some(sandflow_runtime_host::Secret::new("scrape-me"));
    let plane = data_plane(DataPlaneConfig { metrics_token: token, ..DataPlaneConfig::default() });
    let get = |authorization: Option<&str>| {
        let request = Request::get("/metrics");
        let request = match authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        request.body(Body::empty()).expect("request")
    };
    for refused in [None, Some("Bearer scrape"), Some("Bearer scrape-me-too"), Some("Basic scrape-me")] {
        let (status, _, body) = call(&plane, get(refused)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused:?}");
        assert!(String::from_utf8_lossy(&body).contains("--metrics-token"));
    }
    let (status, _, body) = call(&plane, get(Some("bearer scrape-me"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("sandflow_"), "Prometheus text");
    let (status, _, _) = call(&plane, Request::get("/health").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK, "health stays open");
}

/// Records the control plane has not taken for long fill the outbox up to
/// its limit; then runs are refused (503) rather than run unrecorded or
/// left to fill the host's disk.
#[tokio::test]
async fn a_host_whose_usage_backlog_is_full_takes_no_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Arc::new(sandflow_runtime_host::usage::Outbox::open_with_backlog(dir.path(), 1).expect("outbox"));
    let plane = Arc::new(build_plane(DataPlaneConfig::default()).with_usage(outbox.clone()));
    let k = key(&claims("acme"));
    let run = || post("/api/v1/run/prompt-echo", Some(&k), json!({"input_value": "hey"}));
    let (status, _, _) = call(&plane, run()).await;
    assert_eq!(status, StatusCode::OK, "nothing waited yet");
    let (status, _, body) = call(&plane, run()).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("usage records wait for the control plane"), "{body}");
    assert!(outbox.is_full());
}

#[tokio::test]
async fn every_run_leaves_a_usage_record_before_its_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Arc::new(sandflow_runtime_host::usage::Outbox::open(dir.path()).expect("outbox"));
    let plane = Arc::new(build_plane(DataPlaneConfig::default()).with_usage(outbox));
    let k = key(&claims("acme"));
    let (status, _, _) = call(&plane, post("/api/v1/run/prompt-echo", Some(&k), json!({"input_value": "hey"}))).await;
    assert_eq!(status, StatusCode::OK);
    let broken = json!({"input_value": "x", "tweaks": {"Prompt-t2oaK": {"template": "broken }"}}});
    let (status, _, _) = call(&plane, post("/api/v1/run/prompt-echo", Some(&k), broken.clone())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // A failed v2 run names the run its record is of.
    let v2 = json!({"flow_id": "prompt-agent", "input_value": "x", "tweaks": broken["tweaks"]});
    let (status, _, bytes) = call(&plane, post("/api/v2/workflows", Some(&k), v2)).await;
    assert_eq!(status, StatusCode::OK);
    let failed: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(failed["status"], "failed", "{failed}");

    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let segment = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("usage-"));
        if segment && path.extension().is_some_and(|x| x == "jsonl") {
            lines.extend(std::fs::read_to_string(path).expect("read").lines().map(str::to_owned));
        }
    }
    let records: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["tenant"], "acme");
    assert_eq!(records[0]["agent"], "prompt-agent");
    assert_eq!(records[0]["subscription"], "sub-1");
    assert_eq!(records[0]["outcome"], "completed");
    assert_eq!(records[0]["bytes_in"], 3);
    assert_eq!(records[0]["bytes_out"], "You said: hey".len());
    assert!(records[0]["fuel"].as_u64().expect("fuel") > 0);
    assert!(records[0]["flow_version"].as_str().expect("digest").starts_with("sha256:"));
    assert_eq!(records[1]["outcome"], "node_error");
    assert!(records[1]["fuel"].as_u64().expect("fuel") > 0, "a failed run's fuel is recorded too");
    assert_ne!(records[0]["idempotency_key"], records[1]["idempotency_key"]);
    assert_eq!((&records[2]["outcome"], &records[2]["idempotency_key"]), (&json!("node_error"), &failed["job_id"]));
}

#[tokio::test]
async fn output_type_picks_outputs_the_way_langflow_does() {
    let plane = data_plane(DataPlaneConfig::default());
    let k = key(&claims("acme"));
    let count = |v: &Value| v["outputs"][0]["outputs"].as_array().map_or(0, Vec::len);
    for (output_type, expected) in [("chat", 1), ("any", 1), ("debug", 1), ("text", 0)] {
        let body = json!({"input_value": "x", "output_type": output_type});
        let (status, _, bytes) = call(&plane, post("/api/v1/run/echo", Some(&k), body)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(count(&serde_json::from_slice(&bytes).expect("JSON")), expected, "{output_type}");
    }
    let body = json!({"input_value": "x", "output_component": "ChatOutput-nope"});
    let (_, _, bytes) = call(&plane, post("/api/v1/run/echo", Some(&k), body)).await;
    assert_eq!(count(&serde_json::from_slice(&bytes).expect("JSON")), 0);
}

/// Langflow's webhook test export, with its two Python components (which
/// only a custom node could run) left out: its Webhook feeds its Chat
/// Output (taking Data, as today's does), which stores what it shows in
/// the chat history.
fn webhook_flow() -> Value {
    let mut flow: Value =
        serde_json::from_slice(&std::fs::read(shared("legacy/webhooktest.json")).expect("flow")).expect("JSON");
    let graph = if flow.get("data").is_some() { &mut flow["data"] } else { &mut flow };
    let keep = ["Webhook-ww3dq", "ChatOutput-5k554"];
    let nodes = graph["nodes"].as_array_mut().expect("nodes");
    nodes.retain(|n| keep.contains(&n["id"].as_str().unwrap_or_default()));
    // This export's Chat Output predates Data inputs; today's takes them.
    for node in nodes.iter_mut().filter(|n| n["id"] == "ChatOutput-5k554") {
        node["data"]["node"]["template"]["input_value"]["input_types"] = json!(["Data", "DataFrame", "Message"]);
    }
    let edges = graph["edges"].as_array_mut().expect("edges");
    let mut into_output = edges.iter().find(|e| e["target"] == "ChatOutput-5k554").cloned().expect("an edge");
    into_output["source"] = json!("Webhook-ww3dq");
    let mut handle: Value =
        serde_json::from_str(&into_output["sourceHandle"].as_str().expect("handle").replace('œ', "\""))
            .expect("handle");
    handle["id"] = json!("Webhook-ww3dq");
    handle["name"] = json!("output_data");
    handle["output_types"] = json!(["Data"]);
    into_output["data"]["sourceHandle"] = handle;
    *edges = vec![into_output];
    flow
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_runs_its_flow_in_the_background_with_the_posted_body() {
    let memory = sandflow_runtime_host::MemoryStore::open("sqlite::memory:").await.expect("memory opens");
    let plane = memory_plane(&memory);
    provision(&plane, "hook", "acme", "hook-flow", webhook_flow().to_string().as_bytes());
    let plane = Arc::new(plane);
    let acme = key(&claims("acme"));
    let raw = |body: &str, api_key: Option<&str>| {
        let mut builder = Request::post("/api/v1/webhook/hook");
        if let Some(k) = api_key {
            builder = builder.header("x-api-key", k);
        }
        builder.body(Body::from(body.to_owned())).expect("request")
    };

    let (status, _, body) = call(&plane, raw(r#"{"order": "order-42", "state": "shipped"}"#, Some(&acme))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body, json!({"message": "Task started in the background", "status": "in progress"}));
    // The run goes on after the answer: its Chat Output stores the posted fields.
    let scope = sandflow_runtime_host::MemoryScope { tenant: "acme".into(), agent: "hook".into() };
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = memory.history(&scope, "hook-flow", 10).await.expect("history");
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stored.len(), 1, "the background run stored its answer");
    assert!(stored[0].text.contains("order-42") && stored[0].text.contains("shipped"), "{}", stored[0].text);

    // Refusals come before the 202: no key, another tenant, a widget key,
    // an empty body, bytes that are not text.
    let (status, ..) = call(&plane, raw("{}", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no key, as Langflow answers");
    let (status, ..) = call(&plane, raw("{}", Some(&key(&claims("rival"))))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A widget key is public (it sits in web pages): it may not post payloads.
    let widget = key(&Claims { scopes: vec!["widget".into()], ..claims("acme") });
    let (status, _, body) = call(&plane, raw("{}", Some(&widget))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("`run` scope"), "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = call(&plane, raw("  ", Some(&acme))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("empty"));
    let request = Request::post("/api/v1/webhook/hook").header("x-api-key", &acme).body(Body::from(vec![0xff, 0xfe]));
    let (status, _, body) = call(&plane, request.expect("request")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("UTF-8"));
}
