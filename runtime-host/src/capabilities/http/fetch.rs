//! One request under the egress policy: headers cleaned, each hop routed
//! (the operator's routes), checked (a routed hop goes where the operator
//! sent it) and pinned to its checked addresses,
//! redirects followed by hand, the body read up to the cap, all of it
//! within one timeout.

use super::policy::{Admission, Policy, Target, redacted};
use super::route::{self, Route};
use crate::bindings::node::sandflow::host::http::{Request, Response};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::time::Duration;

/// Most redirects followed for one request; each hop is checked again.
pub const MAX_REDIRECTS: usize = 5;
/// Timeout of a request that names none (the run's deadline caps it too).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What one exchange produced and how many bytes it read.
pub(crate) struct Exchange {
    pub result: Result<Response, CapabilityError>,
    /// Body bytes received (also of a refused, oversized body).
    pub bytes: u64,
}

/// How one request is sent: the policy and limits in force.
pub(crate) struct Rules<'a> {
    pub policy: Policy<'a>,
    /// The operator's routes (none for the operator's own endpoints).
    pub routes: &'a [Route],
    /// The operator's own endpoint (the search provider): no allow-list.
    pub trusted: bool,
    pub max_bytes: usize,
    pub follow_redirects: bool,
    /// Headers a secret was filled into: they follow a redirect only to
    /// the same origin, as `Authorization` does.
    pub secret_headers: &'a [String],
    /// Whose run sends it: name lookups are bounded per tenant and flow.
    pub caller: super::lookup::Caller<'a>,
}

/// Sends `request` under `rules`, within `timeout`.
pub(crate) async fn fetch(rules: &Rules<'_>, request: Request, timeout: Duration) -> Exchange {
    let mut bytes = 0;
    let result = prepare(&request).map(|(method, url, headers)| (method, url, headers, request.body));
    let result = match result {
        Ok((method, url, headers, body)) => {
            let host = url.host_str().unwrap_or_default().to_owned();
            match tokio::time::timeout(timeout, exchange(rules, method, url, headers, body, &mut bytes)).await {
                Ok(result) => result,
                Err(_) => Err(CapabilityError::Failed(format!(
                    "`{host}` did not answer within {} ms (the request's timeout, capped by the run's deadline)",
                    timeout.as_millis()
                ))),
            }
        }
        Err(error) => Err(error),
    };
    Exchange { result, bytes }
}

