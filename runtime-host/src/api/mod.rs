//! The data plane: the HTTP API buyers call agents through.
//!
//! - native `POST /v1/agents/{agent}/runs` (JSON or SSE);
//! - Langflow-compatible `POST /api/v1/run/{flow}` (same request, response and
//!   stream shapes, `x-api-key`);
//! - OpenAI-compatible `POST /v1/chat/completions` (`model` = agent id) and
//!   `GET /v1/models[/{model}]` (the agents the key may call);
//! - OpenAI's Responses API `POST /v1/responses` (also Langflow's
//!   `/api/v1/responses`; see [`responses`]);
//! - Langflow's v2 `POST /api/v2/workflows`, mode `sync` (see [`workflows`]);
//! - Langflow's files API `/api/v1/files/{upload,list,download,images,delete}/{flow}…`
//!   and the native `/v1/agents/{agent}/files[/{name}]`: the agent's file
//!   storage (see [`files`]);
//! - Langflow's webhook trigger `POST /api/v1/webhook/{flow}` (the body to
//!   the flow's Webhook components, the run in the background, 202);
//! - `GET /health`, `GET /metrics` (Prometheus).
//!
//! Every run request passes the same door ([`DataPlane::agent_for`] and
//! [`DataPlane::execute`]): key verified, agent owned by the key's tenant,
//! the request's own checks, per-key and per-tenant rate limits, the
//! tenant's runs in progress, the monthly quota, then a fresh sandbox.
//! Refusals are `{"detail", "code"}` ([`ApiError`]), in OpenAI's shape on
//! the OpenAI-compatible route.

mod agents;
mod body;
pub mod clock;
mod cors;
mod error;
mod files;
mod in_flight;
pub mod keys;
mod langflow;
mod metrics;
mod native;
mod openai;
mod progress;
pub mod quotas;
mod rate;
mod responses;
mod webhook;
mod workflows;

pub use agents::{Agent, Agents, Ambiguous};
pub use error::ApiError;
pub use keys::{Claims, KeyVerifier};
pub use quotas::{Quota, Quotas, Reservation};

use crate::capabilities::memory::{self, PendingWrites};
use crate::lanes::RunLanes;
use crate::usage::{Outbox, UsageRecord};
use crate::{Limits, RunContext, RunOutcome, RunRequest, Runtime, Secret};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use in_flight::{InFlight, Slot};
use metrics::Metrics;
use rate::RateLimiter;
use std::sync::Arc;
use tracing::Instrument;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Defaults for keys and tenants that do not set their own.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Requests per minute per key.
    pub key_rpm: u32,
    /// Requests per minute per tenant.
    pub tenant_rpm: u32,
    /// Runs of one tenant in progress (queued or running) at once; more
    /// are refused with 429 until one ends.
    pub tenant_runs_in_flight: usize,
    /// When set, `GET /metrics` answers only `Authorization: Bearer` with
    /// this token (its names of routes and counts of runs are the
    /// operator's business).
    pub metrics_token: Option<Secret>,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self { key_rpm: 6_000, tenant_rpm: 60_000, tenant_runs_in_flight: 256, metrics_token: None }
    }
}

/// Everything a data-plane request needs.
pub struct DataPlane {
    /// The sandbox runtime.
    pub runtime: Runtime,
    /// Provisioned agents.
    pub agents: Agents,
    /// API key verification and revocation.
    pub keys: KeyVerifier,
    /// Tenant quotas and usage.
    pub quotas: Arc<Quotas>,
    config: DataPlaneConfig,
    rate: RateLimiter,
    in_flight: InFlight,
    metrics: Arc<Metrics>,
    usage: Option<Arc<Outbox>>,
    lanes: RunLanes,
}

