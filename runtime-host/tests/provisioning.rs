//! Following a control plane's change feed, against a feed served here.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sandflow_flow_compiler::{CompileOptions, compile};
use sandflow_runtime_host::CapabilityConfig;
use sandflow_runtime_host::api::DataPlane;
use sandflow_runtime_host::api::keys::KeyError;
use sandflow_runtime_host::provisioning::Provisioner;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

mod support;

const SECRET: &[u8] = b"provisioning-test-secret";

/// A control plane's feed: `changes` after `?after=`, the component
/// `artifact` under its `digest` (each fetch announced on `fetched`, then
/// held until `release` is notified; any other digest fails with 500), and
/// the ledger's usage `totals` (none at first).
#[derive(Clone)]
struct Feed {
    changes: Arc<Mutex<Vec<Value>>>,
    digest: String,
    artifact: Arc<Vec<u8>>,
    fetched: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
    totals: Arc<Mutex<Value>>,
    /// How often the totals were asked for.
    totals_asked: Arc<std::sync::atomic::AtomicUsize>,
    /// What `GET /api/runtime/agents/{id}/secrets` answers (500 while `None`).
    secrets: Arc<Mutex<Option<Value>>>,
    /// How often the secrets were asked for.
    secrets_asked: Arc<std::sync::atomic::AtomicUsize>,
}

impl Feed {
    /// A feed of `changes` serving `flow` (Sandflow's `echo.json`), and
    /// the runtime's digest of it.
    fn new(plane: &DataPlane, changes: Vec<Value>) -> (Self, mpsc::UnboundedReceiver<()>) {
        let flow = support::shared_flow("echo.json");
        let (artifact, _) = compile(flow.to_string().as_bytes(), &CompileOptions::default()).expect("compiles");
        let digest = plane.runtime.load_flow(&artifact.component).expect("loads").digest().to_owned();
        let (fetched, fetches) = mpsc::unbounded_channel();
        let feed = Self {
            changes: Arc::new(Mutex::new(changes)),
            digest,
            artifact: Arc::new(artifact.component),
            fetched,
            release: Arc::new(Notify::new()),
            totals: Arc::new(Mutex::new(json!({"tenants": {}}))),
            totals_asked: Arc::default(),
            secrets: Arc::default(),
            secrets_asked: Arc::default(),
        };
        (feed, fetches)
    }

    /// Agent `id` of tenant `acme` running the component of `digest`.
    fn agent(id: &str, digest: &str) -> Value {
        json!({"id": id, "tenant": "acme", "subscription": null, "flow_id": format!("{id}-flow"),
               "endpoint_name": null, "digest": digest, "persona": null})
    }

    /// Serves the feed on loopback; returns its base URL.
    async fn serve(&self) -> String {
        let control_plane = Router::new()
            .route("/api/runtime/changes/", get(changes))
            .route("/api/runtime/artifacts/{digest}", get(component))
            .route(
                "/api/runtime/agents/{id}/secrets",
                get(|State(feed): State<Feed>| async move {
                    feed.secrets_asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    feed.secrets.lock().expect("secrets").clone().map(Json).ok_or(StatusCode::INTERNAL_SERVER_ERROR)
                }),
            )
            .route(
                "/api/runtime/usage-totals/",
                get(|State(feed): State<Feed>| async move {
                    feed.totals_asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Json(feed.totals.lock().expect("totals").clone())
                }),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, control_plane).await });
        base
    }
}

async fn changes(State(feed): State<Feed>, Query(query): Query<std::collections::HashMap<String, i64>>) -> Json<Value> {
    let after = query.get("after").copied().unwrap_or(0);
    let all = feed.changes.lock().expect("changes").clone();
    let page: Vec<&Value> = all.iter().filter(|c| c["seq"].as_i64().unwrap_or(0) > after).collect();
    let last = page.last().and_then(|c| c["seq"].as_i64()).unwrap_or(after);
    Json(json!({ "changes": page, "last": last }))
}

