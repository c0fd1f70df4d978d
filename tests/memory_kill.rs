//! Chat history survives `kill -9`: a host answers runs that store their
//! messages, is killed at once (before its append log is moved into the
//! database, most likely), and every message it answered for is in the
//! store when it is opened again.

mod support;

use sandflow_runtime_host::{MemoryScope, MemoryStore};

#[tokio::test]
async fn history_answered_for_survives_a_kill() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut host = support::start_host(data.path(), &[("echo", "echo.json")], &[]);
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
    let inputs: Vec<String> = (0..20).map(|n| format!("turn {n}")).collect();
    for input in &inputs {
        let response = client
            .post(format!("{}/api/v1/run/echo", host.base))
            .header("x-api-key", &host.key)
            .json(&serde_json::json!({"input_value": input, "session_id": "s1"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    host.child.kill().expect("kill -9");
    host.child.wait().expect("reaped");

    // Opening the store moves what the log still held into the database.
    let url = MemoryStore::sqlite_url_in(data.path());
    let store = MemoryStore::open(&url).await.expect("the store opens after the kill");
    let scope = MemoryScope { tenant: "acme".into(), agent: "echo".into() };
    let history = store.history(&scope, "s1", 100).await.expect("history");
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    // Chat Input stores the question, Chat Output the answer (the same text).
    let expected: Vec<&str> = inputs.iter().flat_map(|i| [i.as_str(), i.as_str()]).collect();
    assert_eq!(texts, expected, "every answered turn, once, in order");
    store.close().await;
    let log = ["memory.db-log", "memory.db-log2"].map(|f| data.path().join(f).metadata().expect("log file").len());
    assert_eq!(log, [0, 0], "closing leaves the log empty");
}
