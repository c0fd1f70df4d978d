//! Starting `sandflow serve` as a real process for the end-to-end suites.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running `sandflow serve --role runtime`, killed when dropped.
pub struct Host {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The development key it printed for tenant `acme` (empty without agents).
    pub key: String,
    /// Its standard output, kept open: a closed pipe would fail its next print.
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared Langflow exports.
pub fn flows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/flows")
}

/// Starts a runtime host on a free port with `data` as its data directory,
/// tenant `acme`'s agents `id=flow.json` from `agents`, and `extra`
/// arguments; waits until it serves.
pub fn start_host(data: &Path, agents: &[(&str, &str)], extra: &[&str]) -> Host {
    start(data, "runtime", agents, extra)
}

/// Like [`start_host`], with `--role role`; `base` is where the control
/// plane serves when it serves alone.
pub fn start(data: &Path, role: &str, agents: &[(&str, &str)], extra: &[&str]) -> Host {
    start_with_env(data, role, agents, extra, &[])
}

/// Like [`start`], with `env` set for the process (model providers'
/// `<NAME>_API_KEY`, for instance).
pub fn start_with_env(data: &Path, role: &str, agents: &[(&str, &str)], extra: &[&str], env: &[(&str, &str)]) -> Host {
    let ready = if role == "control-plane" { "serving the control plane on " } else { "serving the data plane on " };
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandflow"));
    command.args(["serve", "--role", role, "--listen", "127.0.0.1:0", "--dev-keys"]).args(extra);
    for (id, file) in agents {
        command.arg("--agent").arg(format!("{id}={}@acme", flows().join(file).display()));
    }
    let mut child = command
        .env("SANDFLOW_DATA_DIR", data)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandflow starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let (mut key, mut base) = (String::new(), String::new());
    let mut line = String::new();
    while stdout.read_line(&mut line).expect("stdout") > 0 {
        if let Some(k) = line.trim_end().strip_prefix("key for tenant acme: ") {
            key = k.to_owned();
        }
        if let Some(url) = line.trim_end().strip_prefix(ready) {
            base = url.to_owned();
            break;
        }
        line.clear();
    }
    assert!(!base.is_empty(), "the server printed its address");
    assert!(agents.is_empty() || !key.is_empty(), "the server printed a key for tenant acme");
    Host { child, base, key, _stdout: stdout }
}