async fn component(State(feed): State<Feed>, Path(digest): Path<String>) -> Result<Vec<u8>, StatusCode> {
    if digest != feed.digest {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let _ = feed.fetched.send(());
    feed.release.notified().await;
    Ok(feed.artifact.to_vec())
}

/// A provisioner following its feed until stopped.
struct Following {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Following {
    fn start(provisioner: Provisioner) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(provisioner.follow(async {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("follows until stopped");
    }
}

/// Waits up to 10 s for `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what} never happened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A host that starts replays the feed in order, and an agent comes
/// before a revocation of one of its keys: it must not answer that key
/// meanwhile. Nor may a tenant's first quota stand in for its last.
#[tokio::test(flavor = "multi_thread")]
async fn revocations_and_quotas_hold_before_the_first_agent_is_provisioned() {
    let plane = Arc::new(support::data_plane(CapabilityConfig::default(), SECRET));
    let (feed, mut fetches) = Feed::new(&plane, Vec::new());
    *feed.changes.lock().expect("changes") = vec![
        json!({"seq": 1, "kind": "quota.set", "tenant": "acme", "quota": {"runs": 10}}),
        json!({"seq": 2, "kind": "agent.provisioned", "agent": Feed::agent("echo", &feed.digest)}),
        json!({"seq": 3, "kind": "key.revoked", "key_id": "key-acme"}),
        json!({"seq": 4, "kind": "quota.set", "tenant": "acme", "quota": {"runs": 100}}),
    ];
    let base = feed.serve().await;
    let following = Following::start(Provisioner::new(plane.clone(), base, None));

    // The replay has reached the agent and fetches its flow.
    tokio::time::timeout(Duration::from_secs(10), fetches.recv()).await.expect("the artifact is fetched");
    let key = support::run_key("acme", SECRET);
    assert_eq!(plane.keys.verify(&key), Err(KeyError::Revoked), "revoked before the agent can answer");
    assert_eq!(plane.quotas.get("acme").runs, Some(100), "the tenant's last quota");
    feed.release.notify_one();
    until("provisioning the agent", || plane.agents.get("echo").is_some()).await;
    // Passing the earlier quota again in the replay did not wind it back.
    assert_eq!(plane.quotas.get("acme").runs, Some(100));
    assert_eq!(plane.keys.verify(&key), Err(KeyError::Revoked));
    following.stop().await;
}

/// An artifact the control plane fails to send holds up the agent that
/// runs it, and that agent only: the revocations, quotas and
/// deprovisions after it in the feed take effect meanwhile, while the
/// host keeps asking for the artifact.
#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_that_fails_to_arrive_holds_up_no_revocation() {
    let plane = Arc::new(support::data_plane(CapabilityConfig::default(), SECRET));
    let (feed, mut fetches) = Feed::new(&plane, Vec::new());
    feed.changes
        .lock()
        .expect("changes")
        .push(json!({"seq": 1, "kind": "agent.provisioned", "agent": Feed::agent("echo", &feed.digest)}));
    let base = feed.serve().await;
    let following = Following::start(Provisioner::new(plane.clone(), base, None));
    tokio::time::timeout(Duration::from_secs(10), fetches.recv()).await.expect("the artifact is fetched");
    feed.release.notify_one();
    until("provisioning the agent", || plane.agents.get("echo").is_some()).await;
    let key = support::run_key("acme", SECRET);
    assert!(plane.keys.verify(&key).is_ok());

    let broken = "0".repeat(64);
    feed.changes.lock().expect("changes").extend([
        json!({"seq": 2, "kind": "agent.provisioned", "agent": Feed::agent("other", &broken)}),
        json!({"seq": 3, "kind": "key.revoked", "key_id": "key-acme"}),
        json!({"seq": 4, "kind": "quota.set", "tenant": "acme", "quota": {"runs": 5}}),
        json!({"seq": 5, "kind": "agent.deprovisioned", "agent_id": "echo"}),
    ]);
    until("revoking the key", || plane.keys.verify(&key) == Err(KeyError::Revoked)).await;
    until("deprovisioning the agent", || plane.agents.get("echo").is_none()).await;
    assert_eq!(plane.quotas.get("acme").runs, Some(5));
    assert!(plane.agents.get("other").is_none(), "its artifact never came");
    following.stop().await;
}

/// An agent whose change names secrets gets them from the control plane
/// before it answers: while they cannot be fetched it is not provisioned
/// (a run would fail on a missing key), and the host asks again.
#[tokio::test(flavor = "multi_thread")]
async fn an_agents_secrets_arrive_with_it() {
    let plane = Arc::new(support::data_plane(CapabilityConfig::default(), SECRET));
    let (feed, mut fetches) = Feed::new(&plane, Vec::new());
    let mut agent = Feed::agent("echo", &feed.digest);
    agent["secrets"] = json!(["TAVILY_API_KEY"]);
    feed.changes.lock().expect("changes").push(json!({"seq": 1, "kind": "agent.provisioned", "agent": agent}));
    let base = feed.serve().await;
    let following = Following::start(Provisioner::new(plane.clone(), base, None));
    tokio::time::timeout(Duration::from_secs(10), fetches.recv()).await.expect("the artifact is fetched");
    feed.release.notify_one();
    let asked = || feed.secrets_asked.load(std::sync::atomic::Ordering::SeqCst);
    until("asking for the secrets twice", || asked() >= 2).await;
    assert!(plane.agents.get("echo").is_none(), "not provisioned without its secrets");
    // An older control plane's answer (values as plain strings) is refused too.
    *feed.secrets.lock().expect("secrets") = Some(json!({"secrets": {"TAVILY_API_KEY": "tvly-old"}}));
    let seen = asked();
    until("asking for the secrets again", || asked() >= seen + 2).await;
    assert!(plane.agents.get("echo").is_none(), "not provisioned from a malformed answer");
    *feed.secrets.lock().expect("secrets") =
        Some(json!({"secrets": {"TAVILY_API_KEY": {"value": "tvly-1", "hosts": ["api.tavily.com", "-not.a.host"]}}}));
    until("provisioning the agent", || plane.agents.get("echo").is_some()).await;
    let provisioned = plane.agents.get("echo").expect("provisioned");
    assert_eq!(provisioned.secrets.get("TAVILY_API_KEY").map(|s| s.expose().to_owned()).as_deref(), Some("tvly-1"));
    assert!(!format!("{:?}", provisioned.secrets).contains("tvly"), "never printed");
    let reach = provisioned.secrets.get("TAVILY_API_KEY").and_then(|s| s.reach().map(<[_]>::to_vec));
    assert_eq!(
        reach,
        Some(vec!["api.tavily.com".parse().expect("pattern")]),
        "only where the buyer lets it go; a host this runtime cannot read is left out"
    );
    following.stop().await;
}

/// With several hosts, each counts only its own runs: a host raises its
/// quota counters to the ledger's totals again while it follows the feed,
/// not only when it starts, or every host would grant the whole month.
#[tokio::test(flavor = "multi_thread")]
async fn quota_counters_follow_the_ledger_while_running() {
    let plane = Arc::new(support::data_plane(CapabilityConfig::default(), SECRET));
    let (feed, _fetches) = Feed::new(&plane, Vec::new());
    let base = feed.serve().await;
    let following =
        Following::start(Provisioner::new(plane.clone(), base, None).seed_quotas_every(Duration::from_millis(50)));
    let month = sandflow_runtime_host::api::clock::month_index();
    let asked = || feed.totals_asked.load(std::sync::atomic::Ordering::SeqCst);
    until("the host seeded its counters as it started", || asked() >= 1).await;
    // Other hosts ran 7 of acme's runs this month, and the ledger has them.
    *feed.totals.lock().expect("totals") = json!({"tenants": {"acme": {"runs": 7, "fuel": 700, "tokens": 0}}});
    until("the counters rose to the ledger's", || plane.quotas.used("acme", month).runs == 7).await;
    assert_eq!(plane.quotas.used("acme", month).fuel, 700);
    following.stop().await;
}
