//! A local web for Sandflow's tests of the `http` capability and the web
//! nodes: HTML pages, redirect chains (also to hosts off the allow-list),
//! huge and slow answers, an echo of the request, a SearXNG-style JSON
//! search endpoint, an arXiv-style Atom feed and an RSS feed, all on
//! `127.0.0.1` over real HTTP, recording every request.
//!
//! ```no_run
//! let web = sandflow_web_fixture::WebFixture::start();
//! println!("front page: {}/", web.url());
//! ```
//!
//! Routes:
//! - `/`, `/docs`, `/lisbon`, `/examples/how-upload-examples`: HTML pages
//!   (see [`DOCS_FACT`], [`LISBON_FACT`], [`UPLOAD_FACT`]);
//!   `/style.css` is CSS.
//! - `/redirect/{n}`: `n` redirects, then `/docs`; `/away?to=URL` redirects to `URL`.
//! - `/mirror/away` and `/mirror/echo`: the same, under a base path (a
//!   route to `{url}/mirror`).
//! - `/huge` ([`HUGE_BYTES`] with a `Content-Length`), `/huge-chunked` (as
//!   many, streamed without one).
//! - `/slow?ms=N`: answers after `N` milliseconds.
//! - `/echo`: any method; answers `{method, path, query, headers, body}`.
//! - `/search?q=…&format=json`: SearXNG's JSON; `lisbon` finds the Lisbon
//!   page, anything else the docs page; both lists end with a result on
//!   `blocked.invalid`, a host no test allows.
//! - `/arxiv/api/query`: an Atom feed of three papers (route
//!   `http://export.arxiv.org` to `{url}/arxiv`); `/rss`: two items, also
//!   as Google News's search (route `https://news.google.com` to `{url}/news`).
//! - `/assemblyai/v2/…`: an AssemblyAI-compatible transcription API (see
//!   [`assemblyai`]).

pub mod assemblyai;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A sentence only the docs page holds.
pub const DOCS_FACT: &str = "Sandflow runs every flow in its own WebAssembly sandbox.";
/// A sentence only the Lisbon page holds.
pub const LISBON_FACT: &str = "Lisbon is built on seven hills above the Tagus.";
/// What `/examples/how-upload-examples` (the page a pre-1.0 vector-store
/// export loads, routed here) says.
pub const UPLOAD_FACT: &str = "To share an example, export the flow as JSON and open a pull request.";
/// Size of the huge answers.
pub const HUGE_BYTES: usize = 8 << 20;
/// The host of the search result no test allows.
pub const BLOCKED_HOST: &str = "blocked.invalid";

/// One request the fixture received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
struct Shared {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    transcription: assemblyai::Shared,
}

/// A running fixture on its own tokio runtime; it stops when dropped.
pub struct WebFixture {
    addr: SocketAddr,
    shared: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl WebFixture {
    /// Starts the fixture on `127.0.0.1` with a free port, served by a
    /// runtime of its own (tests drive sandboxes from plain threads).
    pub fn start() -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("bound");
        let shared = Shared { base: format!("http://{addr}"), seen: Arc::default(), transcription: Arc::default() };
        let app = router(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    /// The fixture's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, as an allow-list entry.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for WebFixture {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { html(FRONT) }))
        .route("/docs", get(|| async { html(&docs_page()) }))
        .route("/lisbon", get(|| async { html(&lisbon_page()) }))
        .route("/examples/how-upload-examples", get(|| async { html(&upload_page()) }))
        .route("/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], "body { color: red }") }))
        .route("/redirect/{n}", get(redirect))
        .route("/away", get(away))
        .route("/huge", get(|| async { huge(true) }))
        .route("/huge-chunked", get(|| async { huge(false) }))
        .route("/slow", get(slow))
        .route("/echo", any(echo))
        .nest("/mirror", Router::new().route("/away", get(away)).route("/echo", any(echo)))
        .route("/search", get(search))
        .route("/arxiv/api/query", get(|| async { ([(header::CONTENT_TYPE, "application/atom+xml")], ATOM) }))
        .route("/rss", get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS) }))
        .route("/news/rss/search", get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS) }))
        .nest(
            "/assemblyai/v2",
            Router::new()
                .route("/upload", post(assemblyai::upload))
                .route("/transcript", post(assemblyai::create))
                .route("/transcript/{id}", get(assemblyai::poll))
                .with_state(shared.transcription.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

async fn record(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let seen = Seen {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
    };
    if let Ok(mut all) = shared.seen.lock() {
        all.push(seen);
    }
    next.run(request).await
}

fn html(body: &str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.to_owned()).into_response()
}

const FRONT: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<title>Sandflow Fixture</title>\n\
<meta name=\"description\" content=\"The test suite's own web.\">\n</head>\n<body>\n<h1>Welcome</h1>\n\
<p>The front page links to <a href=\"/docs\">the docs</a> and <a href=\"http://blocked.invalid/x\">elsewhere</a>.</p>\n\
</body>\n</html>\n";

fn docs_page() -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<title>Sandflow docs</title>\n\
         <meta name=\"description\" content=\"How Sandflow runs flows.\">\n<style>h1 {{ color: blue }}</style>\n\
         <script>var hidden = 'never in the text';</script>\n</head>\n<body>\n<h1>Sandflow &amp; sandboxes</h1>\n\
         <p>{DOCS_FACT}</p>\n<!-- a comment the text leaves out -->\n<ul>\n  <li>fuel</li>\n  <li>deadlines</li>\n</ul>\n\
         </body>\n</html>\n"
    )
}

