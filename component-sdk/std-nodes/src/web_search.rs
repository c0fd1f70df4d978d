//! Web Search (`UnifiedWebSearch`): Langflow 1.13's three modes, through
//! the host's `http` capability.
//!
//! - `Web`: Langflow scrapes DuckDuckGo's HTML page; Sandflow asks the
//!   search provider the operator configured (`web-search`, a
//!   SearXNG-compatible endpoint), then, as Langflow does, fetches each
//!   result's page and keeps its text (`get_text(" ", strip=True)`),
//!   truncated to `max_content_length`. Pages the egress policy refuses
//!   keep a note of why instead, as Langflow's SSRF refusals do. Rows:
//!   `title`, `link`, `snippet`, `content`.
//! - `News`: Google News' RSS feed for the topic, location or query (the
//!   operator must allow `news.google.com`). Rows: `title`, `link`,
//!   `published`, `summary`.
//! - `RSS`: the feed at the URL in `query`.
//!
//! Failures of the provider or the feed answer one `Error` row, as
//! Langflow's do; an empty query and a host without a provider are errors.

use crate::markup::{self, Element};
use crate::web::{self, truncate};
use sandflow_sdk::host::http;
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Table, Value, as_text, output, port, text_or, value,
};
use serde_json::json;

/// Type name in the library.
pub const NAME: &str = "web-search";