/// A new run id, which is also the run's usage idempotency key: time-ordered
/// (UUID v7), so the outbox and the ledger's key index grow at their end
/// instead of taking each key at a random place.
pub(crate) fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl DataPlane {
    /// A data plane over `runtime` with no agents and no signing keys yet.
    pub fn new(runtime: Runtime, config: DataPlaneConfig) -> Self {
        Self {
            runtime,
            agents: Agents::default(),
            keys: KeyVerifier::default(),
            quotas: Arc::default(),
            config,
            rate: RateLimiter::new(),
            in_flight: InFlight::default(),
            metrics: Arc::default(),
            usage: None,
            lanes: RunLanes::per_core(),
        }
    }

    /// Records every run's usage in `outbox` before answering.
    #[must_use]
    pub fn with_usage(mut self, outbox: Arc<Outbox>) -> Self {
        self.usage = Some(outbox);
        self
    }

    /// The agent `reference` names, if `key` may call it. Another tenant's
    /// agent answers exactly like a missing one.
    pub fn agent_for(&self, key: &ApiKey, reference: &str) -> Result<Arc<Agent>, ApiError> {
        let claims = &key.claims;
        let not_found = || ApiError::NotFound(format!("no agent or flow `{reference}` for this key"));
        let agent = self
            .agents
            .find(&claims.tenant, reference, &claims.agents)
            .map_err(|Ambiguous(ids)| {
                ApiError::BadRequest(format!(
                    "`{reference}` names {} agents of this tenant ({}): call one by its agent id",
                    ids.len(),
                    ids.join(", ")
                ))
            })?
            .ok_or_else(not_found)?;
        if agent.tenant != claims.tenant {
            return Err(not_found());
        }
        if !claims.agents.is_empty() && !claims.agents.contains(&agent.id) {
            return Err(ApiError::Forbidden(format!("this key is not allowed to call agent `{}`", agent.id)));
        }
        if !claims.scopes.iter().any(|s| s == "run" || s == "widget") {
            return Err(ApiError::Forbidden("this key has no `run` scope".into()));
        }
        key.check_widget_origin(&agent)?;
        Ok(agent)
    }

    /// Admits the request (its own checks, rate limits, the tenant's runs
    /// in progress, quota), then runs the agent's flow in a fresh sandbox
    /// on a run lane (see [`crate::lanes`]).
    pub async fn execute(&self, key: &ApiKey, agent: &Arc<Agent>, request: RunRequest) -> Result<Execution, ApiError> {
        self.execute_as(key, agent, request, new_run_id()).await
    }

    /// [`DataPlane::execute`] with the run's id chosen by the caller, who
    /// can then name the run whether it succeeds or fails.
    pub(crate) async fn execute_as(
        &self,
        key: &ApiKey,
        agent: &Arc<Agent>,
        request: RunRequest,
        run_id: String,
    ) -> Result<Execution, ApiError> {
        let admitted = self.admit_run(key, &request)?;
        self.run_admitted(key, agent, request, None, admitted, run_id).await
    }

    /// Like [`DataPlane::execute`], but answers at once with the run's
    /// progress: tokens as models produce them, then the finished run.
    /// Refusals (rate limit, quota) come back before anything streams.
    pub fn execute_streaming(
        self: &Arc<Self>,
        key: ApiKey,
        agent: Arc<Agent>,
        request: RunRequest,
    ) -> Result<progress::Progress, ApiError> {
        let admitted = self.admit_run(&key, &request)?;
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let plane = self.clone();
        let run_id = new_run_id();
        let id = run_id.clone();
        let run =
            tokio::spawn(async move { plane.run_admitted(&key, &agent, request, Some(events), admitted, id).await });
        Ok(progress::Progress::new(run_id, receiver, run))
    }

    /// Admits the request and runs it in the background (a webhook's run):
    /// its id, or the refusal. Its outcome goes to the usage record and
    /// the host's log.
    pub fn execute_detached(
        self: &Arc<Self>,
        key: ApiKey,
        agent: Arc<Agent>,
        request: RunRequest,
    ) -> Result<String, ApiError> {
        let admitted = self.admit_run(&key, &request)?;
        let plane = self.clone();
        let run_id = new_run_id();
        let id = run_id.clone();
        tokio::spawn(async move {
            if let Err(error) = plane.run_admitted(&key, &agent, request, None, admitted, id.clone()).await {
                tracing::warn!(run_id = %id, agent = %agent.id, %error, "background run failed");
            }
        });
        Ok(run_id)
    }

    /// The tenant's monthly quota, for a request that is not a run (an
    /// upload; rate limits are [`DataPlane::limit_rate`]).
    pub(crate) fn check_quota(&self, key: &ApiKey) -> Result<(), ApiError> {
        self.quotas.check(&key.claims.tenant, clock::month_index()).map_err(ApiError::quota_exhausted)
    }

    /// The request itself, room in the usage outbox, rate limits, the
    /// tenant's runs in progress, then the run counted against the quota;
    /// or a refusal. Nothing is charged for a request refused here.
    fn admit_run(&self, key: &ApiKey, request: &RunRequest) -> Result<Admitted, ApiError> {
        check_request(key, request)?;
        if let Some(outbox) = self.usage.as_ref().filter(|outbox| outbox.is_full()) {
            return Err(ApiError::Unavailable(format!(
                "this host takes no runs for now: {} MiB of usage records wait for the control plane, which \
                 has not taken them for a while; runs resume once it does",
                outbox.backlog() >> 20
            )));
        }
        self.limit_rate(key)?;
        let tenant = &key.claims.tenant;
        let limit = self.config.tenant_runs_in_flight;
        let slot = self.in_flight.enter(tenant, limit).ok_or_else(|| ApiError::RateLimited {
            message: format!("tenant `{tenant}` has {limit} runs in progress; retry once one has ended"),
            retry_after: std::time::Duration::from_secs(1),
        })?;
        let reservation = self.quotas.reserve(tenant, clock::month_index()).map_err(ApiError::quota_exhausted)?;
        Ok(Admitted { reservation, _slot: slot })
    }

    /// Refuses a key, or its tenant, over its requests per minute. A
    /// request the tenant's bucket refuses costs the key's nothing.
    pub(crate) fn limit_rate(&self, key: &ApiKey) -> Result<(), ApiError> {
        let claims = &key.claims;
        let quota = self.quotas.get(&claims.tenant);
        let buckets = [
            (format!("key:{}", claims.sub), claims.rpm.unwrap_or(self.config.key_rpm)),
            (format!("tenant:{}", claims.tenant), quota.rpm.unwrap_or(self.config.tenant_rpm)),
        ];
        self.rate.check_all(&buckets).map_err(|(refused, wait)| ApiError::RateLimited {
            message: if refused == 0 {
                format!("key `{}` is over its rate limit", claims.sub)
            } else {
                format!("tenant `{}` is over its rate limit", claims.tenant)
            },
            retry_after: wait,
        })
    }

    async fn run_admitted(
        &self,
        key: &ApiKey,
        agent: &Arc<Agent>,
        request: RunRequest,
        events: Option<crate::EventSender>,
        admitted: Admitted,
        run_id: String,
    ) -> Result<Execution, ApiError> {
        let claims = &key.claims;
        let span = tracing::info_span!(
            "runtime_host.run",
            tenant = %agent.tenant,
            agent = %agent.id,
            flow_version = %agent.flow.digest(),
            run_id = %run_id,
            http_bytes = tracing::field::Empty,
        );
        let mut context = RunContext {
            tenant: agent.tenant.clone(),
            agent: agent.id.clone(),
            secrets: agent.secrets.clone(),
            events,
            persona: agent.persona.clone(),
            public: !key.can_run(),
            in_progress: None,
        };
        let (runtime, flow, limits) = (self.runtime.clone(), agent.flow.clone(), agent.limits);
        let bytes_in = request.input_value.as_ref().map_or(0, String::len)
            + if request.tweaks.is_empty() { 0 } else { serde_json::to_string(&request.tweaks).map_or(0, |t| t.len()) };
        let mut record = UsageRecord {
            idempotency_key: run_id.clone(),
            tenant: agent.tenant.clone(),
            agent: agent.id.clone(),
            subscription: claims.subscription.clone(),
            flow_version: agent.flow.digest().to_owned(),
            fuel: 0,
            tokens_in: 0,
            tokens_out: 0,
            wall_micros: 0,
            bytes_in: bytes_in as u64,
            bytes_out: 0,
            http_bytes: 0,
            outcome: String::new(),
            started_at_ms: clock::unix_millis(),
            key_id: Some(claims.sub.clone()),
        };
        let (outbox, metrics) = (self.usage.clone(), self.metrics.clone());
        let result = self
            .lanes
            .run(move || {
                // The slot counts the run as in progress until its job ends.
                let Admitted { reservation, _slot } = admitted;
                span.in_scope(|| {
                    // Journaled once it computes for a while or calls out, so
                    // that a run the process dies in is recorded too.
                    let journaled = outbox.map(|outbox| {
                        let run = outbox.start(&record);
                        (outbox, run)
                    });
                    context.in_progress = journaled.as_ref().map(|(_, run)| run.clone());
                    let used = run(&runtime, &flow, limits, context, &request);
                    record.fuel = used.fuel;
                    record.http_bytes = used.http_bytes;
                    tracing::Span::current().record("http_bytes", used.http_bytes);
                    record.tokens_in = used.tokens.input;
                    record.tokens_out = used.tokens.output;
                    record.wall_micros = u64::try_from(used.elapsed.as_micros()).unwrap_or(u64::MAX);
                    record.outcome =
                        used.result.as_ref().map_or_else(|e| e.kind().to_owned(), |_| "completed".to_owned());
                    record.bytes_out = used
                        .result
                        .as_ref()
                        .map_or(0, |o| o.outputs.iter().map(|out| native::text(&out.value).len() as u64).sum());
                    // Counted here, like the usage record, so a run whose
                    // caller left is in the metrics too.
                    metrics.run(if used.result.is_ok() { "completed" } else { "failed" }, used.elapsed, used.fuel);
                    // The record is in the outbox before anyone hears of the run.
                    let recorded = journaled.map_or(Ok(()), |(outbox, run)| outbox.finish(&run, &record));
                    // Finished here, not once the caller has the answer: a
                    // caller that went away meanwhile is charged all the
                    // same. A failed run used fuel too. A job never run
                    // (its caller left first) drops its reservation.
                    reservation.finish(used.fuel, used.tokens.input + used.tokens.output);
                    (used, recorded)
                })
            })
            .await
            .map_err(|panic| ApiError::Internal(format!("run failed: {panic}")))?;
        let (mut used, recorded) = result;
        recorded.map_err(|e| ApiError::Internal(format!("usage not recorded: {e}")))?;
        // The run's chat-history messages are stored before it is answered,
        // waited for here rather than on the run's thread.
        if used.result.is_ok()
            && let Err(error) = memory::settle_run(used.history_writes).await
        {
            used.result = Err(error);
        }
        used.result.map(|outcome| Execution { outcome, run_id }).map_err(Into::into)
    }
}