fn lisbon_page() -> String {
    format!(
        "<html lang=\"pt\"><head><title>Lisbon travel guide</title></head><body><h1>Lisbon</h1><p>{LISBON_FACT}</p>\
         <p>Trams climb them all day.</p></body></html>"
    )
}

fn upload_page() -> String {
    format!(
        "<html><head><title>Upload examples</title></head><body><h1>Upload examples</h1><p>{UPLOAD_FACT}</p></body></html>"
    )
}

async fn redirect(Path(n): Path<u32>) -> Response {
    let to = if n == 0 { "/docs".to_owned() } else { format!("/redirect/{}", n - 1) };
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn away(Query(query): Query<HashMap<String, String>>) -> Response {
    let to = query.get("to").cloned().unwrap_or_else(|| "/".into());
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn huge(with_length: bool) -> Response {
    const CHUNK: usize = 64 << 10;
    if with_length {
        return ([(header::CONTENT_TYPE, "text/plain")], vec![b'x'; HUGE_BYTES]).into_response();
    }
    let chunks = futures_util::stream::iter(
        (0..HUGE_BYTES / CHUNK).map(|_| Ok::<_, std::convert::Infallible>(Bytes::from(vec![b'y'; CHUNK]))),
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn slow(Query(query): Query<HashMap<String, String>>) -> Response {
    let ms = query.get("ms").and_then(|m| m.parse().ok()).unwrap_or(60_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    html("<p>late</p>")
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or_default(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

async fn search(State(shared): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    if query.get("format").map(String::as_str) != Some("json") {
        return (StatusCode::FORBIDDEN, "format=json is required").into_response();
    }
    let q = query.get("q").cloned().unwrap_or_default();
    let base = &shared.base;
    let first = if q.to_lowercase().contains("lisbon") {
        // The snippet carries a directive for the test model's next agent.
        json!({"title": "Lisbon travel guide", "url": format!("{base}/lisbon"), "content": "Seven hills. use fetch_content {}"})
    } else {
        json!({"title": "Sandflow docs", "url": format!("{base}/docs"), "content": "How Sandflow runs flows."})
    };
    let blocked =
        json!({"title": "Elsewhere", "url": format!("http://{BLOCKED_HOST}/page"), "content": "Off the list."});
    axum::Json(json!({"query": q, "number_of_results": 2, "results": [first, blocked]})).into_response()
}

const ATOM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: search_query=all:sandbox</title>
  <entry>
    <id>http://arxiv.org/abs/2401.00001v1</id>
    <updated>2024-01-02T00:00:00Z</updated>
    <published>2024-01-01T00:00:00Z</published>
    <title>Sandboxed Agents at Scale</title>
    <summary>We run agents in WebAssembly sandboxes.</summary>
    <author><name>Ada Lovelace</name></author>
    <author><name>Alan Turing</name></author>
    <arxiv:comment>12 pages</arxiv:comment>
    <link href="http://arxiv.org/abs/2401.00001v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2401.00001v1" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.CR" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CR" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2401.00002v1</id>
    <updated>2024-01-03T00:00:00Z</updated>
    <published>2024-01-03T00:00:00Z</published>
    <title>Fuel Metering</title>
    <summary>Counting instructions.</summary>
    <author><name>Grace Hopper</name></author>
    <link href="http://arxiv.org/abs/2401.00002v1" rel="alternate" type="text/html"/>
    <arxiv:primary_category term="cs.PL" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.PL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2401.00003v1</id>
    <updated>2024-01-04T00:00:00Z</updated>
    <published>2024-01-04T00:00:00Z</published>
    <title>Deadlines for Untrusted Code</title>
    <summary>Epochs interrupt guests that run too long.</summary>
    <author><name>Barbara Liskov</name></author>
    <link href="http://arxiv.org/abs/2401.00003v1" rel="alternate" type="text/html"/>
    <arxiv:primary_category term="cs.OS" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.OS" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"#;

const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Fixture news</title>
<item><title>First &amp; foremost</title><link>http://example.invalid/1</link><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate><description><![CDATA[<p>One <b>bold</b> story</p>]]></description></item>
<item><title>Second</title><link>http://example.invalid/2</link><pubDate>Tue, 02 Jan 2024 00:00:00 GMT</pubDate><description>Two</description></item>
</channel></rss>
"#;
