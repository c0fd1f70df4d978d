//! The Sandflow control plane: identity, organisations, the seller journey
//! (provider status, provider agents and their immutable flow versions),
//! the marketplace (categories, offerings, plans, orders, resources, agent
//! configs and API keys, quotas), the durable job queue, the runtime change
//! feed and the usage ledger, behind the management HTTP API under `/api/`.
//!
//! Storage is [`db::Db`]: SQLite in the data directory by default, or
//! PostgreSQL when [`Config::database_url`] names one; both are migrated on
//! start and behave the same. [`app`] builds the [`axum::Router`] (tests
//! drive it with `oneshot`); [`serve`] runs it on a listener until shutdown.
//!
//! | area | routes |
//! |---|---|
//! | identity | `POST /api/auth/register`, `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/users/me` |
//! | organisations | `/api/organizations/`, `/api/organizations/{id}/members/…`, `POST /api/organizations/{id}/provider-request` |
//! | operators | `GET /api/admin/provider-requests/`, `POST /api/admin/provider-requests/{id}/approve` and `…/reject` |
//! | seller | `/api/provider-agents/` (+ `validate_flow`, `{id}/import_flow`, `{id}/versions`, `{id}/stats`, `{id}/secrets/{name}`: [`secrets`]) |
//! | catalog | `/api/categories/` (+ `{id}`), `/api/offerings/` (+ `{id}`, `submit`, `approve`, `reject`, `pause`, `resume`, `archive`), `/api/offerings/{id}/plans/`, `/api/plans/{id}` (+ `archive`), `GET /api/catalog/` |
//! | buying | `/api/orders/` (+ `{id}`, `approve_by_consumer`, `reject_by_consumer`, `approve_by_provider`, `reject_by_provider`, `cancel`, `retry`), `/api/resources/` (+ `{id}`, `terminate`) |
//! | buyer's agents | `/api/customer-agent-configs/` (+ `{id}`, `{id}/api_keys`, `{id}/secrets/{name}`: [`secrets`], `{id}/variables`), `/api/agent-api-keys/` (+ `{id}` DELETE, `regenerate`) |
//! | training documents | `/api/training-documents/` (+ `{id}`, `{id}/process`): multipart upload, processed into the [`documents`] index |
//! | operators | `GET/PUT /api/quotas/{organization_id}`, `GET/PUT /api/admin/settings` |
//! | analytics | `GET /api/analytics/usage/?organization=&period=YYYY-MM` |
//! | runtime | `POST /api/runtime/usage/`, `GET /api/runtime/changes/`, `GET /api/runtime/artifacts/{digest}`, `GET /api/runtime/agents/{id}/secrets`, `GET /api/runtime/usage-totals/` (bearer runtime token) |
//! | docs | `GET /api/openapi.json` (OpenAPI 3.1, generated from the handlers: [`http::openapi`]), `GET /api/docs` |
//!
//! Background work (provisioning, deprovisioning) runs as durable [`jobs`];
//! what the runtime hosts must apply is the ordered [`feed`].
//!
//! Every refusal is a 4xx with `{"detail": "...", "code": "..."}` saying
//! what to fix ([`error::Error`]); a failed request changes nothing.
//!
//! ```
//! use sandflow_control_plane::{app, AppState, Config, db::Db};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open_in_data_dir(dir.path()).await.unwrap();
//! let router = app(AppState::new(db, Config::default()));
//! let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
//! let response = router.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # });
//! ```
#![deny(missing_docs)]

pub mod agent_config;
pub mod auth;
pub mod config;
pub mod db;
pub mod documents;
pub mod error;
pub mod feed;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod migrations;
pub mod provisioning;
pub mod secrets;
pub mod stored_secrets;
pub mod transition;
pub mod usage;

pub use auth::bootstrap_operator;
pub use config::Config;
pub use error::Error;

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler shares: the database, the settings and the signal
/// that wakes the job worker.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub db: db::Db,
    /// The settings.
    pub config: Arc<Config>,
    /// Notified when a job is queued ([`jobs::wake`]).
    pub jobs: Arc<tokio::sync::Notify>,
    /// The document index training documents are written into; without
    /// one, uploads answer 503.
    pub documents: Option<sandflow_doc_index::DocIndex>,
}

impl AppState {
    /// State over an opened database.
    pub fn new(db: db::Db, config: Config) -> Self {
        Self { db, config: Arc::new(config), jobs: Arc::new(tokio::sync::Notify::new()), documents: None }
    }

    /// The same state, writing training documents into `index`.
    #[must_use]
    pub fn with_documents(mut self, index: sandflow_doc_index::DocIndex) -> Self {
        self.documents = Some(index);
        self
    }
}

/// The management API as a router.
pub fn app(state: AppState) -> axum::Router {
    http::router(state)
}

/// Why the control plane stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Open(#[from] db::OpenError),
    /// The document index could not be opened or migrated.
    #[error(transparent)]
    Documents(#[from] sandflow_doc_index::IndexError),
    /// The listener failed.
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The management API as a router, with its background work running:
/// queues again the jobs a stopped process left running ([`jobs::recover`])
/// and starts the job worker ([`jobs::spawn_worker`]). For hosts that serve
/// the router themselves (`sandflow serve`); abort the worker on shutdown.
pub async fn start(state: AppState) -> (axum::Router, tokio::task::JoinHandle<()>) {
    if let Some(Err(e)) = state.config.signing_key() {
        tracing::warn!("{e}: agent API keys cannot be created");
    }
    if let Err(e) = secrets::SealingKeys::parse(&state.config.secrets_keys) {
        tracing::warn!("{e}: buyers cannot set agent secrets, and hosts get none");
    }
    match jobs::recover(&state.db).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(jobs = n, "queued again the jobs a stopped process left running"),
        Err(e) => tracing::error!(error = ?e, "cannot recover the jobs left running"),
    }
    let worker = jobs::spawn_worker(state.clone());
    (app(state), worker)
}

/// Opens the database `config` names (migrating it), [`start`]s the API
/// with its job worker and serves it on `listener` until `shutdown`
/// resolves, then stops the worker and closes the database.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = match &config.database_url {
        Some(url) => db::Db::open(url.expose()).await?,
        None => db::Db::open_in_data_dir(&config.data_dir).await?,
    };
    tracing::info!(
        dialect = ?db.dialect(),
        address = %listener.local_addr()?,
        "control plane listening"
    );
    let documents = documents::open_index(&config).await?;
    let (router, worker) = start(AppState::new(db.clone(), config).with_documents(documents.clone())).await;
    let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    worker.abort();
    documents.close().await;
    db.close().await;
    served?;
    Ok(())
}
