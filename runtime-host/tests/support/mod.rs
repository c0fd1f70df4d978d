//! Shared by the data-plane tests: a runtime on the tests' compile cache,
//! shared Langflow exports provisioned as agents, run keys and requests
//! through the router.
#![allow(dead_code, reason = "each test binary uses its own part of these helpers")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::api::keys::{Claims, issue};
use sandflow_runtime_host::api::{Agent, DataPlane, DataPlaneConfig, router};
use sandflow_runtime_host::{CapabilityConfig, Limits, Runtime, RuntimeConfig, Secrets};
use serde_json::{Value as Json, json};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

/// The key id the data planes of these tests accept.
pub const KID: &str = "k1";

/// A runtime with `capabilities`, compiling through the disk cache every
/// test binary shares, so each component is compiled once per build.
pub fn runtime(capabilities: CapabilityConfig) -> Runtime {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandflow-cache");
    Runtime::new(&RuntimeConfig { max_instances: 32, cache_dir: Some(cache), capabilities, ..RuntimeConfig::default() })
        .expect("runtime starts")
}

/// A data plane over a runtime with `capabilities` that accepts keys
/// signed with `secret` under [`KID`].
pub fn data_plane(capabilities: CapabilityConfig, secret: &[u8]) -> DataPlane {
    let plane = DataPlane::new(runtime(capabilities), DataPlaneConfig::default());
    plane.keys.add_secret(KID, secret);
    plane
}

/// The shared Langflow export at `path` under `../shared/flows`.
pub fn shared_flow(path: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows").join(path);
    serde_json::from_slice(&std::fs::read(path).expect("shared flow")).expect("JSON")
}

/// Compiles `flow` and provisions it as agent `id` of `tenant`, flow id
/// `{id}-flow`, with `limits` and the agent's own `secrets`.
pub fn provision(plane: &DataPlane, tenant: &str, id: &str, flow: &Json, limits: Limits, secrets: Secrets) {
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    plane.agents.provision(Agent {
        id: id.into(),
        tenant: tenant.into(),
        flow_id: format!("{id}-flow"),
        endpoint_name: None,
        flow: plane.runtime.load_flow(&artifact.component).expect("loads"),
        limits,
        secrets,
        persona: None,
        widget_origins: Vec::new(),
    });
}

/// A key of `tenant` with the `run` scope, signed with `secret`.
pub fn run_key(tenant: &str, secret: &[u8]) -> String {
    let claims = Claims {
        sub: format!("key-{tenant}"),
        tenant: tenant.into(),
        agents: vec![],
        scopes: vec!["run".into()],
        subscription: None,
        rpm: None,
        exp: 4_000_000_000,
    };
    issue(&claims, KID, secret).expect("signs")
}

/// Sends `request` through the data plane's router: the status, and the
/// JSON body (a body that is not JSON comes back as a JSON string).
pub async fn send(plane: &Arc<DataPlane>, request: Request<Body>) -> (StatusCode, Json) {
    let response = router(plane.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
}

/// Uploads `content` as `filename` for `agent` with `key`, as Langflow's
/// `POST /api/v1/files/upload/{flow}` takes it; returns its `file_path`.
pub async fn upload(plane: &Arc<DataPlane>, key: &str, agent: &str, filename: &str, content: &[u8]) -> String {
    let boundary = "sandflow-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: \
         application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = Request::post(format!("/api/v1/files/upload/{agent}"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("x-api-key", key)
        .body(Body::from(body))
        .expect("request");
    let (status, body) = send(plane, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["file_path"].as_str().expect("file_path").to_owned()
}

/// The names of the tools offered in OpenAI chat requests, sorted, once each.
pub fn openai_tool_names(requests: &[Json]) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter()
        .flat_map(|r| r["tools"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}
