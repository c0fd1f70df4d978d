//! Following a control plane's change feed, against a feed served here.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::CapabilityConfig;
use sandflow_runtime_host::api::keys::KeyError;
use sandflow_runtime_host::provisioning::Provisioner;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

mod support;

const SECRET: &[u8] = b"provisioning-test-secret";

/// A control plane's feed: `changes` after `?after=`, the component
/// `artifact` under its digest (each fetch announced on `fetched`, then
/// held until `release` is notified), and no usage yet.
#[derive(Clone)]
struct Feed {
    changes: Arc<Vec<Value>>,
    artifact: Arc<Vec<u8>>,
    fetched: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

async fn changes(State(feed): State<Feed>, Query(query): Query<std::collections::HashMap<String, i64>>) -> Json<Value> {
    let after = query.get("after").copied().unwrap_or(0);
    let page: Vec<&Value> = feed.changes.iter().filter(|c| c["seq"].as_i64().unwrap_or(0) > after).collect();
    let last = page.last().and_then(|c| c["seq"].as_i64()).unwrap_or(after);
    Json(json!({ "changes": page, "last": last }))
}

async fn component(State(feed): State<Feed>, Path(_digest): Path<String>) -> Vec<u8> {
    let _ = feed.fetched.send(());
    feed.release.notified().await;
    feed.artifact.to_vec()
}

/// A host that starts replays the feed in order, and an agent comes
/// before a revocation of one of its keys: it must not answer that key
/// meanwhile. Nor may a tenant's first quota stand in for its last.
#[tokio::test(flavor = "multi_thread")]
async fn revocations_and_quotas_hold_before_the_first_agent_is_provisioned() {
    let plane = Arc::new(support::data_plane(CapabilityConfig::default(), SECRET));
    let flow = support::shared_flow("echo.json");
    let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
    let digest = plane.runtime.load_flow(&artifact.component).expect("loads").digest().to_owned();
    let agent = json!({"id": "echo", "tenant": "acme", "subscription": null, "flow_id": "echo-flow",
                       "endpoint_name": null, "digest": digest, "persona": null});
    let (fetched, mut fetches) = mpsc::unbounded_channel();
    let feed = Feed {
        changes: Arc::new(vec![
            json!({"seq": 1, "kind": "quota.set", "tenant": "acme", "quota": {"runs": 10}}),
            json!({"seq": 2, "kind": "agent.provisioned", "agent": agent}),
            json!({"seq": 3, "kind": "key.revoked", "key_id": "key-acme"}),
            json!({"seq": 4, "kind": "quota.set", "tenant": "acme", "quota": {"runs": 100}}),
        ]),
        artifact: Arc::new(artifact.component),
        fetched,
        release: Arc::new(Notify::new()),
    };
    let control_plane = Router::new()
        .route("/api/runtime/changes/", get(changes))
        .route("/api/runtime/artifacts/{digest}", get(component))
        .route("/api/runtime/usage-totals/", get(|| async { Json(json!({"tenants": {}})) }))
        .with_state(feed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, control_plane).await });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let following = tokio::spawn(Provisioner::new(plane.clone(), base, None).follow(async {
        let _ = stopped.await;
    }));

    // The replay has reached the agent and fetches its flow.
    tokio::time::timeout(Duration::from_secs(10), fetches.recv()).await.expect("the artifact is fetched");
    let key = support::run_key("acme", SECRET);
    assert_eq!(plane.keys.verify(&key), Err(KeyError::Revoked), "revoked before the agent can answer");
    assert_eq!(plane.quotas.get("acme").runs, Some(100), "the tenant's last quota");
    feed.release.notify_one();
    let started = Instant::now();
    while plane.agents.get("echo").is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the agent was never provisioned");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Passing the earlier quota again in the replay did not wind it back.
    assert_eq!(plane.quotas.get("acme").runs, Some(100));
    assert_eq!(plane.keys.verify(&key), Err(KeyError::Revoked));
    let _ = stop.send(());
    following.await.expect("follows until stopped");
}
