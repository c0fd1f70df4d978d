//! `sandflow demo`: the whole marketplace on one machine, seeded.
//!
//! Serves like `sandflow serve` (control plane and runtime on one address,
//! SQLite in the data directory), then walks the journeys through the
//! public API, as the console would: an operator; a seller who is approved,
//! imports a flow and lists it with a plan, which the operator approves; a
//! buyer who orders it (provisioning the agent), configures a persona and
//! gets an API key. It prints the accounts and a `curl` line that calls the
//! agent, and keeps serving. What it seeded is kept in `demo.json` in the
//! data directory, so a second start prints it again instead of seeding twice.

use super::serve::{OnReady, ServeOptions, serve};
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the demo seeded.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Seeded {
    password: String,
    agent: String,
    key: String,
}

const OPERATOR: &str = "operator@demo.sandflow.local";
const SELLER: &str = "seller@demo.sandflow.local";
const BUYER: &str = "buyer@demo.sandflow.local";

/// Serves the seeded marketplace until Ctrl-C.
pub fn demo(flow: PathBuf, options: ServeOptions) -> anyhow::Result<std::process::ExitCode> {
    let source = std::fs::read(&flow).with_context(|| {
        format!("cannot read the demo's flow {}; pass another Langflow export with `--flow`", flow.display())
    })?;
    let export: Value = serde_json::from_slice(&source).with_context(|| format!("{} is not JSON", flow.display()))?;
    let state = super::data_dir().join("demo.json");
    let on_ready: OnReady = Box::new(move |address| Box::pin(seed_or_show(address, export, state)));
    serve(options, Some(on_ready))
}

async fn seed_or_show(address: SocketAddr, export: Value, state: PathBuf) -> anyhow::Result<()> {
    let client = Client::new(address);
    let seeded: Seeded = match std::fs::read(&state) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged; delete it", state.display()))?
        }
        Err(_) => {
            let seeded = client.seed(export).await?;
            write_state(&state, &seeded)?;
            seeded
        }
    };
    // After a restart the runtime provisions the agent again from the feed.
    client.reachable(&seeded.agent, &seeded.key).await?;
    let base = format!("http://{address}");
    println!();
    println!("The demo marketplace is ready. Accounts (password `{}`):", seeded.password);
    println!("  operator  {OPERATOR}");
    println!("  seller    {SELLER}");
    println!("  buyer     {BUYER}");
    println!();
    println!("Call the buyer's agent:");
    println!(
        "  curl -s {base}/api/v1/run/{} -H 'x-api-key: {}' -H 'content-type: application/json' -d '{{\"input_value\": \"hello\"}}'",
        seeded.agent, seeded.key
    );
    Ok(())
}

fn write_state(path: &Path, seeded: &Seeded) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // It holds a password and a key: readable by its owner only.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(&serde_json::to_vec_pretty(seeded)?)?;
    Ok(())
}