/// A run let in: counted against its tenant's quota and among its runs in
/// progress until it ends (or, never run, is dropped).
struct Admitted {
    reservation: Reservation,
    _slot: Slot,
}

/// The session a request names, or `otherwise` when it names none (an
/// absent, empty or blank id).
fn session_or(given: Option<String>, otherwise: impl FnOnce() -> String) -> String {
    given.filter(|s| !s.trim().is_empty()).unwrap_or_else(otherwise)
}

/// What the door checks in a run request before anything is charged.
fn check_request(key: &ApiKey, request: &RunRequest) -> Result<(), ApiError> {
    memory::limits::check_session(&request.session_id)
        .map_err(|e| ApiError::BadRequest(format!("the request's session id cannot be used: {e}")))?;
    // A widget key sits in public pages: tweaks would let anyone rewrite
    // the seller's flow (its prompts, or a Webhook node's payload).
    if !request.tweaks.is_empty() {
        key.require_run("sending tweaks")?;
    }
    // Nor may it fill the flow's Text Inputs, which hold what the seller
    // wrote there (instructions, say): a widget chats.
    if request.input_value.is_some() && request.input_type != crate::InputType::Chat {
        key.require_run("an `input_type` other than `chat`")?;
    }
    Ok(())
}

/// What one run produced and used, whatever its outcome.
struct Used {
    result: Result<RunOutcome, crate::RunError>,
    fuel: u64,
    tokens: crate::TokenCount,
    http_bytes: u64,
    elapsed: std::time::Duration,
    /// Chat-history messages appended, on their way into the store.
    history_writes: PendingWrites,
}

