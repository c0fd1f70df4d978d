//! Shared by the integration tests: a fresh control plane per test on
//! SQLite (a temporary file) or PostgreSQL (a new database `cp_<uuid>`,
//! dropped afterwards), and small request helpers.
//!
//! PostgreSQL is reached at `SANDFLOW_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`; a test fails if it is not
//! there, since both stores must be tested.
#![allow(dead_code, reason = "each test binary uses its own part of these helpers")]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use sandflow_control_plane::config::Secret;
use sandflow_control_plane::db::Db;
use sandflow_control_plane::{AppState, Config, app};
use sandflow_doc_index::DocIndex;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use std::future::Future;
use tower::ServiceExt as _;

pub const PASSWORD: &str = "correct horse battery";
pub const RUNTIME_TOKEN: &str = "runtime-secret-for-tests";
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest training document the test apps accept.
pub const MAX_DOCUMENT: usize = 256 * 1024;
pub const KID: &str = "k1";
pub const KEY_SECRET: &str = "key-signing-secret-for-tests";
/// The key agent secrets are sealed with.
pub const SECRETS_KEY: &str = "s1=5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// Jobs are tried this often before they fail (with no backoff, so
/// `run_jobs` sees every attempt at once).
pub const JOB_ATTEMPTS: u32 = 3;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `scenario` against a fresh control plane on `backend`, then
/// removes the database, even when the scenario panics.
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(backend, false, scenario).await;
}

/// [`run`], with a document index of its own (SQLite beside the
/// database, or another fresh PostgreSQL database) for training documents.
pub async fn run_with_documents<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_with(backend, true, scenario).await;
}

async fn run_with<F, Fut>(backend: Backend, documents: bool, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut documents_db = None;
    let (url, cleanup) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("cp.db").display());
            (url, Cleanup::Dir(dir))
        }
        Backend::Postgres => {
            let admin = postgres_admin_url();
            let name = format!("cp_{}", uuid::Uuid::new_v4().simple());
            let mut conn = admin_connection(&admin).await;
            conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
            conn.close().await.ok();
            (replace_database(&admin, &name), Cleanup::Database { admin, name })
        }
    };
    let db = Db::open(&url).await.expect("open and migrate");
    let mut state = AppState::new(db.clone(), test_config());
    if documents {
        let index_url = match (&backend, &cleanup) {
            (Backend::Sqlite, Cleanup::Dir(dir)) => DocIndex::sqlite_url_in(dir.path()),
            _ => {
                let admin = postgres_admin_url();
                let name = format!("docs_{}", uuid::Uuid::new_v4().simple());
                let mut conn = admin_connection(&admin).await;
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
                conn.close().await.ok();
                documents_db = Some(name.clone());
                replace_database(&admin, &name)
            }
        };
        state = state.with_documents(DocIndex::open(&index_url).await.expect("open the document index"));
    }
    let app = TestApp { router: app(state.clone()), db: db.clone(), state: state.clone() };
    let outcome = tokio::spawn(scenario(app)).await;
    if let Some(index) = &state.documents {
        index.close().await;
    }
    if let Some(name) = documents_db {
        let admin = postgres_admin_url();
        let mut conn = admin_connection(&admin).await;
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.expect("drop database");
        conn.close().await.ok();
    }
    db.close().await;
    if let Cleanup::Database { admin, name } = &cleanup {
        let mut conn = admin_connection(admin).await;
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.expect("drop database");
        conn.close().await.ok();
    }
    drop(cleanup);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The settings every test app runs with.
pub fn test_config() -> Config {
    Config {
        runtime_token: Some(Secret::new(RUNTIME_TOKEN)),
        max_body_bytes: MAX_BODY,
        secure_cookies: false,
        key_secrets: vec![format!("{KID}={KEY_SECRET}")],
        secrets_keys: vec![SECRETS_KEY.to_owned()],
        job_max_attempts: JOB_ATTEMPTS,
        job_backoff_ms: 0,
        max_document_bytes: MAX_DOCUMENT,
        ..Config::default()
    }
}

enum Cleanup {
    Dir(tempfile::TempDir),
    Database { admin: String, name: String },
}

