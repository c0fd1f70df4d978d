//! Operator routes: a well-known origin sent to another base URL
//! (`--http-route https://api.assemblyai.com=http://10.0.0.5:8080/aai`).
//!
//! What they are for: mirrors, proxies, on-premises deployments of a
//! public API and tests, without changing the nodes that call the public
//! address. A request whose origin (scheme, host, port) is a route's goes
//! to the route's base URL with its path and query kept (the base's path
//! is put in front). The guest neither sets nor sees routes: it asks for
//! the public address and reads the answer.
//!
//! What they open: their origin, to every flow (the operator named it),
//! and nothing else. The destination is the operator's, reached at
//! whatever address it names, but only through the route: a flow asking
//! for the destination itself meets the egress policy (allow-list,
//! private addresses) like any host, so routing to one service of an
//! internal server opens no other path or port of it (every method and
//! path under the base is open; a path a server could read as leaving
//! the base is refused, [`leaves_base`]). Every redirect is routed and
//! checked again (one naming the base goes on through the route,
//! [`back`]), and a route matches only its exact origin
//! (`http://` is not `https://`, another port or a subdomain is another
//! origin).

use reqwest::Url;
use std::fmt;
use std::str::FromStr;

/// One route: requests to `from` (an origin) go to `to` (a base URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    from: Origin,
    to: Url,
}

/// Scheme, host (lower case, no trailing dot) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Option<Self> {
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
        let host = host.to_ascii_lowercase();
        Some(Self { scheme: url.scheme().to_owned(), host, port: url.port_or_known_default()? })
    }
}

impl FromStr for Route {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let usage = "a route is ORIGIN=BASE_URL, e.g. https://api.assemblyai.com=http://10.0.0.5:8080/assemblyai";
        let (from, to) = spec.trim().split_once('=').ok_or_else(|| format!("`{spec}`: {usage}"))?;
        let parse = |text: &str, what: &str| -> Result<Url, String> {
            let url = Url::parse(text.trim()).map_err(|e| format!("`{text}` ({what}) is not a URL: {e}; {usage}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{text}` ({what}) must be http:// or https:// with a host; {usage}"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!("`{text}` ({what}) carries user information; {usage}"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!("`{text}` ({what}) has a query or fragment; {usage}"));
            }
            Ok(url)
        };
        let from_url = parse(from, "the origin routed")?;
        if from_url.path() != "/" {
            return Err(format!("`{from}` has a path: the left side is an origin (scheme, host, port); {usage}"));
        }
        let mut to = parse(to, "where it goes")?;
        let base = to.path().trim_end_matches('/').to_owned();
        to.set_path(&base);
        let from = Origin::of(&from_url).ok_or_else(|| format!("`{from}`: {usage}"))?;
        Ok(Self { from, to })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Origin { scheme, host, port } = &self.from;
        let default = if scheme == "https" { 443 } else { 80 };
        let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let port = if *port == default { String::new() } else { format!(":{port}") };
        write!(f, "{scheme}://{host}{port}={}", self.to.as_str().trim_end_matches('/'))
    }
}

impl Route {
    /// The URL `url` is really sent to under this route, if the route is
    /// for `url`'s origin.
    fn apply(&self, url: &Url) -> Option<Url> {
        if Origin::of(url)? != self.from {
            return None;
        }
        let mut routed = self.to.clone();
        // The parser has removed `.` and `..` segments from the guest's
        // path, so it stays under the base's path.
        routed.set_path(&format!("{}{}", self.to.path().trim_end_matches('/'), url.path()));
        routed.set_query(url.query());
        Some(routed)
    }
}

/// Where `url` really goes: the first route for its origin, else itself;
/// and whether it was routed.
pub(crate) fn resolve(routes: &[Route], url: &Url) -> (Url, bool) {
    routes.iter().find_map(|r| r.apply(url)).map_or_else(|| (url.clone(), false), |routed| (routed, true))
}

/// Whether a server behind a route could read `url`'s path as leaving the
/// route's base path: the URL parser has removed plain `.` and `..`
/// segments, but not a segment holding an encoded `/` or `\` (which
/// nginx and others decode before resolving dots), nor `..;` (which
/// Tomcat and Jetty read as `..`). Such a path is not routed.
pub(crate) fn leaves_base(url: &Url) -> bool {
    url.path().split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        let dots = lower.replace("%2e", ".");
        lower.contains("%2f")
            || lower.contains("%5c")
            || dots == "."
            || dots == ".."
            || dots.starts_with(".;")
            || dots.starts_with("..;")
    })
}