/// One run in a fresh sandbox. The sandbox, and with it the run's event
/// sender, is gone when this returns, which ends a streaming client's
/// token stream.
fn run(
    runtime: &Runtime,
    flow: &crate::FlowComponent,
    limits: Limits,
    context: RunContext,
    request: &RunRequest,
) -> Used {
    let started = std::time::Instant::now();
    let mut sandbox = runtime.sandbox_for(limits, context);
    sandbox.defer_history_writes();
    let result = contain_panic(|| sandbox.run_flow(flow, request));
    let history_writes = sandbox.take_history_writes();
    let (fuel, tokens, http_bytes) = (sandbox.fuel_consumed(), sandbox.tokens(), sandbox.http_bytes());
    Used { result, fuel, tokens, http_bytes, elapsed: started.elapsed(), history_writes }
}

/// Runs `job`, turning a panic of the host's own code into the run's
/// error, so a run that panics still has its usage record and its place
/// in the quota, and the sandbox it leaves behind can say what it used.
fn contain_panic(job: impl FnOnce() -> Result<RunOutcome, crate::RunError>) -> Result<RunOutcome, crate::RunError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        tracing::error!(panic = %crate::lanes::panic_message(&*panic), "the host panicked during a run");
        Err(crate::RunError::Host)
    })
}

