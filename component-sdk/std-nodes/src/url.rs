//! URL (`URLComponent`): fetches pages and follows their links up to
//! `max_depth`, as Langflow 1.13's component does, through the host's
//! `http` capability (the operator's allow-list decides what is reachable;
//! the host follows redirects, checking each hop, and caps each body).
//!
//! Each URL gets `https://` when it names no scheme and must look like a
//! URL (Langflow's pattern). `format` `Text` gives BeautifulSoup's
//! `get_text()` of the page (see [`crate::markup`]), `HTML` the page as
//! is; `Markdown` approximates MarkItDown's conversion (see
//! [`markup::markdown`]). Rows of
//! `page_results` carry `text` (cleaned as Langflow's `safe_convert`
//! does), `url`, `title`, `description`, `content_type` and `language`;
//! `raw_results` is the texts joined by blank lines.
//!
//! With `continue_on_failure` (the default) a URL that is refused or
//! fails is skipped; when nothing loads, the error names the first refusal
//! (as Langflow surfaces its SSRF refusals) or the last failure.
//! Departure: `url` is the URL asked for, not the one a redirect ended at.

use crate::markup;
use crate::web::{self, clean_string, header_table};
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, Level, NodeError, Output, Table, Value, as_text, flag, log, message,
    number, output, port, text_or, values,
};
use serde_json::json;
use std::collections::HashSet;

/// Type name in the library.
pub const NAME: &str = "url";

/// Describes the node.
pub fn describe() -> Descriptor {
    let mut urls = port("urls", &["Message"], false);
    urls.is_list = true;
    Descriptor {
        type_name: NAME.into(),
        display_name: "URL".into(),
        description: "Fetch content from one or more web pages, following links recursively.".into(),
        inputs: vec![
            urls,
            port("max_depth", &[], false),
            port("prevent_outside", &[], false),
            port("format", &[], false),
            port("timeout", &[], false),
            port("headers", &["DataFrame", "Table"], false),
            port("filter_text_html", &[], false),
            port("continue_on_failure", &[], false),
            port("check_response_status", &[], false),
        ],
        outputs: vec![port("page_results", &["Table"], false), port("raw_results", &["Message"], false)],
    }
}

/// How one fetch is done.
struct Crawl {
    max_depth: usize,
    prevent_outside: bool,
    format: String,
    timeout: f64,
    headers: Vec<(String, String)>,
    filter_text_html: bool,
    continue_on_failure: bool,
    check_response_status: bool,
    /// The first URL the host refused, with why.
    refused: Option<String>,
    /// The last failure, for the error when nothing loads.
    failed: Option<String>,
}

/// One loaded page.
struct Document {
    content: String,
    url: String,
    page: markup::Page,
    content_type: String,
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let documents = fetch_url_contents(inv).map_err(|e| NodeError::Failed(format!("Error loading documents: {e}")))?;
    let rows: Vec<serde_json::Value> = documents
        .iter()
        .map(|d| {
            json!({
                "text": clean_string(&d.content),
                "url": d.url,
                "title": d.page.title,
                "description": d.page.description,
                "content_type": d.content_type,
                "language": d.page.language,
            })
        })
        .collect();
    let joined = rows.iter().filter_map(|r| r["text"].as_str()).collect::<Vec<_>>().join("\n\n");
    let raw = message(joined, "", "", &inv.session_id);
    Ok(vec![
        output("page_results", Value::Table(Table { rows: rows.iter().map(ToString::to_string).collect() })),
        output("raw_results", Value::Message(raw)),
    ])
}

fn urls(inv: &Invocation) -> Vec<String> {
    let mut urls = Vec::new();
    for value in values(inv, "urls") {
        match value {
            // A list written as JSON (a tool argument given as one string).
            Value::Json(text) => {
                if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) {
                    urls.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)));
                }
            }
            other => urls.extend(as_text(other)),
        }
    }
    urls
}

