//! `sandflow serve --role runtime` as a real process on a real port, called
//! the way a Langflow client calls Langflow.

mod support;

#[tokio::test]
async fn serves_langflow_clients_over_http() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = support::start_host(data.path(), &[("echo", "echo.json"), ("prompt", "prompt-echo.json")], &[]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v1/run/prompt-echo", host.base))
        .header("x-api-key", &host.key)
        .json(&serde_json::json!({"input_value": "over the wire", "session_id": "w1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["outputs"][0]["outputs"][0]["results"]["message"]["text"], "You said: over the wire");
    assert_eq!(body["session_id"], "w1");

    let response = client
        .post(format!("{}/api/v1/run/echo", host.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403, "no key, no run");
    let health = client.get(format!("{}/health", host.base)).send().await.expect("request");
    assert_eq!(health.status(), 200);
}

/// `sandflow serve` with its default role runs the control plane and the
/// data plane on one address; answered runs reach the control plane's ledger.
#[tokio::test]
async fn serves_both_planes_on_one_address() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = support::start(data.path(), "all", &[("echo", "echo.json")], &[]);
    let client = reqwest::Client::new();
    let run = client
        .post(format!("{}/api/v1/run/echo", host.base))
        .header("x-api-key", &host.key)
        .json(&serde_json::json!({"input_value": "both planes"}))
        .send()
        .await
        .expect("request");
    assert_eq!(run.status(), 200);
    let registered = client
        .post(format!("{}/api/auth/register", host.base))
        .json(&serde_json::json!({"email": "op@example.com", "password": "correct horse battery", "name": "Op"}))
        .send()
        .await
        .expect("request");
    let status = registered.status();
    assert_eq!(status, 201, "{}", registered.text().await.unwrap_or_default());
    assert!(data.path().join("control-plane.db").exists(), "the embedded database lives in the data directory");
}
