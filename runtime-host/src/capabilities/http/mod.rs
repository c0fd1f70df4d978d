//! `sandflow:host/http`: outbound HTTP and web search, under the
//! operator's egress policy.
//!
//! Configure (operator): [`HttpConfig`], the allow-list of host patterns
//! (`--http-allow`), whether private networks may be reached
//! (`--http-allow-private`), the response body cap (`--http-max-bytes`,
//! 4 MiB by default), the web search provider (`--web-search-url`) and
//! the [`route`]s that send a well-known origin elsewhere
//! (`--http-route`).
//! Without one, every function answers `not-configured`. Prepare (per run):
//! nothing but a byte counter in the run's capabilities. Host: `fetch`
//! routes the URL ([`route`]: a routed origin goes to the operator's
//! destination, which the allow-list need not hold), else checks it
//! against the [`policy`], connects only to the addresses
//! it checked, follows redirects itself (at most
//! [`fetch::MAX_REDIRECTS`], each hop checked again), reads at most the
//! cap, and waits at most the request's timeout capped by the run's
//! remaining deadline (host calls are out of reach of the epoch
//! interruption, so a slow server must not hold a run past its deadline).
//! `web-search` asks the operator's provider, which is trusted (it need
//! not be on the allow-list and may be on a private address). A header
//! may carry a key the host fills in ([`credentials`]); `wait` pauses a
//! node that polls a service, within the run's deadline. Name lookups,
//! which the system resolver cannot cancel, are bounded per tenant and on
//! the host ([`lookup`]).
//!
//! Refusals answer `denied` with a message that names the host and says
//! which flag allows it; the guest never learns more about the host's
//! network than that (a routed request that fails names only the origin
//! the guest asked for).

mod credentials;
mod fetch;
mod lookup;
mod policy;
mod route;
mod search;

pub use policy::HostPattern;
pub use route::Route;
pub use search::WebSearchProvider;

use super::io;
use crate::bindings::node::sandflow::host::http::{Host, Request, Response, SearchResult};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use crate::sandbox::RunState;
use std::sync::Arc;
use std::time::Duration;

/// Longest one `wait` (the run's deadline caps it too).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Default cap on one response body.
pub const DEFAULT_MAX_BYTES: usize = 4 << 20;

/// The operator's egress policy and search provider.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Hosts flows may reach.
    pub allow: Vec<HostPattern>,
    /// Whether names on the allow-list may resolve to loopback, private,
    /// link-local and other non-public addresses. Off by default: with it
    /// on, a flow allowed `*.example.com` reaches whatever an attacker's DNS
    /// for such a name points at inside the operator's network.
    pub allow_private: bool,
    /// Most bytes of one response body.
    pub max_response_bytes: usize,
    /// Where `web-search` goes; without one it answers `not-configured`.
    pub web_search: Option<WebSearchProvider>,
    /// Origins the operator sends elsewhere (mirrors, proxies, on-premises
    /// services, tests); their destinations are the operator's, reached
    /// through the route only.
    pub routes: Vec<Route>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_private: false,
            max_response_bytes: DEFAULT_MAX_BYTES,
            web_search: None,
            routes: Vec::new(),
        }
    }
}

impl HttpConfig {
    fn policy(&self) -> policy::Policy<'_> {
        policy::Policy { allow: &self.allow, allow_private: self.allow_private }
    }
}

fn not_configured() -> CapabilityError {
    CapabilityError::NotConfigured(
        "the `http` capability is not configured on this host; the operator allows hosts with --http-allow \
         (and web search with --web-search-url)"
            .into(),
    )
}

impl RunState {
    fn http_config(&self) -> Result<(Arc<super::CapabilityConfig>, Duration), CapabilityError> {
        let config = self.caps.config.clone();
        if config.http.is_none() {
            return Err(not_configured());
        }
        let remaining =
            self.caps.remaining().ok_or_else(|| CapabilityError::Denied("the run's deadline has passed".into()))?;
        Ok((config, remaining))
    }
}

