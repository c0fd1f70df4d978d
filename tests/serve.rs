//! `sandflow serve --role runtime` as a real process on a real port, called
//! the way a Langflow client calls Langflow.

mod support;

#[tokio::test]
async fn serves_langflow_clients_over_http() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = support::start_host(data.path(), &[("echo", "echo.json"), ("prompt", "prompt-echo.json")], &[]);
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
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
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
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

/// Langflow's upload endpoint on a real host: files land in the data
/// directory's `files`, per tenant and agent, under `--files-max-bytes`.
#[tokio::test]
async fn stores_uploads_in_the_data_directory() {
    let data = tempfile::tempdir().expect("tempdir");
    let agents = [("portfolio", "starter/portfolio-website-code-generator.json")];
    let host = support::start_host(data.path(), &agents, &["--files-max-bytes", "64"]);
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
    let upload = |content: &'static str| {
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"resume.txt\"\r\n\r\n{content}\r\n--b--\r\n"
        );
        client
            .post(format!("{}/api/v1/files/upload/portfolio", host.base))
            .header("x-api-key", &host.key)
            .header("content-type", "multipart/form-data; boundary=b")
            .body(body)
            .send()
    };
    let response = upload("Ada Lovelace, analyst").await.expect("request");
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("JSON");
    let path = body["file_path"].as_str().expect("file_path");
    let stored = data.path().join("files/acme/portfolio").join(path);
    assert_eq!(std::fs::read_to_string(&stored).expect("stored"), "Ada Lovelace, analyst");
    let response = upload("x".repeat(65).leak()).await.expect("request");
    assert_eq!(response.status(), 413, "--files-max-bytes");
}

/// A database spec that is not an allowed kind stops the host at start.
#[test]
fn refuses_a_bad_database_spec_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow"))
        .args(["serve", "--role", "runtime", "--listen", "127.0.0.1:0", "--sql-database", "crm=http://db.internal/crm"])
        .env("SANDFLOW_DATA_DIR", data.path())
        .output()
        .expect("sandflow runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a sqlite:, postgres:// or mysql:// URL"), "{stderr}");
}

/// The control plane alone keeps no chat history, so it and a runtime can
/// share a data directory; a second runtime on it is refused, saying why
/// (a SQLite memory store belongs to one process).
#[tokio::test]
async fn a_control_plane_and_a_runtime_share_a_data_directory() {
    let data = tempfile::tempdir().expect("tempdir");
    let _control = support::start(data.path(), "control-plane", &[], &[]);
    let host = support::start_host(data.path(), &[("echo", "echo.json")], &[]);
    let client = sandflow_runtime_host::http_client_builder().build().expect("an HTTP client");
    let response = client
        .post(format!("{}/api/v1/run/echo", host.base))
        .header("x-api-key", &host.key)
        .json(&serde_json::json!({"input_value": "hi", "session_id": "s1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandflow"))
        .args(["serve", "--role", "runtime", "--listen", "127.0.0.1:0"])
        .env("SANDFLOW_DATA_DIR", data.path())
        .output()
        .expect("sandflow runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another sandflow process") && stderr.contains("memory.db-log"), "{stderr}");
}
