//! `sandflow demo` seeds the marketplace and prints a `curl` line that
//! calls the buyer's agent; the line works, and a second start with the
//! same data directory prints it again without seeding twice.

#[expect(dead_code, reason = "shared by the end-to-end suites; this one only needs the flows")]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running demo, killed when dropped.
struct Demo {
    child: Child,
    /// The agent's URL and key from the printed `curl` line.
    url: String,
    key: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Demo {
    let flow = support::flows().join("prompt-echo.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandflow"))
        .args(["demo", "--listen", "127.0.0.1:0", "--flow"])
        .arg(&flow)
        .env("SANDFLOW_DATA_DIR", data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandflow demo starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while stdout.read_line(&mut line).expect("stdout") > 0 {
        if let Some(rest) = line.trim().strip_prefix("curl -s ") {
            let url = rest.split_whitespace().next().expect("a URL").to_owned();
            let key = rest.split("x-api-key: ").nth(1).and_then(|k| k.split('\'').next()).expect("a key").to_owned();
            // Keep reading in the background so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
            return Demo { child, url, key };
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("sandflow demo ended without printing the curl line");
}

async fn call(demo: &Demo) -> serde_json::Value {
    let response = sandflow_runtime_host::http_client_builder()
        .build()
        .expect("an HTTP client")
        .post(&demo.url)
        .header("x-api-key", &demo.key)
        .json(&serde_json::json!({"input_value": "hello"}))
        .send()
        .await
        .expect("the agent answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_printed_curl_line_calls_the_buyers_agent() {
    let data = tempfile::tempdir().expect("tempdir");
    let first = start(data.path());
    let answer = call(&first).await;
    assert_eq!(answer["outputs"][0]["outputs"][0]["results"]["message"]["text"], "You said: hello");
    let (url, key) = (first.url.clone(), first.key.clone());
    drop(first);

    let again = start(data.path());
    assert_eq!(again.url.rsplit('/').next(), url.rsplit('/').next(), "the same agent, not a second one");
    assert_eq!(again.key, key);
    let answer = call(&again).await;
    assert_eq!(answer["outputs"][0]["outputs"][0]["results"]["message"]["text"], "You said: hello");
}