impl Host for RunState {
    fn fetch(&mut self, mut request: Request) -> Result<Response, CapabilityError> {
        let (config, remaining) = self.http_config()?;
        let node = self.caps.node_id.as_str();
        let flow = self.flow.as_ref();
        let secret_headers = credentials::fill(
            &mut request.headers,
            &request.url,
            |field| flow.and_then(|f| f.param(node, field)),
            &self.caps.agent_secrets,
        )?;
        let http = config.http.as_ref().ok_or_else(not_configured)?;
        let asked = request.timeout_ms.map_or(fetch::DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms)));
        let timeout = asked.min(remaining);
        let span = tracing::info_span!(
            "runtime_host.http",
            operation = "fetch",
            method = %request.method,
            host = %reqwest::Url::parse(&request.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default(),
            status = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        let _entered = span.enter();
        let rules = fetch::Rules {
            policy: http.policy(),
            routes: &http.routes,
            trusted: false,
            max_bytes: http.max_response_bytes,
            follow_redirects: true,
            secret_headers: &secret_headers,
            caller: lookup::Caller { tenant: &self.caps.tenant, flow: self.flow_digest() },
        };
        self.caps.calling_out();
        let exchange = io::block_on(fetch::fetch(&rules, request, timeout));
        self.caps.received(exchange.bytes);
        span.record("bytes", exchange.bytes);
        match &exchange.result {
            Ok(response) => {
                span.record("status", response.status);
            }
            Err(error) => tracing::warn!(?error, "http fetch refused or failed"),
        }
        exchange.result
    }

    fn wait(&mut self, milliseconds: u32) -> Result<(), CapabilityError> {
        let (_, remaining) = self.http_config()?;
        let asked = Duration::from_millis(u64::from(milliseconds)).min(MAX_WAIT);
        let _span = tracing::debug_span!("runtime_host.http", operation = "wait", ms = milliseconds).entered();
        // A wait holds no core: the queue behind it moves meanwhile.
        crate::lanes::release();
        std::thread::sleep(asked.min(remaining));
        if asked > remaining {
            return Err(CapabilityError::Denied("the run's deadline passed while waiting".into()));
        }
        Ok(())
    }

    fn web_search(&mut self, query: String, max_results: u32) -> Result<Vec<SearchResult>, CapabilityError> {
        let (config, remaining) = self.http_config()?;
        let http = config.http.as_ref().ok_or_else(not_configured)?;
        let provider = http.web_search.as_ref().ok_or_else(|| {
            CapabilityError::NotConfigured(
                "no web search provider is configured on this host; the operator sets --web-search-url".into(),
            )
        })?;
        if query.trim().is_empty() {
            return Err(CapabilityError::Invalid("the search query is empty".into()));
        }
        let span = tracing::info_span!(
            "runtime_host.http",
            operation = "web_search",
            max_results,
            results = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        let _entered = span.enter();
        let request = Request {
            method: "GET".into(),
            url: provider.request_url(&query),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout_ms: None,
        };
        let rules = fetch::Rules {
            policy: http.policy(),
            routes: &[],
            trusted: true,
            max_bytes: http.max_response_bytes,
            follow_redirects: false,
            secret_headers: &[],
            caller: lookup::Caller { tenant: &self.caps.tenant, flow: self.flow_digest() },
        };
        self.caps.calling_out();
        let exchange = io::block_on(fetch::fetch(&rules, request, fetch::DEFAULT_TIMEOUT.min(remaining)));
        self.caps.received(exchange.bytes);
        span.record("bytes", exchange.bytes);
        let response = exchange.result.map_err(|error| {
            // The provider's address is the operator's business.
            tracing::warn!(?error, "web search provider failed");
            CapabilityError::Failed("the web search provider did not answer; try again later".into())
        })?;
        if !(200..300).contains(&response.status) {
            tracing::warn!(status = response.status, "web search provider refused");
            return Err(CapabilityError::Failed(format!("the web search provider answered {}", response.status)));
        }
        let results = search::parse(&response.body, max_results)?;
        span.record("results", results.len());
        Ok(results)
    }
}