/// A finished run.
pub struct Execution {
    /// What it produced.
    pub outcome: RunOutcome,
    /// Its id (Langflow's `run_id`, the usage record's idempotency key).
    pub run_id: String,
}

/// A verified API key, from `x-api-key` (header or query) or `Authorization: Bearer`.
pub struct ApiKey {
    /// What it grants.
    pub claims: Claims,
    /// The page the request came from (its `Origin`), when a browser sent
    /// it.
    pub origin: Option<String>,
}

impl ApiKey {
    /// Whether the key has the `run` scope (a server's key), not only
    /// `widget` (a key in public pages).
    pub(crate) fn can_run(&self) -> bool {
        self.claims.scopes.iter().any(|s| s == "run")
    }

    /// Refuses a widget key from a page the agent's widget settings do
    /// not list (when they list any).
    fn check_widget_origin(&self, agent: &Agent) -> Result<(), ApiError> {
        if self.can_run() || agent.widget_origins.is_empty() {
            return Ok(());
        }
        let listed = |origin: &str| agent.widget_origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
        match self.origin.as_deref() {
            Some(origin) if listed(origin) => Ok(()),
            Some(origin) => Err(ApiError::Forbidden(format!(
                "agent `{}` takes widget keys only from pages on {}; `{origin}` is not one of them: add it to \
                 the agent's widget settings (`allowed_origins`)",
                agent.id,
                agent.widget_origins.join(", ")
            ))),
            None => Err(ApiError::Forbidden(format!(
                "agent `{}` takes widget keys only from pages on its allowed origins, and this request names \
                 no `Origin`: call it from the widget's page, or use a key with the `run` scope on a server",
                agent.id
            ))),
        }
    }

