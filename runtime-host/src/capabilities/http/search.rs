//! Web search through the operator's provider: a SearXNG-compatible JSON
//! endpoint (`GET {url}?q=…&format=json` answering
//! `{"results": [{"title", "url", "content"}, …]}`).

use crate::bindings::node::sandflow::host::http::SearchResult;
use crate::bindings::node::sandflow::host::types::CapabilityError;
use std::fmt;
use std::str::FromStr;

/// Most results one search returns, whatever the guest asks for.
pub const MAX_RESULTS: u32 = 50;

/// The operator's search endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSearchProvider {
    url: reqwest::Url,
}

impl FromStr for WebSearchProvider {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let url = reqwest::Url::parse(spec.trim()).map_err(|e| format!("`{spec}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{spec}`: the web search URL must be http:// or https:// with a host"));
        }
        Ok(Self { url })
    }
}

impl fmt::Debug for WebSearchProvider {
    // The URL may carry a key in its query: show only where it points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSearchProvider").field("url", &super::policy::redacted(&self.url)).finish()
    }
}

impl WebSearchProvider {
    /// The request URL for `query`.
    pub(crate) fn request_url(&self, query: &str) -> String {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("q", query).append_pair("format", "json");
        url.to_string()
    }
}

/// The results of a provider's JSON answer, at most `max` of them.
pub(crate) fn parse(body: &[u8], max: u32) -> Result<Vec<SearchResult>, CapabilityError> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        CapabilityError::Failed(format!("the web search provider answered something other than JSON: {e}"))
    })?;
    let results = json
        .get("results")
        .and_then(|r| r.as_array())
        .ok_or_else(|| CapabilityError::Failed("the web search provider's answer has no `results` list".to_owned()))?;
    let text =
        |value: &serde_json::Value, key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    Ok(results
        .iter()
        .filter(|r| r.is_object())
        .take(max.clamp(1, MAX_RESULTS) as usize)
        .map(|r| SearchResult { title: text(r, "title"), url: text(r, "url"), snippet: text(r, "content") })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_searxng_request() {
        let provider: WebSearchProvider = "http://127.0.0.1:8888/search".parse().expect("valid");
        assert_eq!(provider.request_url("rust & wasm"), "http://127.0.0.1:8888/search?q=rust+%26+wasm&format=json");
        assert!("file:///x".parse::<WebSearchProvider>().is_err());
        let keyed: WebSearchProvider = "https://search.example/s?key=secret".parse().expect("valid");
        assert!(!format!("{keyed:?}").contains("secret"));
    }

    #[test]
    fn parses_results() {
        let body = br#"{"results": [{"title": "A", "url": "http://a/", "content": "about a"}, 7, {"title": "B"}]}"#;
        let results = parse(body, 10).expect("parses");
        assert_eq!(results.len(), 2);
        assert_eq!((results[0].title.as_str(), results[0].snippet.as_str()), ("A", "about a"));
        assert_eq!(parse(body, 1).expect("parses").len(), 1);
        assert!(parse(b"<html>", 5).is_err());
    }
}