pub fn postgres_admin_url() -> String {
    std::env::var("SANDFLOW_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn admin_connection(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for these tests at {url} (set SANDFLOW_TEST_POSTGRES_URL): {e}")
    })
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Generates one test per store for a scenario `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run($crate::common::Backend::Sqlite, super::$scenario).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run($crate::common::Backend::Postgres, super::$scenario).await;
            }
        }
    )*};
}

/// Generates one test per store for a scenario `async fn(TestApp)` that
/// needs the document index ([`run_with_documents`]).
#[macro_export]
macro_rules! on_both_stores_with_documents {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_with_documents($crate::common::Backend::Sqlite, super::$scenario).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_with_documents($crate::common::Backend::Postgres, super::$scenario).await;
            }
        }
    )*};
}

/// A control plane under test.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub db: Db,
    pub state: AppState,
}

/// An answer: status, JSON body (`Null` when empty or not JSON), headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.body);
        self.body
    }

    /// Asserts a 4xx of our error shape with `code`, and returns `detail`.
    #[track_caller]
    pub fn refused(self, status: u16, code: &str) -> String {
        let body = self.expect(status);
        assert_eq!(body["code"], code, "{body}");
        let detail = body["detail"].as_str().expect("detail is text").to_owned();
        assert!(!detail.is_empty());
        detail
    }
}

impl TestApp {
    /// Sends any request.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body, headers, bytes }
    }

    /// Sends `body` as JSON (when given) with an optional bearer token.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&body).expect("json"))),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Posts raw bytes as `application/json`.
    pub async fn post_bytes(&self, path: &str, token: &str, bytes: Vec<u8>) -> Answer {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .expect("request");
        self.send(request).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Runs every due background job now; returns what ran.
    pub async fn run_jobs(&self) -> Vec<sandflow_control_plane::jobs::Ran> {
        sandflow_control_plane::jobs::run_due(&self.state).await.expect("jobs run")
    }

    /// The runtime change feed after `after`.
    pub async fn feed(&self, after: i64) -> Value {
        self.get(&format!("/api/runtime/changes/?after={after}"), RUNTIME_TOKEN).await.expect(200)
    }

    pub async fn register(&self, email: &str) -> Value {
        let body = json!({ "email": email, "password": PASSWORD, "name": email.split('@').next() });
        self.call(Method::POST, "/api/auth/register", None, Some(body)).await.expect(201)
    }

    pub async fn login(&self, email: &str) -> String {
        let body = json!({ "email": email, "password": PASSWORD });
        let answer = self.call(Method::POST, "/api/auth/login", None, Some(body)).await.expect(200);
        answer["token"].as_str().expect("token").to_owned()
    }

    /// Registers and signs in; returns the bearer token.
    pub async fn signup(&self, email: &str) -> String {
        self.register(email).await;
        self.login(email).await
    }

    /// A staff operator's token.
    pub async fn operator(&self) -> String {
        sandflow_control_plane::bootstrap_operator(&self.db, "operator@example.com", PASSWORD).await.expect("operator");
        self.login("operator@example.com").await
    }

    /// Creates an organisation; returns its id.
    pub async fn organization(&self, token: &str, name: &str) -> String {
        let org = self.post("/api/organizations/", token, json!({ "name": name })).await.expect(201);
        org["id"].as_str().expect("id").to_owned()
    }

    /// An organisation approved as a provider, owned by `token`'s user.
    pub async fn provider(&self, token: &str, operator: &str, name: &str) -> String {
        let org = self.organization(token, name).await;
        let request =
            self.post(&format!("/api/organizations/{org}/provider-request"), token, json!({})).await.expect(201);
        let id = request["id"].as_str().expect("id");
        self.post(&format!("/api/admin/provider-requests/{id}/approve"), operator, json!({})).await.expect(200);
        org
    }

    /// Registers `email`, adds them to `org` with `role`; returns their token.
    pub async fn member(&self, owner: &str, org: &str, email: &str, role: &str) -> String {
        let token = self.signup(email).await;
        let body = json!({ "email": email, "role": role });
        self.post(&format!("/api/organizations/{org}/members"), owner, body).await.expect(201);
        token
    }

    /// A provider agent of `org` with the `prompt-echo.json` flow imported;
    /// returns its id.
    pub async fn agent(&self, seller: &str, org: &str, name: &str) -> String {
        self.agent_with_flow(seller, org, name, flow("prompt-echo.json")).await
    }

    /// A provider agent of `org` with the Langflow export `export`
    /// imported; returns its id.
    pub async fn agent_with_flow(&self, seller: &str, org: &str, name: &str, export: Vec<u8>) -> String {
        let body = json!({ "organization": org, "name": name });
        let agent = self.post("/api/provider-agents/", seller, body).await.expect(201);
        let id = agent["id"].as_str().expect("id").to_owned();
        self.post_bytes(&format!("/api/provider-agents/{id}/import_flow"), seller, export).await.expect(201);
        id
    }

    /// A draft offering of `agent` with one plan; returns (offering, plan).
    pub async fn draft_offering(&self, seller: &str, org: &str, agent: &str, extra: Value) -> (String, String) {
        let mut body = json!({ "organization_id": org, "provider_agent_id": agent, "name": "Echo Pro",
                               "description": "Says everything back" });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let offering = self.post("/api/offerings/", seller, body).await.expect(201);
        let offering = offering["id"].as_str().expect("id").to_owned();
        let plan = json!({ "name": "Basic", "fixed_monthly": 1900, "per_run": 2, "requests_per_minute": 120,
                           "runs_per_month": 10000 });
        let plan = self.post(&format!("/api/offerings/{offering}/plans"), seller, plan).await.expect(201);
        (offering, plan["id"].as_str().expect("id").to_owned())
    }

    /// Submits and approves an offering.
    pub async fn activate(&self, seller: &str, operator: &str, offering: &str) {
        self.post(&format!("/api/offerings/{offering}/submit"), seller, json!({})).await.expect(200);
        let active = self.post(&format!("/api/offerings/{offering}/approve"), operator, json!({})).await.expect(200);
        assert_eq!(active["state"], "active");
    }

    /// A whole marketplace: an operator, a provider selling an active
    /// offering (one plan) and a buyer organisation.
    pub async fn market(&self, extra: Value) -> Market {
        self.market_of(flow("prompt-echo.json"), extra).await
    }

    /// [`Self::market`], selling the Langflow export `export`.
    pub async fn market_of(&self, export: Vec<u8>, extra: Value) -> Market {
        let operator = self.operator().await;
        let seller = self.signup("seller@example.com").await;
        let provider = self.provider(&seller, &operator, "Acme").await;
        let agent = self.agent_with_flow(&seller, &provider, "Echo", export).await;
        let (offering, plan) = self.draft_offering(&seller, &provider, &agent, extra).await;
        self.activate(&seller, &operator, &offering).await;
        let buyer = self.signup("buyer@example.com").await;
        let consumer = self.organization(&buyer, "Shop").await;
        Market { operator, seller, provider, agent, offering, plan, buyer, consumer }
    }

    /// Orders the market's plan as the buyer (an owner, so no approval by
    /// the consumer), runs the jobs; returns the order.
    pub async fn provisioned(&self, market: &Market) -> Value {
        let body = json!({ "plan_id": market.plan, "organization_id": market.consumer });
        let order = self.post("/api/orders/", &market.buyer, body).await.expect(201);
        self.run_jobs().await;
        let order = self.get(&format!("/api/orders/{}", order["id"].as_str().expect("id")), &market.buyer).await;
        let order = order.expect(200);
        assert_eq!(order["state"], "done", "{order}");
        order
    }

    /// Counts the rows of a table.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(self.db.pool()).await.expect("count")
    }
}

/// A shared Langflow export, read from `../shared/flows/`.
pub fn flow(name: &str) -> Vec<u8> {
    let path = format!("{}/../../shared/flows/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What [`TestApp::market`] made.
#[derive(Debug, Clone)]
pub struct Market {
    pub operator: String,
    pub seller: String,
    pub provider: String,
    pub agent: String,
    pub offering: String,
    pub plan: String,
    pub buyer: String,
    pub consumer: String,
}