/// Method, URL and headers, checked.
fn prepare(request: &Request) -> Result<(Method, Url, HeaderMap), CapabilityError> {
    let method = match request.method.trim().to_ascii_uppercase().as_str() {
        "" | "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        other => {
            return Err(CapabilityError::Invalid(format!(
                "method `{}` is not sent; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    let url = Url::parse(request.url.trim()).map_err(|e| {
        CapabilityError::Invalid(format!("`{}` is not a URL: {e}", request.url.chars().take(200).collect::<String>()))
    })?;
    Ok((method, url, headers(&request.headers)?))
}

/// Headers the guest may not set: the host sets framing and routing
/// itself (a guest-chosen `Host`, `Content-Length` or `Transfer-Encoding`
/// could smuggle a second request or reach another virtual host), and
/// proxy headers address infrastructure, not the target: those a proxy
/// or framework reads for the original URL, client or method would let a
/// flow steer a server behind an operator's route past its base path.
fn forbidden(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "host"
            | "content-length"
            | "connection"
            | "transfer-encoding"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "forwarded"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-real-ip"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
    ) || name.starts_with("proxy-")
        || name.starts_with("x-forwarded-")
}

fn headers(pairs: &[(String, String)]) -> Result<HeaderMap, CapabilityError> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            CapabilityError::Invalid(format!("`{}` is not a header name", name.chars().take(100).collect::<String>()))
        })?;
        if forbidden(&name) {
            tracing::debug!(header = %name, "guest header dropped");
            continue;
        }
        // Rejects CR and LF, so no header can be split into two.
        let value = HeaderValue::from_str(value).map_err(|_| {
            CapabilityError::Invalid(format!("the value of header `{name}` is not a valid header value"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

async fn exchange(
    rules: &Rules<'_>,
    mut method: Method,
    mut url: Url,
    mut headers: HeaderMap,
    mut body: Vec<u8>,
    bytes: &mut u64,
) -> Result<Response, CapabilityError> {
    for hop in 0..=MAX_REDIRECTS {
        // `url` is what the guest asked for (redirects resolve against it,
        // so a relative redirect of a routed service stays routed); `real`
        // is where it goes, which is what the policy checks.
        super::policy::check_shape(&url).map_err(|e| on_hop(e, hop))?;
        let (real, routed) = route::resolve(rules.routes, &url);
        let shown = url.host_str().unwrap_or_default().to_owned();
        if routed && route::leaves_base(&url) {
            return Err(on_hop(
                CapabilityError::Denied(format!(
                    "`{shown}` is routed by this host's operator, and this path could leave the route (an encoded \
                     `/` or `\\`, a `..` segment or `..;`); ask for the path plainly"
                )),
                hop,
            ));
        }
        let target = if rules.trusted || routed {
            // The operator's own endpoints, and where the operator sends a
            // routed origin: reached at whatever address they name, and not
            // opened to flows by it (a flow asking for a route's
            // destination itself meets the allow-list like any host).
            let resolved = rules.policy.resolve(&real, Admission::Explicit, rules.caller).await;
            resolved.map_err(|e| if routed { unreachable_route(&shown, &real, e) } else { e })?
        } else {
            let checked = match rules.policy.admit(&real) {
                Ok(admission) => rules.policy.resolve(&real, admission, rules.caller).await,
                Err(error) => Err(error),
            };
            checked.map_err(|e| on_hop(e, hop))?
        };
        if routed {
            tracing::debug!(from = %redacted(&url), to = %redacted(&real), "routed by the operator");
        }
        let client = pinned_client(&target)?;
        let mut send = client.request(method.clone(), real.clone()).headers(headers.clone());
        if !body.is_empty() {
            send = send.body(body.clone());
        }
        let response = send.send().await.map_err(|e| {
            let why = describe(e);
            if routed {
                // The transport's words may name the route's destination
                // (a certificate's names): the operator's log has them.
                tracing::warn!(origin = %shown, error = %why, "the destination of an operator route failed");
                CapabilityError::Failed(format!("could not reach `{shown}` (routed by this host's operator)"))
            } else {
                CapabilityError::Failed(format!("could not reach `{shown}`: {why}"))
            }
        })?;
        let status = response.status();
        let location = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        match location {
            Some(location) if rules.follow_redirects && is_redirect(status) => {
                if hop == MAX_REDIRECTS {
                    return Err(CapabilityError::Denied(format!(
                        "more than {MAX_REDIRECTS} redirects, starting at {}",
                        redacted(&url)
                    )));
                }
                let next = url.join(&location).map_err(|e| {
                    CapabilityError::Failed(format!("`{shown}` redirected to an invalid location: {e}"))
                })?;
                // A routed service that names its own base goes on through
                // the route; anywhere else on the base is not the guest's.
                let next = match route::back(rules.routes, &url, &next) {
                    Some(mapped) => mapped,
                    None if routed && next.origin() == real.origin() => {
                        return Err(CapabilityError::Denied(format!(
                            "redirect refused: `{shown}` redirected out of the path its operator routes it to"
                        )));
                    }
                    None => next,
                };
                if status == StatusCode::SEE_OTHER && method != Method::HEAD
                    || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && method == Method::POST
                {
                    method = Method::GET;
                    body.clear();
                    headers.remove(header::CONTENT_TYPE);
                }
                // Credentials follow only to the same origin, as asked and
                // as really sent (two routes may share a destination).
                if next.origin() != url.origin() || route::resolve(rules.routes, &next).0.origin() != real.origin() {
                    strip_credentials(&mut headers, rules.secret_headers);
                }
                tracing::debug!(from = %redacted(&url), to = %redacted(&next), %status, "following a redirect");
                url = next;
            }
            _ => return read(response, rules.max_bytes, &shown, bytes).await,
        }
    }
    Err(CapabilityError::Denied(format!("more than {MAX_REDIRECTS} redirects")))
}

/// Drops what carries a credential: the standard credential headers and
/// those a secret was filled into.
fn strip_credentials(headers: &mut HeaderMap, secret_headers: &[String]) {
    for sensitive in [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION] {
        headers.remove(sensitive);
    }
    for name in secret_headers {
        // `HeaderMap::remove` with a `&str` that is not a header name
        // removes nothing, silently; `headers` sent the parsed name.
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
}

/// A routed request whose destination does not resolve: the guest learns
/// that its origin is routed and unreachable, not where to (the route is
/// the operator's). A refusal that names no host (the lookup limits) is
/// passed on as it is.
fn unreachable_route(shown: &str, real: &Url, error: CapabilityError) -> CapabilityError {
    let destination = real.host_str().unwrap_or_default();
    match error {
        CapabilityError::Failed(message) if !message.contains(destination) => CapabilityError::Failed(message),
        error => {
            tracing::warn!(?error, origin = shown, "the destination of an operator route does not resolve");
            CapabilityError::Failed(format!(
                "`{shown}` is routed by this host's operator to a destination that does not resolve; the operator \
                 checks --http-route"
            ))
        }
    }
}

/// A refusal on a redirect says it was the redirect that was refused.
fn on_hop(error: CapabilityError, hop: usize) -> CapabilityError {
    match error {
        CapabilityError::Denied(m) if hop > 0 => CapabilityError::Denied(format!("redirect refused: {m}")),
        other => other,
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// A client that connects only to the checked addresses: its resolver
/// answers the target's name with them and nothing else, no proxy is
/// consulted, and it follows no redirects of its own.
fn pinned_client(target: &Target) -> Result<reqwest::Client, CapabilityError> {
    let mut builder = crate::capabilities::io::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .dns_resolver(NoLookup);
    if target.is_name {
        builder = builder.resolve_to_addrs(&target.host, &target.addrs);
    }
    builder.build().map_err(|e| CapabilityError::Failed(format!("cannot prepare the request: {e}")))
}

/// The resolver of a pinned client: it looks nothing up, so the only
/// addresses it can reach are the pinned ones.
struct NoLookup;

impl reqwest::dns::Resolve for NoLookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let message = format!("`{}` was not checked by the egress policy", name.as_str());
        Box::pin(async move { Err(message.into()) })
    }
}

/// The response, its body read up to `max` bytes.
async fn read(
    mut response: reqwest::Response,
    max: usize,
    shown: &str,
    bytes: &mut u64,
) -> Result<Response, CapabilityError> {
    let too_large = || {
        CapabilityError::Denied(format!(
            "the response of `{shown}` is larger than this host's limit of {max} bytes (--http-max-bytes)"
        ))
    };
    if response.content_length().is_some_and(|declared| declared > max as u64) {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CapabilityError::Failed(format!("reading the response of `{shown}`: {}", describe(e))))?
    {
        *bytes += chunk.len() as u64;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body })
}

/// A reqwest error's own words, without the URL it carries (which may hold
/// a query the guest considers private).
fn describe(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_headers_do_not_follow_a_redirect_whatever_their_spacing() {
        use super::super::credentials;
        use crate::capabilities::secrets::Secrets;
        let secrets: Secrets = [("AAI_KEY", "k-agent")].into_iter().collect();
        let variable = sandflow_flow_compiler::ir::ParamValue::Secret("AAI_KEY".into());
        let mut pairs = vec![(" X-Api-Key ".to_owned(), "{{secret:api_key}}".to_owned())];
        let filled =
            credentials::fill(&mut pairs, "https://api.assemblyai.com/", |_| Some(&variable), &secrets).expect("fills");
        let mut sent = headers(&pairs).expect("valid headers");
        assert_eq!(sent["x-api-key"], "k-agent");
        strip_credentials(&mut sent, &filled);
        assert!(sent.is_empty(), "{sent:?}");
    }

    #[test]
    fn drops_framing_and_proxy_headers_and_refuses_split_values() {
        let pairs =
            |list: &[(&str, &str)]| list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let kept = headers(&pairs(&[
            ("Host", "internal.example"),
            ("Content-Length", "0"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Original-URL", "/admin"),
            ("X-Rewrite-URL", "/admin"),
            ("X-Forwarded-Prefix", "/admin"),
            ("Forwarded", "for=10.0.0.1"),
            ("X-HTTP-Method-Override", "DELETE"),
            ("User-Agent", "langflow"),
            ("X-Api-Key", "k"),
        ]))
        .expect("valid headers");
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["user-agent", "x-api-key"]);
        assert!(matches!(headers(&pairs(&[("X-A", "a\r\nHost: evil")])), Err(CapabilityError::Invalid(_))));
        assert!(matches!(headers(&pairs(&[("Bad Name", "a")])), Err(CapabilityError::Invalid(_))));
    }

    #[test]
    fn a_redirect_elsewhere_drops_every_header_a_secret_was_filled_into() {
        let pairs = [("Authorization", "Bearer a"), ("xi-api-key", "secret"), ("Accept", "text/html")];
        let mut sent = headers(&pairs.map(|(n, v)| (n.to_owned(), v.to_owned()))).expect("valid headers");
        strip_credentials(&mut sent, &["Xi-Api-Key".to_owned()]);
        let names: Vec<&str> = sent.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn refuses_odd_methods_and_non_urls() {
        let request = |method: &str, url: &str| Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
        };
        assert!(matches!(prepare(&request("CONNECT", "http://a/")), Err(CapabilityError::Invalid(_))));
        assert!(matches!(prepare(&request("TRACE", "http://a/")), Err(CapabilityError::Invalid(_))));
        assert!(matches!(prepare(&request("GET", "not a url")), Err(CapabilityError::Invalid(_))));
        assert!(prepare(&request("post", "http://a/")).is_ok_and(|(m, _, _)| m == Method::POST));
    }
}