    /// Refuses a key without the `run` scope: a widget key sits in public
    /// web pages, so it may chat through the widget and nothing more.
    pub(crate) fn require_run(&self, what: &str) -> Result<(), ApiError> {
        if self.can_run() {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!("{what} needs a key with the `run` scope")))
    }
}

impl FromRequestParts<Arc<DataPlane>> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<DataPlane>) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // The scheme's name is case-insensitive (RFC 9110).
        let bearer = header("authorization").and_then(|v| {
            let (scheme, token) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.to_owned())
        });
        let query = parts
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("x-api-key=").map(str::to_owned)));
        let token = header("x-api-key").or(bearer).or(query).ok_or(keys::KeyError::Missing)?;
        Ok(Self { claims: state.keys.verify(token.trim())?, origin: header("origin") })
    }
}

/// The data-plane router.
pub fn router(state: Arc<DataPlane>) -> Router {
    Router::new()
        .route("/api/v1/run/{flow}", post(langflow::run))
        .route("/api/v1/webhook/{flow}", post(webhook::trigger))
        .route("/api/v2/workflows", post(workflows::run))
        .route("/api/v1/files/upload/{flow}", post(files::upload).layer(DefaultBodyLimit::max(upload_limit(&state))))
        .route("/api/v1/files/list/{flow}", get(files::list))
        .route("/api/v1/files/download/{flow}/{file_name}", get(files::download))
        .route("/api/v1/files/images/{flow}/{file_name}", get(files::image))
        .route("/api/v1/files/delete/{flow}/{file_name}", delete(files::delete))
        .route("/v1/agents/{agent}/runs", post(native::run))
        .route("/v1/agents/{agent}/files", get(files::agent_files))
        .route("/v1/agents/{agent}/files/{*name}", get(files::agent_file).delete(files::delete_agent_file))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{model}", get(openai::model))
        .route("/v1/responses", post(responses::create))
        .route("/api/v1/responses", post(responses::create))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn(cors::cors))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The largest upload body: the per-file cap and the multipart framing.
fn upload_limit(state: &DataPlane) -> usize {
    let file = state.runtime.capabilities().files.as_ref().map_or(0, |s| s.config().max_file_bytes);
    usize::try_from(file).unwrap_or(usize::MAX).saturating_add(files::FRAMING_BYTES)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<DataPlane>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn render_metrics(State(state): State<Arc<DataPlane>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.config.metrics_token {
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Digests compared, so the time taken does not tell how much of the
        // token matched.
        let digest = |token: &str| <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes());
        if presented.is_none_or(|token| digest(token) != digest(expected.expose())) {
            return ApiError::Unauthorized(
                "the metrics need `Authorization: Bearer <token>` with the host's metrics token (--metrics-token)"
                    .into(),
            )
            .into_response();
        }
    }
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render(state.agents.len())).into_response()
}

/// The root span of every request, named by route template, and its metrics.
async fn track(State(state): State<Arc<DataPlane>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let span = if route == "/health" || route == "/metrics" {
        tracing::debug_span!("runtime_host.request", %method, route = %route)
    } else {
        tracing::info_span!("runtime_host.request", %method, route = %route)
    };
    let response = next.run(request).instrument(span).await;
    state.metrics.request(&route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_panic_is_the_runs_error() {
        let Err(error) = contain_panic(|| panic!("a capability's bug")) else { panic!("the panic is the run's error") };
        assert_eq!(error.kind(), "host_error", "recorded as the host's failure, not the flow's");
        let refusal = ApiError::Run(error);
        assert_eq!(refusal.status_and_code(), (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert!(!refusal.message().contains("capability's bug"), "the panic's words stay in the log");
    }
}