const DEFAULT_MAX_RESULTS: usize = 5;
const DEFAULT_MAX_CONTENT_LENGTH: usize = 2000;
const USER_AGENT: &str = "langflow";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Web Search".into(),
        description: "Search the web, news, or RSS feeds.".into(),
        inputs: vec![
            port("search_mode", &[], false),
            port("query", &["Message"], true),
            port("hl", &[], false),
            port("gl", &[], false),
            port("ceid", &[], false),
            port("topic", &[], false),
            port("location", &[], false),
            port("timeout", &[], false),
            port("max_results", &[], false),
            port("max_content_length", &[], false),
        ],
        outputs: vec![port("results", &["Table"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let rows = match text_or(inv, "search_mode", "Web").as_str() {
        "News" => news(inv),
        "RSS" => rss(inv),
        _ => web_search(inv)?,
    };
    Ok(vec![output("results", Value::Table(Table { rows: rows.iter().map(ToString::to_string).collect() }))])
}

/// Langflow's `_get_limit`: the field as a whole number (text too), its
/// default when missing, empty, negative or fractional; 0 means no limit.
fn limit(inv: &Invocation, name: &str, default: usize) -> Option<usize> {
    let parsed = match value(inv, name) {
        Some(Value::Integer(i)) => Some(*i),
        Some(Value::Number(n)) if n.fract() == 0.0 => Some(*n as i64),
        Some(other @ (Value::Text(_) | Value::Message(_) | Value::Data(_))) => as_text(other).and_then(|t| {
            let t = t.trim();
            t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        }),
        _ => None,
    };
    match parsed {
        Some(0) => None,
        Some(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Some(default),
    }
}

fn timeout(inv: &Invocation) -> f64 {
    sandflow_sdk::number(inv, "timeout").unwrap_or(5.0)
}

fn web_search(inv: &Invocation) -> Result<Vec<serde_json::Value>, NodeError> {
    let query: String = text_or(inv, "query", "").trim().chars().filter(|c| !"<>\"'".contains(*c)).collect();
    if query.is_empty() {
        return Err(NodeError::InvalidInput("Empty search query".into()));
    }
    let max_results = limit(inv, "max_results", DEFAULT_MAX_RESULTS);
    let max_content = limit(inv, "max_content_length", DEFAULT_MAX_CONTENT_LENGTH);
    let asked = max_results.map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let results = match http::web_search(&query, asked) {
        Ok(results) => results,
        Err(CapabilityError::NotConfigured(message)) => return Err(NodeError::Failed(message)),
        Err(error) => {
            return Ok(vec![json!({"title": "Error", "link": "", "snippet": web::describe(&error), "content": ""})]);
        }
    };
    let headers = [("User-Agent".to_owned(), USER_AGENT.to_owned())];
    let mut rows = Vec::new();
    for result in results.into_iter().take(max_results.unwrap_or(usize::MAX)) {
        let link = web::with_scheme(&result.url);
        let (link, content) = if !web::looks_like_url(&link) {
            (result.url.clone(), format!("(Failed to fetch: Invalid URL: {link})"))
        } else {
            match web::get(&link, &headers, Some(timeout(inv))) {
                Ok(page) if (200..300).contains(&page.status) => (link, markup::stripped_text(&web::body_text(&page))),
                Ok(page) => (link, format!("(Failed to fetch: the server answered {})", page.status)),
                Err(error @ CapabilityError::Denied(_)) => {
                    (link, format!("(Blocked by the egress policy: {})", web::describe(&error)))
                }
                Err(error) => (link, format!("(Failed to fetch: {})", web::describe(&error))),
            }
        };
        rows.push(json!({
            "title": result.title.trim(),
            "link": link,
            "snippet": result.snippet.trim(),
            "content": truncate(&content, max_content),
        }));
    }
    Ok(rows)
}

fn feed_error(summary: &str) -> Vec<serde_json::Value> {
    vec![json!({"title": "Error", "link": "", "published": "", "summary": summary})]
}

/// A feed's `item`s, or the error row.
fn fetch_items(url: &str, inv: &Invocation) -> Result<Element, Vec<serde_json::Value>> {
    let response = web::get(url, &[], Some(timeout(inv))).map_err(|e| feed_error(&web::describe(&e)))?;
    if !(200..300).contains(&response.status) {
        return Err(feed_error(&format!("the server answered {} for {url}", response.status)));
    }
    let text = web::body_text(&response);
    if text.trim().is_empty() {
        return Err(feed_error("Empty response received"));
    }
    Ok(markup::xml(&text).unwrap_or_default())
}

fn items(root: &Element) -> Vec<&Element> {
    let mut found = Vec::new();
    if root.name == "item" {
        found.push(root);
    }
    root.descendants_named("item", &mut found);
    found
}

fn field(item: &Element, name: &str) -> String {
    item.child(name, None).map(|e| e.all_text.clone()).unwrap_or_default()
}

fn news(inv: &Invocation) -> Vec<serde_json::Value> {
    let hl = text_or(inv, "hl", "en-US");
    let gl = text_or(inv, "gl", "US");
    let ceid = format!("{gl}:{}", hl.split('-').next().unwrap_or_default());
    let params = format!("hl={hl}&gl={gl}&ceid={ceid}");
    let (topic, location, query) = (text_or(inv, "topic", ""), text_or(inv, "location", ""), text_or(inv, "query", ""));
    let url = if !topic.is_empty() {
        format!(
            "https://news.google.com/rss/headlines/section/topic/{}?{params}",
            web::quote_plus(&topic.to_uppercase())
        )
    } else if !location.is_empty() {
        format!("https://news.google.com/rss/headlines/section/geo/{}?{params}", web::quote_plus(&location))
    } else if !query.is_empty() {
        format!("https://news.google.com/rss/search?q={}&{params}", web::quote_plus(&query))
    } else {
        return feed_error("No search parameters provided");
    };
    let root = match fetch_items(&url, inv) {
        Ok(root) => root,
        Err(rows) => return rows,
    };
    let found = items(&root);
    if found.is_empty() {
        return vec![json!({"title": "No articles found", "link": "", "published": "", "summary": ""})];
    }
    let max_content = limit(inv, "max_content_length", DEFAULT_MAX_CONTENT_LENGTH);
    let clean = |html: &str| markup::stripped_text(html);
    found
        .into_iter()
        .take(limit(inv, "max_results", DEFAULT_MAX_RESULTS).unwrap_or(usize::MAX))
        .map(|item| {
            json!({
                "title": truncate(&clean(&field(item, "title")), max_content),
                "link": truncate(&field(item, "link"), max_content),
                "published": truncate(&field(item, "pubDate"), max_content),
                "summary": truncate(&clean(&field(item, "description")), max_content),
            })
        })
        .collect()
}

fn rss(inv: &Invocation) -> Vec<serde_json::Value> {
    let query = text_or(inv, "query", "");
    if query.is_empty() {
        return feed_error("No RSS URL provided");
    }
    let url = web::with_scheme(&query);
    if !web::looks_like_url(&url) {
        return feed_error(&format!("Invalid URL: {url}"));
    }
    let root = match fetch_items(&url, inv) {
        Ok(root) => root,
        Err(rows) => return rows,
    };
    let max_content = limit(inv, "max_content_length", DEFAULT_MAX_CONTENT_LENGTH);
    items(&root)
        .into_iter()
        .take(limit(inv, "max_results", DEFAULT_MAX_RESULTS).unwrap_or(usize::MAX))
        .map(|item| {
            json!({
                "title": truncate(&field(item, "title"), max_content),
                "link": truncate(&field(item, "link"), max_content),
                "published": truncate(&field(item, "pubDate"), max_content),
                "summary": truncate(&field(item, "description"), max_content),
            })
        })
        .collect()
}
