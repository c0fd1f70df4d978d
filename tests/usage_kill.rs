//! Usage survives `kill -9`: a host answers runs while its usage sink is
//! down, is killed, and on restart delivers every record it answered for.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Sink {
    keys: Arc<Mutex<Vec<String>>>,
    up: Arc<AtomicBool>,
}

async fn take(State(sink): State<Sink>, Json(batch): Json<Vec<serde_json::Value>>) -> StatusCode {
    if !sink.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut keys = sink.keys.lock().expect("lock");
    keys.extend(batch.iter().map(|r| r["idempotency_key"].as_str().unwrap_or_default().to_owned()));
    StatusCode::OK
}

#[tokio::test]
async fn usage_answered_for_is_delivered_after_a_kill() {
    let sink = Sink::default();
    let app = axum::Router::new().route("/usage", axum::routing::post(take)).with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sink_url = format!("http://{}/usage", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().expect("tempdir");
    let start = |data: &Path| support::start_host(data, &[("echo", "echo.json")], &["--usage-sink", &sink_url]);
    let mut host = start(data.path());
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
    let mut answered = HashSet::new();
    for n in 0..5 {
        let response = client
            .post(format!("{}/v1/agents/echo/runs", host.base))
            .header("x-api-key", &host.key)
            .json(&serde_json::json!({"input": format!("run {n}")}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("JSON");
        answered.insert(body["run_id"].as_str().expect("run id").to_owned());
    }
    host.child.kill().expect("kill -9");
    host.child.wait().expect("reaped");
    assert!(sink.keys.lock().expect("lock").is_empty(), "the sink was down the whole time");

    sink.up.store(true, Ordering::SeqCst);
    let host = start(data.path());
    for _ in 0..100 {
        if sink.keys.lock().expect("lock").len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(host);
    let delivered: HashSet<String> = sink.keys.lock().expect("lock").iter().cloned().collect();
    assert_eq!(delivered, answered, "every answered run's record arrives, keyed by its run id");
}