/// The management API, as the demo's three users.
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(address: SocketAddr) -> Self {
        Self {
            base: format!("http://{address}"),
            http: sandflow_runtime_host::http_client_builder().build().expect("an HTTP client"),
        }
    }

    async fn seed(&self, export: Value) -> anyhow::Result<Seeded> {
        let password = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let operator = self.sign_up(OPERATOR, &password).await?;
        let me = self.call("GET", "/api/users/me", &operator, None).await?;
        if me["is_staff"] != true {
            bail!(
                "this data directory already has accounts, so the demo's would not be the operator; start the demo with a fresh SANDFLOW_DATA_DIR"
            );
        }

        let seller = self.sign_up(SELLER, &password).await?;
        let org = id(&self.call("POST", "/api/organizations/", &seller, Some(json!({"name": "Demo Seller"}))).await?)?;
        let request = self
            .call("POST", &format!("/api/organizations/{org}/provider-request"), &seller, Some(json!({"note": "demo"})))
            .await?;
        self.call(
            "POST",
            &format!("/api/admin/provider-requests/{}/approve", id(&request)?),
            &operator,
            Some(json!({})),
        )
        .await?;
        let agent = self
            .call("POST", "/api/provider-agents/", &seller, Some(json!({"organization": org, "name": "Demo agent"})))
            .await?;
        let agent = id(&agent)?;
        self.call("POST", &format!("/api/provider-agents/{agent}/import_flow"), &seller, Some(export)).await?;
        let offering = self
            .call(
                "POST",
                "/api/offerings/",
                &seller,
                Some(json!({"organization_id": org, "provider_agent_id": agent, "name": "Demo agent",
                            "description": "A flow from Langflow, compiled to WebAssembly"})),
            )
            .await?;
        let offering = id(&offering)?;
        let plan = self
            .call(
                "POST",
                &format!("/api/offerings/{offering}/plans/"),
                &seller,
                Some(json!({"name": "Starter", "per_run": 1, "runs_per_month": 10000})),
            )
            .await?;
        self.call("POST", &format!("/api/offerings/{offering}/submit"), &seller, Some(json!({}))).await?;
        self.call("POST", &format!("/api/offerings/{offering}/approve"), &operator, Some(json!({}))).await?;

        let buyer = self.sign_up(BUYER, &password).await?;
        let buyer_org =
            id(&self.call("POST", "/api/organizations/", &buyer, Some(json!({"name": "Demo Buyer"}))).await?)?;
        let order = self
            .call("POST", "/api/orders/", &buyer, Some(json!({"plan_id": id(&plan)?, "organization_id": buyer_org})))
            .await?;
        let resource = self.provisioned(&id(&order)?, &buyer).await?;
        let configs = self.call("GET", "/api/customer-agent-configs/", &buyer, None).await?;
        let config = configs
            .as_array()
            .and_then(|c| c.iter().find(|c| c["resource_id"] == resource.as_str()))
            .context("the subscription has no agent configuration")?;
        let config = id(config)?;
        let persona = json!({"persona": {"name": "Demo", "system_prompt": "Be helpful.", "tone": "friendly"}});
        self.call("PATCH", &format!("/api/customer-agent-configs/{config}"), &buyer, Some(persona)).await?;
        let key = self
            .call(
                "POST",
                &format!("/api/customer-agent-configs/{config}/api_keys"),
                &buyer,
                Some(json!({"name": "demo"})),
            )
            .await?;
        let key = key["key"].as_str().context("the new key was not shown")?.to_owned();
        Ok(Seeded { password, agent: resource, key })
    }

    /// Waits for the order to be done; its resource (the buyer's agent).
    async fn provisioned(&self, order: &str, buyer: &str) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let order = self.call("GET", &format!("/api/orders/{order}"), buyer, None).await?;
            match order["state"].as_str() {
                Some("done") => return order["resource_id"].as_str().map(str::to_owned).context("no resource"),
                Some("erred" | "rejected" | "canceled") => {
                    bail!("the demo order ended {}: {}", order["state"], order["error"])
                }
                _ if started.elapsed() > Duration::from_secs(30) => bail!("the demo order was not provisioned in 30 s"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until the runtime serves the agent.
    async fn reachable(&self, agent: &str, key: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let response = self
                .http
                .post(format!("{}/api/v1/run/{agent}", self.base))
                .header("x-api-key", key)
                .json(&json!({"input_value": "ping"}))
                .send()
                .await?;
            if response.status().is_success() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the runtime did not provision the demo agent within 30 s")
    }

    async fn sign_up(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let account = json!({"email": email, "password": password, "name": email.split('@').next()});
        self.send("POST", "/api/auth/register", None, Some(account)).await?;
        let login =
            self.send("POST", "/api/auth/login", None, Some(json!({"email": email, "password": password}))).await?;
        login["token"].as_str().map(str::to_owned).context("signing in gave no token")
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.send(method, path, Some(token), body).await
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn id(answer: &Value) -> anyhow::Result<String> {
    answer["id"].as_str().map(str::to_owned).with_context(|| format!("no id in {answer}"))
}
