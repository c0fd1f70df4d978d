//! A small client for the control plane's API, for the journey suites.

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
