//! `sandflow serve --role runtime` as a real process on a real port, called
//! the way a Langflow client calls Langflow.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serves_langflow_clients_over_http() {
    let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/flows");
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandflow"))
        .args(["serve", "--role", "runtime", "--listen", "127.0.0.1:0", "--dev-keys"])
        .arg("--agent")
        .arg(format!("echo={}@acme", flows.join("echo.json").display()))
        .arg("--agent")
        .arg(format!("prompt={}@acme", flows.join("prompt-echo.json").display()))
        .env("SANDFLOW_DATA_DIR", data.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandflow starts");
    let stdout = child.stdout.take().expect("piped");
    let _server = Server(child);
    let (mut key, mut base) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout");
        if let Some(k) = line.strip_prefix("key for tenant acme: ") {
            key = k.to_owned();
        }
        if let Some(url) = line.strip_prefix("serving the data plane on ") {
            base = url.to_owned();
            break;
        }
    }
    assert!(!key.is_empty() && !base.is_empty(), "the server printed its key and address");

    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/api/v1/run/prompt-echo"))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"input_value": "over the wire", "session_id": "w1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["outputs"][0]["outputs"][0]["results"]["message"]["text"], "You said: over the wire");
    assert_eq!(body["session_id"], "w1");

    let response =
        client.post(format!("{base}/api/v1/run/echo")).json(&serde_json::json!({})).send().await.expect("request");
    assert_eq!(response.status(), 403, "no key, no run");
    let health = client.get(format!("{base}/health")).send().await.expect("request");
    assert_eq!(health.status(), 200);
}
