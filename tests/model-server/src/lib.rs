//! A local model server for Sandflow's tests: OpenAI-compatible Chat
//! Completions (`/v1/chat/completions`, JSON and streamed), Embeddings
//! (`/v1/embeddings`) and Anthropic Messages (`/v1/messages`, JSON and
//! streamed), answering deterministically (see [`script`] for the rules),
//! counting tokens as words and recording every request it receives.
//!
//! External LLM APIs are the one boundary Sandflow's tests replace; this is
//! what replaces them, over real HTTP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = sandflow_model_server::ModelServer::start(Default::default()).await?;
//! println!("OpenAI base URL: {}/v1", server.url());
//! # Ok(()) }
//! ```

mod anthropic;
pub mod embed;
mod openai;
pub mod script;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Pause between streamed chunks, to observe tokens arriving one by one.
    pub chunk_delay: Duration,
    /// When set, requests must carry this key (`Authorization: Bearer` or `x-api-key`).
    pub api_key: Option<String>,
    /// Address to listen on; `127.0.0.1:0` when unset.
    pub listen: Option<SocketAddr>,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The route, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The credential sent, if any.
    pub api_key: Option<String>,
    /// The JSON body.
    pub body: Value,
}

#[derive(Clone)]
pub(crate) struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    chunk_delay: Duration,
    api_key: Option<String>,
}

impl Shared {
    /// The JSON body of a request to `path`, recorded; or the error answer
    /// (400 for malformed JSON, 401 for a missing or wrong key).
    fn accept(&self, path: &str, headers: &HeaderMap, body: &str) -> Result<Value, Box<Response>> {
        let request: Value =
            serde_json::from_str(body).map_err(|e| Box::new(error(400, &format!("invalid JSON: {e}"))))?;
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(Recorded { path: path.to_owned(), api_key: credential(headers), body: request.clone() });
        }
        match &self.api_key {
            Some(expected) if credential(headers).as_ref() != Some(expected) => {
                Err(Box::new(error(401, "Incorrect API key provided")))
            }
            _ => Ok(request),
        }
    }
}

/// A running model server; it stops when dropped.
pub struct ModelServer {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl ModelServer {
    /// Starts a server on the current tokio runtime.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind(options.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))))
                .await?;
        let addr = listener.local_addr()?;
        let shared = Shared { requests: Arc::default(), chunk_delay: options.chunk_delay, api_key: options.api_key };
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            // The server lives as long as its handle; a failed accept ends it.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`; OpenAI clients want `{url}/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Serves until the process ends.
    pub async fn wait(self) {
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/messages", post(anthropic::messages))
        .route(
            "/v1/models",
            get(|| async { axum::Json(json!({"object": "list", "data": [{"id": "local-model", "object": "model"}]})) }),
        )
        .with_state(shared)
}

fn credential(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization").and_then(|v| v.strip_prefix("Bearer ")).or_else(|| header("x-api-key")).map(str::to_owned)
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"error": {"message": message, "type": "local_model_error"}}))).into_response()
}

/// A `text/event-stream` response sending `events` with `delay` between them.
fn sse(events: Vec<String>, delay: Duration) -> Response {
    let stream = futures_util::stream::unfold(events.into_iter().enumerate(), move |mut events| async move {
        let (i, event) = events.next()?;
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, std::convert::Infallible>(event), events))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "stream"))
}