fn fetch_url_contents(inv: &Invocation) -> Result<Vec<Document>, String> {
    let mut crawl = Crawl {
        max_depth: number(inv, "max_depth").map_or(1, |d| d.clamp(1.0, 5.0) as usize),
        prevent_outside: flag(inv, "prevent_outside", true),
        format: text_or(inv, "format", "Text"),
        timeout: number(inv, "timeout").unwrap_or(30.0),
        headers: header_table(inv, "headers"),
        filter_text_html: flag(inv, "filter_text_html", true),
        continue_on_failure: flag(inv, "continue_on_failure", true),
        check_response_status: flag(inv, "check_response_status", false),
        refused: None,
        failed: None,
    };
    let mut first_invalid: Option<String> = None;
    let mut valid: Vec<String> = Vec::new();
    for url in urls(inv) {
        if url.trim().is_empty() {
            continue;
        }
        let normalized = web::with_scheme(&url);
        if !web::looks_like_url(&normalized) {
            let error = format!("Invalid URL: {normalized}");
            if !crawl.continue_on_failure {
                return Err(error);
            }
            log(Level::Warn, &format!("Skipping invalid URL {url}: {error}"));
            first_invalid.get_or_insert(error);
            continue;
        }
        if !valid.contains(&normalized) {
            valid.push(normalized);
        }
    }
    if valid.is_empty() {
        return Err(first_invalid.unwrap_or_else(|| "No valid URLs provided.".into()));
    }
    let mut documents = Vec::new();
    for url in &valid {
        let mut visited = HashSet::new();
        let found = crawl.recurse(url, &mut visited, 0)?;
        if found.is_empty() {
            log(Level::Warn, &format!("No documents found for {url}"));
        }
        documents.extend(found);
    }
    if documents.is_empty() {
        return Err(match (crawl.refused, crawl.failed, first_invalid) {
            (Some(refused), _, _) => refused,
            (None, _, Some(invalid)) => invalid,
            (None, Some(failed), None) => format!("No documents were successfully loaded from any URL ({failed})"),
            (None, None, None) => "No documents were successfully loaded from any URL".into(),
        });
    }
    Ok(documents)
}

impl Crawl {
    fn recurse(&mut self, url: &str, visited: &mut HashSet<String>, depth: usize) -> Result<Vec<Document>, String> {
        if depth >= self.max_depth || visited.contains(url) {
            return Ok(Vec::new());
        }
        visited.insert(url.to_owned());
        let Some((html, content_type)) = self.fetch(url)? else { return Ok(Vec::new()) };
        if html.is_empty() {
            return Ok(Vec::new());
        }
        let page = markup::page(&html);
        let content = match self.format.as_str() {
            "HTML" => html.clone(),
            "Markdown" => markup::markdown(&html),
            _ => page.text.clone(),
        };
        let links = page.links.clone();
        let mut documents = vec![Document { content, url: url.to_owned(), page, content_type }];
        if depth + 1 < self.max_depth {
            for href in links {
                let absolute = web::join(url, &href);
                if visited.contains(&absolute) || !absolute.starts_with("http") {
                    continue;
                }
                if self.prevent_outside && web::netloc(url) != web::netloc(&absolute) {
                    continue;
                }
                documents.extend(self.recurse(&absolute, visited, depth + 1)?);
            }
        }
        Ok(documents)
    }

    /// The page's body and content type; `None` when it is skipped.
    fn fetch(&mut self, url: &str) -> Result<Option<(String, String)>, String> {
        let response = match web::get(url, &self.headers, Some(self.timeout)) {
            Ok(response) => response,
            Err(error) => {
                let text = web::describe(&error);
                let refused = matches!(error, CapabilityError::Denied(_) | CapabilityError::NotConfigured(_));
                if !self.continue_on_failure {
                    return Err(format!("Error loading documents from {url}: {text}"));
                }
                log(Level::Warn, &format!("Failed to fetch {url}: {text}"));
                if refused {
                    self.refused.get_or_insert(text);
                } else {
                    self.failed = Some(format!("{url}: {text}"));
                }
                return Ok(None);
            }
        };
        if self.check_response_status && response.status >= 400 {
            let text = format!("the server answered {} for {url}", response.status);
            if !self.continue_on_failure {
                return Err(format!("Error loading documents from {url}: {text}"));
            }
            self.failed = Some(text);
            return Ok(None);
        }
        let content_type = web::header(&response, "content-type").unwrap_or_default().to_ascii_lowercase();
        if self.filter_text_html && content_type.contains("text/css") {
            return Ok(None);
        }
        Ok(Some((web::body_text(&response), content_type)))
    }
}