/// A redirect from a routed service back to its own base, `next`, as the
/// routed origin: where the service sent the guest, in the guest's terms.
/// `None` when `next` is elsewhere (or not under the base path).
pub(crate) fn back(routes: &[Route], asked: &Url, next: &Url) -> Option<Url> {
    let route = routes.iter().find(|r| Origin::of(asked).is_some_and(|o| o == r.from))?;
    if next.origin() != route.to.origin() {
        return None;
    }
    let base = route.to.path().trim_end_matches('/');
    let rest = next.path().strip_prefix(base).filter(|rest| rest.is_empty() || rest.starts_with('/'))?;
    let mut mapped = asked.clone();
    mapped.set_path(if rest.is_empty() { "/" } else { rest });
    mapped.set_query(next.query());
    mapped.set_fragment(None);
    Some(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    fn routes(specs: &[&str]) -> Vec<Route> {
        specs.iter().map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))).collect()
    }

    #[test]
    fn paths_a_server_could_read_as_leaving_the_base() {
        for path in ["/..%2Fadmin", "/%2e%2e%2fadmin", "/..%5Cadmin", "/..;/admin", "/a/.;/b", "/a%2Fb"] {
            let asked = url(&format!("https://api.example.com{path}"));
            assert!(leaves_base(&asked), "{path} ({})", asked.path());
        }
        for path in ["/v2/transcript", "/a;b", "/a%20b/c", "/...", "/%2e%2e%2e"] {
            assert!(!leaves_base(&url(&format!("https://api.example.com{path}"))), "{path}");
        }
    }

    #[test]
    fn a_redirect_to_the_base_maps_back_to_the_routed_origin() {
        let routes = routes(&["https://api.example.com=http://10.0.0.5:8080/aai"]);
        let asked = url("https://api.example.com/v2/a");
        let back = |next: &str| super::back(&routes, &asked, &url(next)).map(|u| u.to_string());
        assert_eq!(back("http://10.0.0.5:8080/aai/v2/b?x=1").as_deref(), Some("https://api.example.com/v2/b?x=1"));
        assert_eq!(back("http://10.0.0.5:8080/aai").as_deref(), Some("https://api.example.com/"));
        assert_eq!(back("http://10.0.0.5:8080/aaiX/v2"), None, "not under the base path");
        assert_eq!(back("http://10.0.0.5:8080/admin"), None);
        assert_eq!(back("http://10.0.0.5:9090/aai/v2"), None, "another port");
        let unrouted = url("https://other.example.com/");
        assert_eq!(super::back(&routes, &unrouted, &url("http://10.0.0.5:8080/aai/v2")), None);
    }

    #[test]
    fn parses_and_shows_routes() {
        for (spec, shown) in [
            ("http://export.arxiv.org=http://127.0.0.1:8080", "http://export.arxiv.org=http://127.0.0.1:8080"),
            ("https://API.AssemblyAI.com/=http://10.0.0.5/aai/", "https://api.assemblyai.com=http://10.0.0.5/aai"),
            ("https://a.example:8443=https://mirror.example", "https://a.example:8443=https://mirror.example"),
            ("http://[::1]:81=http://[::1]:82", "http://[::1]:81=http://[::1]:82"),
        ] {
            assert_eq!(spec.parse::<Route>().unwrap_or_else(|e| panic!("{spec}: {e}")).to_string(), shown);
        }
        for (bad, says) in [
            ("export.arxiv.org", "ORIGIN=BASE_URL"),
            ("export.arxiv.org=http://127.0.0.1", "is not a URL"),
            ("https://a.example/v2=http://127.0.0.1", "has a path"),
            ("https://a.example=file:///etc", "must be http:// or https://"),
            ("https://a.example=http://u:p@mirror", "user information"),
            ("https://a.example=http://mirror/?key=1", "query or fragment"),
            ("ftp://a.example=http://mirror", "must be http:// or https://"),
        ] {
            let error = bad.parse::<Route>().expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn routes_only_their_exact_origin_keeping_path_and_query() {
        let all =
            routes(&["http://export.arxiv.org=http://127.0.0.1:9000", "https://api.example.com=http://10.0.0.5/x"]);
        let routed = |u: &str| resolve(&all, &url(u));
        assert_eq!(
            routed("http://export.arxiv.org/api/query?search_query=a%20b&max_results=3"),
            (url("http://127.0.0.1:9000/api/query?search_query=a%20b&max_results=3"), true)
        );
        assert_eq!(routed("HTTP://Export.ArXiv.org.:80/a").0, url("http://127.0.0.1:9000/a"));
        assert_eq!(routed("https://api.example.com/v2/upload").0, url("http://10.0.0.5/x/v2/upload"));
        // Climbing out of the base's path is undone by the parser first.
        assert_eq!(routed("https://api.example.com/v2/../../../admin").0, url("http://10.0.0.5/x/admin"));
        assert_eq!(routed("https://api.example.com/%2e%2e/admin").0, url("http://10.0.0.5/x/admin"));
        for other in [
            "https://export.arxiv.org/api/query",
            "http://export.arxiv.org:8080/api/query",
            "http://www.export.arxiv.org/",
            "http://export.arxiv.org.evil.test/",
            "http://api.example.com/v2",
            "http://127.0.0.1:9000/api/query",
        ] {
            assert_eq!(routed(other), (url(other), false), "{other} is another origin");
        }
    }
}
