//! Usage survives `kill -9`: a host answers runs while its usage sink is
//! down, is killed, and on restart delivers every record it answered for;
//! a run the host is killed in the middle of is recorded as interrupted,
//! with the model tokens it had used.

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
    records: Arc<Mutex<Vec<serde_json::Value>>>,
    up: Arc<AtomicBool>,
}

impl Sink {
    /// Serves the sink; its URL.
    async fn start(&self) -> String {
        let app = axum::Router::new().route("/usage", axum::routing::post(take)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/usage", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn records(&self) -> Vec<serde_json::Value> {
        self.records.lock().expect("lock").clone()
    }

    /// Waits (up to 10 s) until it holds `n` records.
    async fn wait_for(&self, n: usize) {
        for _ in 0..100 {
            if self.records().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn take(State(sink): State<Sink>, Json(batch): Json<Vec<serde_json::Value>>) -> StatusCode {
    if !sink.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    sink.records.lock().expect("lock").extend(batch);
    StatusCode::OK
}

#[tokio::test]
async fn usage_answered_for_is_delivered_after_a_kill() {
    let sink = Sink::default();
    let sink_url = sink.start().await;

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
    assert!(sink.records().is_empty(), "the sink was down the whole time");

    sink.up.store(true, Ordering::SeqCst);
    let host = start(data.path());
    sink.wait_for(5).await;
    drop(host);
    let delivered: HashSet<String> =
        sink.records().iter().map(|r| r["idempotency_key"].as_str().expect("a key").to_owned()).collect();
    assert_eq!(delivered, answered, "every answered run's record arrives, keyed by its run id");
}

/// An OpenAI-compatible model that answers its first call and never the
/// ones after: a run's second model call hangs until the host is killed.
#[derive(Clone, Default)]
struct FirstCallOnly {
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

async fn complete(State(model): State<FirstCallOnly>) -> Json<serde_json::Value> {
    if model.calls.fetch_add(1, Ordering::SeqCst) > 0 {
        std::future::pending::<()>().await;
    }
    Json(serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "first answer"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }))
}

#[tokio::test]
async fn a_run_the_host_is_killed_in_is_recorded_as_interrupted() {
    let sink = Sink::default();
    let sink_url = sink.start().await;
    let model = FirstCallOnly::default();
    let app =
        axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete)).with_state(model.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let provider = format!("OpenAI=openai,http://{}/v1,gpt-test", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().expect("tempdir");
    let agents = [("team", "starter/multi-agent-flow.json")];
    let args = ["--usage-sink", &sink_url, "--llm-provider", &provider];
    let mut host = support::start_host(data.path(), &agents, &args);
    // Three agents in a row: the first answers, the second waits forever.
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
    let run = client
        .post(format!("{}/v1/agents/team/runs", host.base))
        .header("x-api-key", &host.key)
        .json(&serde_json::json!({"input": "plan a launch"}))
        .send();
    let run = tokio::spawn(run);
    for _ in 0..600 {
        if model.calls.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(model.calls.load(Ordering::SeqCst) >= 2, "the run reached its second model call");
    host.child.kill().expect("kill -9");
    host.child.wait().expect("reaped");
    assert!(run.await.expect("joined").is_err(), "the caller never got an answer");

    sink.up.store(true, Ordering::SeqCst);
    let host = support::start_host(data.path(), &agents, &args);
    sink.wait_for(1).await;
    // Nothing more comes: a second record of the run would be a duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(host);
    let records = sink.records();
    assert_eq!(records.len(), 1, "one record, of the interrupted run: {records:?}");
    let record = &records[0];
    assert_eq!(record["outcome"], "interrupted");
    assert_eq!((record["tenant"].as_str(), record["agent"].as_str()), (Some("acme"), Some("team")));
    assert_eq!(
        (record["tokens_in"].as_u64(), record["tokens_out"].as_u64()),
        (Some(11), Some(7)),
        "the tokens of the model call that answered are counted"
    );
    assert!(record["bytes_in"].as_u64() > Some(0), "what is known at the start is kept: {record}");
}
