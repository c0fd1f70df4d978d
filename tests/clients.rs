//! Real client libraries, installed from PyPI, against `sandflow serve`:
//! Langflow's own SDK (`langflow-sdk`: `run`, `stream`, its errors) and
//! OpenAI's Python SDK (`openai`: a completion, a stream with usage, its
//! errors; the Responses API, created and streamed), unchanged, as the data
//! plane promises. The clients live in a virtual environment under Cargo's
//! test scratch directory, made once from `tests/clients/requirements.txt`
//! (every version pinned); the checks are `tests/clients/check.py`.

mod support;

use sandflow_model_server::{ModelServer, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The client libraries, every dependency pinned.
const REQUIREMENTS: &str = include_str!("clients/requirements.txt");

/// A virtual environment with [`REQUIREMENTS`], made (or remade, when the
/// pins change or it no longer imports them) under the test scratch
/// directory; its Python.
fn python_with_clients() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-clients");
    let python = venv.join("bin/python");
    let marker = venv.join("installed.txt");
    let imports =
        || Command::new(&python).args(["-c", "import openai, langflow_sdk"]).output().is_ok_and(|o| o.status.success());
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(REQUIREMENTS) && imports() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/requirements.txt");
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install",
    );
    assert!(imports(), "the clients import after installing them");
    std::fs::write(&marker, REQUIREMENTS).expect("marker");
    python
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langflow_and_openai_python_clients_work_unchanged() {
    let python = tokio::task::spawn_blocking(python_with_clients).await.expect("venv");
    let model = ModelServer::start(Options::default()).await.expect("model server");
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", model.url());
    let data = tempfile::tempdir().expect("tempdir");
    let host = support::start_host(
        data.path(),
        &[
            ("prompt", "prompt-echo.json"),
            ("chat", "starter/basic-prompting.json"),
            ("memory", "starter/memory-chatbot.json"),
        ],
        &["--llm-provider", &provider],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/check.py");
    let (base, key) = (host.base.clone(), host.key.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).env("SANDFLOW_BASE", base).env("SANDFLOW_KEY", key).output()
    })
    .await
    .expect("joined")
    .expect("python starts");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the clients' checks failed:\n{said}");
    assert!(said.contains("langflow-sdk and openai: ok"), "{said}");
    assert!(model.requests().iter().any(|r| r.path == "/v1/chat/completions"), "the model was called");
    // `previous_response_id` went on with the conversation: the agent's
    // model saw the earlier turn with the later one.
    let recalled = model.requests().iter().any(|r| {
        let sent = r.body["messages"].to_string();
        sent.contains("what is my name?") && sent.contains("my name is Ada")
    });
    assert!(recalled, "the second turn carried the first: {:?}", model.requests().last().map(|r| &r.body));
}
