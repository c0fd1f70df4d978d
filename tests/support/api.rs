//! A small client for the control plane's API, for the journey suites.
#![allow(dead_code, reason = "each suite that includes it uses a part")]

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The management API of a running `sandflow serve`.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// A signed-in user: their bearer token.
#[derive(Clone)]
pub struct User(pub String);

impl Api {
    /// A client for the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: sandflow_runtime_host::http_client_builder().build().expect("an HTTP client"),
        }
    }

    /// Sends `method path` with `body`, as `user` when given; the status and
    /// the JSON answer (`null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&User>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(User(token)) = user {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `POST`, expecting `status`; the answer.
    pub async fn post(&self, path: &str, user: &User, body: Value, status: u16) -> Value {
        self.expect(reqwest::Method::POST, path, user, Some(body), status).await
    }

    /// `PATCH`, expecting 200; the answer.
    pub async fn patch(&self, path: &str, user: &User, body: Value) -> Value {
        self.expect(reqwest::Method::PATCH, path, user, Some(body), 200).await
    }

    /// `PUT`, expecting 200; the answer.
    pub async fn put(&self, path: &str, user: &User, body: Value) -> Value {
        self.expect(reqwest::Method::PUT, path, user, Some(body), 200).await
    }

    /// `GET`, expecting 200; the answer.
    pub async fn get(&self, path: &str, user: &User) -> Value {
        self.expect(reqwest::Method::GET, path, user, None, 200).await
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let shown = format!("{method} {path}");
        let (got, answer) = self.call(method, path, Some(user), body).await;
        assert_eq!(got, status, "{shown} answered {answer}");
        answer
    }

    /// Registers `email` and signs in.
    pub async fn sign_up(&self, email: &str) -> User {
        let password = "correct horse battery staple";
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": password, "name": email})),
            )
            .await;
        assert_eq!(status, 201, "registering {email}: {answer}");
        let (status, answer) = self
            .call(reqwest::Method::POST, "/api/auth/login", None, Some(json!({"email": email, "password": password})))
            .await;
        assert_eq!(status, 200, "signing in {email}: {answer}");
        User(answer["token"].as_str().expect("a token").to_owned())
    }

    /// Creates an organisation owned by `user`; its id.
    pub async fn organization(&self, user: &User, name: &str) -> String {
        id(&self.post("/api/organizations/", user, json!({"name": name}), 201).await)
    }
}

/// What a buyer holds once an order is done.
pub struct Subscription {
    /// The agent (the resource) the runtime serves.
    pub agent: String,
    /// Its customer agent config.
    pub config: String,
    /// An API key's id and text.
    pub key_id: String,
    /// The key itself.
    pub key: String,
}

/// What [`Api::seller_lists`] made.
pub struct Listing {
    /// The seller (the provider organisation's owner).
    pub seller: User,
    /// The provider agent.
    pub agent: String,
    /// The offering.
    pub offering: String,
    /// Its plan.
    pub plan: String,
}

impl Api {
    /// A seller organisation, approved, with an agent built from the
    /// Langflow export `flow`, an offering with one plan, approved by
    /// `operator`.
    pub async fn seller_lists(&self, operator: &User, flow: Value) -> Listing {
        let seller = self.sign_up("seller@example.com").await;
        let org = self.organization(&seller, "Echo Works").await;
        let request = self
            .post(&format!("/api/organizations/{org}/provider-request"), &seller, json!({"note": "echoes"}), 201)
            .await;
        self.post(&format!("/api/admin/provider-requests/{}/approve", id(&request)), operator, json!({}), 200).await;
        let agent =
            self.post("/api/provider-agents/", &seller, json!({"organization": org, "name": "Echo"}), 201).await;
        let agent = id(&agent);
        self.post(&format!("/api/provider-agents/{agent}/import_flow"), &seller, flow, 201).await;
        let offering = self
            .post(
                "/api/offerings/",
                &seller,
                json!({"organization_id": org, "provider_agent_id": agent, "name": "Echo agent",
                       "description": "Says back what it hears"}),
                201,
            )
            .await;
        let offering = id(&offering);
        let plan = self
            .post(
                &format!("/api/offerings/{offering}/plans/"),
                &seller,
                json!({"name": "Starter", "per_run": 1, "runs_per_month": 100}),
                201,
            )
            .await;
        self.post(&format!("/api/offerings/{offering}/submit"), &seller, json!({}), 200).await;
        self.post(&format!("/api/offerings/{offering}/approve"), operator, json!({}), 200).await;
        Listing { seller, agent, offering, plan: id(&plan) }
    }

    /// `buyer` orders `plan` for organisation `org`, waits for the order to
    /// be done and creates an API key for the agent.
    pub async fn subscribe(&self, buyer: &User, org: &str, plan: &str) -> Subscription {
        let order = self.post("/api/orders/", buyer, json!({"plan_id": plan, "organization_id": org}), 201).await;
        let order = id(&order);
        let done = eventually(Duration::from_secs(10), || async {
            let order = self.get(&format!("/api/orders/{order}"), buyer).await;
            (order["state"] == "done").then_some(order)
        })
        .await;
        let agent = done["resource_id"].as_str().expect("a done order names its resource").to_owned();
        let resource = self.get(&format!("/api/resources/{agent}"), buyer).await;
        let config = resource["config_id"].as_str().expect("the subscription has a config").to_owned();
        let key = self
            .post(&format!("/api/customer-agent-configs/{config}/api_keys"), buyer, json!({"name": "server"}), 201)
            .await;
        let key_id = id(&key);
        let key = key["key"].as_str().expect("the key is shown once").to_owned();
        Subscription { agent, config, key_id, key }
    }
}

/// Calls `agent` through the Langflow-compatible API with `key`; the
/// status and the answer.
pub async fn run(base: &str, agent: &str, key: &str, text: &str) -> (u16, Value) {
    let response = sandflow_runtime_host::http_client_builder()
        .build()
        .expect("an HTTP client")
        .post(format!("{base}/api/v1/run/{agent}"))
        .header("x-api-key", key)
        .json(&json!({"input_value": text}))
        .send()
        .await
        .expect("the runtime answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The `id` of an answer.
pub fn id(answer: &Value) -> String {
    answer["id"].as_str().unwrap_or_else(|| panic!("no id in {answer}")).to_owned()
}

/// Asks `check` every 50 ms until it gives an answer, for at most `limit`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(limit: Duration, mut check: impl FnMut() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(answer) = check().await {
            return answer;
        }
        assert!(started.elapsed() < limit, "nothing came within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
