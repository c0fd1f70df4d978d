//! The `http` capability's flags (shared by `run` and `serve`).

/// Outbound HTTP: which hosts flows may reach and the web search provider.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpArgs {
    /// A host flows may fetch from: `example.com`, `*.example.com` (its subdomains), an IP
    /// address or `*` (any public host), optionally with `:PORT` (repeatable; `,`-separated in
    /// the environment). Names must resolve to public addresses unless --http-allow-private;
    /// an IP address on the list is reached whatever it is.
    #[arg(long = "http-allow", env = "SANDFLOW_HTTP_ALLOW", value_delimiter = ',', value_name = "PATTERN")]
    pub allow: Vec<String>,
    /// Let allowed names resolve to loopback, private and link-local addresses. Off by default:
    /// it would let a flow reach the operator's own network through a name it controls.
    #[arg(long = "http-allow-private", env = "SANDFLOW_HTTP_ALLOW_PRIVATE")]
    pub allow_private: bool,
    /// Most bytes of one response body a flow may fetch (default 4 MiB).
    #[arg(long = "http-max-bytes", env = "SANDFLOW_HTTP_MAX_BYTES", value_name = "BYTES")]
    pub max_bytes: Option<usize>,
    /// Send a well-known origin to another base URL: `ORIGIN=BASE_URL`, e.g.
    /// `https://api.assemblyai.com=http://10.0.0.5:8080` (repeatable; `,`-separated in the
    /// environment). Path and query are kept; for mirrors, proxies, on-premises services and
    /// tests. The route opens that origin to flows; the base URL is the operator's, reached at
    /// whatever address it names but only through the route (it need not be on --http-allow, and
    /// flows asking for it directly meet the allow-list). Flows neither set nor see routes.
    #[arg(long = "http-route", env = "SANDFLOW_HTTP_ROUTE", value_delimiter = ',', value_name = "ORIGIN=URL")]
    pub routes: Vec<String>,
    /// A SearXNG-compatible search endpoint (`GET URL?q=…&format=json`) for the Web Search
    /// node; it is the operator's own and need not be on the allow-list.
    #[arg(long = "web-search-url", env = "SANDFLOW_WEB_SEARCH_URL", value_name = "URL")]
    pub web_search_url: Option<String>,
}

impl HttpArgs {
    /// The capability's configuration, or `None` (the capability answers
    /// `not-configured`) when no flag is given.
    pub fn config(&self) -> anyhow::Result<Option<sandflow_runtime_host::HttpConfig>> {
        let allow: Vec<&String> = self.allow.iter().filter(|s| !s.trim().is_empty()).collect();
        let search = self.web_search_url.as_deref().filter(|u| !u.trim().is_empty());
        let routes: Vec<&String> = self.routes.iter().filter(|s| !s.trim().is_empty()).collect();
        if allow.is_empty() && search.is_none() && routes.is_empty() && !self.allow_private && self.max_bytes.is_none()
        {
            return Ok(None);
        }
        let mut config = sandflow_runtime_host::HttpConfig {
            allow: allow.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(anyhow::Error::msg)?,
            allow_private: self.allow_private,
            web_search: search.map(str::parse).transpose().map_err(anyhow::Error::msg)?,
            routes: routes.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(anyhow::Error::msg)?,
            ..sandflow_runtime_host::HttpConfig::default()
        };
        if let Some(max) = self.max_bytes {
            anyhow::ensure!(max > 0, "--http-max-bytes must be more than 0");
            config.max_response_bytes = max;
        }
        tracing::info!(
            allow = ?config.allow,
            private = config.allow_private,
            search = ?config.web_search,
            routes = ?config.routes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "http egress configured"
        );
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        http: HttpArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<Option<sandflow_runtime_host::HttpConfig>> {
        Cli::try_parse_from(std::iter::once("sandflow").chain(args.iter().copied()))?.http.config()
    }

    #[test]
    fn flags_make_the_egress_policy() {
        assert!(config(&[]).expect("no flags").is_none(), "no flag, no capability");
        let http = config(&[
            "--http-allow",
            "example.com",
            "--http-allow",
            "*.example.org:443",
            "--http-max-bytes",
            "1024",
            "--web-search-url",
            "http://127.0.0.1:8888/search",
        ])
        .expect("valid")
        .expect("configured");
        let allowed: Vec<String> = http.allow.iter().map(ToString::to_string).collect();
        assert_eq!(allowed, ["example.com", "*.example.org:443"]);
        assert_eq!(http.max_response_bytes, 1024);
        assert!(!http.allow_private && http.web_search.is_some());
        assert!(config(&["--http-allow-private"]).expect("valid").is_some_and(|h| h.allow_private));
        let routed = config(&[
            "--http-route",
            "http://export.arxiv.org=http://127.0.0.1:8080",
            "--http-route",
            "https://api.assemblyai.com=http://127.0.0.1:8080/aai",
            "--http-allow",
            "127.0.0.1:8080",
        ])
        .expect("valid")
        .expect("configured");
        let routes: Vec<String> = routed.routes.iter().map(ToString::to_string).collect();
        assert_eq!(
            routes,
            ["http://export.arxiv.org=http://127.0.0.1:8080", "https://api.assemblyai.com=http://127.0.0.1:8080/aai"]
        );
    }

    #[test]
    fn bad_flags_say_what_to_write() {
        let error = config(&["--http-allow", "https://example.com/"]).expect_err("a URL is not a host").to_string();
        assert!(error.contains("give the host, not a URL"), "{error}");
        assert!(config(&["--web-search-url", "file:///etc"]).is_err());
        assert!(config(&["--http-max-bytes", "0"]).is_err());
        let error = config(&["--http-route", "http://export.arxiv.org"]).expect_err("no target").to_string();
        assert!(error.contains("ORIGIN=BASE_URL"), "{error}");
        // A route's destination need not be on the allow-list: it is reached
        // through the route only.
        let routed = config(&["--http-route", "http://export.arxiv.org=http://127.0.0.1:8080"]).expect("valid");
        assert!(routed.is_some_and(|h| h.allow.is_empty() && h.routes.len() == 1));
    }
}
