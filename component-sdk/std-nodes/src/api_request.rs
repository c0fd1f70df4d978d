//! API Request (`APIRequest`): one HTTP request as Langflow 1.13's
//! component makes it, through the host's `http` capability.
//!
//! The URL gets `https://` when it names no scheme and the query
//! parameters (Data or `a=1&b=2` text) are merged into it; headers and the
//! body come from their tables (or Data, or JSON text); POST, PATCH, PUT
//! and DELETE send the body as JSON. The answer is a Data with `source`,
//! `status_code`, `response_headers` (lower-case names) and `result` (the
//! body as JSON when it parses, else as text), plus the request's
//! `headers` with `include_httpx_metadata`. A request that fails answers
//! Langflow's `status_code` 500 Data with its `error`; one the egress
//! policy refuses is a node error, as Langflow's SSRF refusals are.
//!
//! Departures: the host follows redirects (at most 5, each checked
//! against the allow-list) whatever `follow_redirects` says, so no
//! `redirection_history` is reported; `save_to_file` is not offered (a
//! sandbox has no files) and is ignored with a log line; the cURL mode's
//! fields are filled by Langflow's editor, so at run time both modes send
//! the fields.

use crate::web;
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, Level, NodeError, Output, Value, data, flag, log, number, output, port,
    text_or, value,
};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "api-request";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "API Request".into(),
        description: "Make HTTP requests using URL or cURL commands.".into(),
        inputs: vec![
            port("url_input", &["Message"], false),
            port("method", &[], false),
            port("query_params", &["Data"], false),
            port("body", &["Data", "JSON"], false),
            port("headers", &["Data", "JSON"], false),
            port("timeout", &[], false),
            port("follow_redirects", &[], false),
            port("save_to_file", &[], false),
            port("include_httpx_metadata", &[], false),
        ],
        outputs: vec![port("data", &["Data"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let url = text_or(inv, "url_input", "");
    let url = url.trim();
    if url.is_empty() {
        return Err(NodeError::InvalidInput("URL cannot be empty".into()));
    }
    let url = web::with_scheme(url);
    if !web::looks_like_url(&url) {
        return Err(NodeError::InvalidInput(format!("Invalid URL provided: {url}")));
    }
    let method = text_or(inv, "method", "GET").to_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PATCH" | "PUT" | "DELETE") {
        return Err(NodeError::InvalidInput(format!("Unsupported method: {method}")));
    }
    if flag(inv, "save_to_file", false) {
        log(Level::Warn, "API Request: `Save to File` is not available in a sandbox; the response is returned instead");
    }
    let url = add_query_params(&url, &query_params(inv));
    let headers = web::header_table(inv, "headers");
    let header_object: Map<String, Json> = headers.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
    let mut send_headers = headers.clone();
    let body = if method == "GET" {
        Vec::new()
    } else {
        if !send_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            send_headers.push(("Content-Type".into(), "application/json".into()));
        }
        Json::Object(process_body(value(inv, "body"))).to_string().into_bytes()
    };
    let timeout = number(inv, "timeout").unwrap_or(30.0);
    let mut result = match web::send(&method, &url, &send_headers, body, Some(timeout)) {
        Ok(response) => {
            let response_headers: Map<String, Json> =
                response.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Json::String(v.clone()))).collect();
            let text = web::body_text(&response);
            let result = serde_json::from_str::<Json>(&text).unwrap_or(Json::String(text));
            json!({
                "source": url,
                "status_code": response.status,
                "response_headers": response_headers,
                "result": result,
            })
        }
        Err(error @ (CapabilityError::Denied(_) | CapabilityError::NotConfigured(_) | CapabilityError::Invalid(_))) => {
            return Err(NodeError::Failed(web::describe(&error)));
        }
        Err(error) => json!({
            "source": url,
            "headers": header_object,
            "status_code": 500,
            "error": web::describe(&error),
        }),
    };
    if flag(inv, "include_httpx_metadata", false)
        && let Some(object) = result.as_object_mut()
    {
        object.insert("headers".into(), Json::Object(header_object));
    }
    Ok(vec![output("data", data(&result, "text"))])
}

/// The query parameters: a Data's object, or `a=1&b=2` text.
fn query_params(inv: &Invocation) -> Vec<(String, String)> {
    match value(inv, "query_params") {
        Some(Value::Data(d)) => match serde_json::from_str::<Json>(&d.data) {
            Ok(Json::Object(object)) => {
                object.into_iter().map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
            }
            _ => Vec::new(),
        },
        Some(Value::Text(text) | Value::Json(text)) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(object)) => {
                object.into_iter().map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
            }
            _ => parse_qsl(text),
        },
        Some(Value::Message(m)) => parse_qsl(&m.text),
        _ => Vec::new(),
    }
}

fn parse_qsl(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (!v.is_empty()).then(|| (unquote_plus(k), unquote_plus(v)))
        })
        .collect()
}

fn unquote_plus(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) =
                bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Langflow's `add_query_params`: the URL's own parameters, updated by
/// `params`, re-encoded.
pub fn add_query_params(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let (rest, fragment) = url.split_once('#').map_or((url, None), |(r, f)| (r, Some(f)));
    let (base, query) = rest.split_once('?').map_or((rest, ""), |(b, q)| (b, q));
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in parse_qsl(query).into_iter().chain(params.iter().cloned()) {
        match merged.iter_mut().find(|(key, _)| *key == k) {
            Some(existing) => existing.1 = v,
            None => merged.push((k, v)),
        }
    }
    let encoded: Vec<String> =
        merged.iter().map(|(k, v)| format!("{}={}", web::quote_plus(k), web::quote_plus(v))).collect();
    let mut out = format!("{base}?{}", encoded.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Langflow's `_process_body`: an object, key/value rows, JSON text, or
/// `{"data": text}`.
fn process_body(body: Option<&Value>) -> Map<String, Json> {
    let json = match body {
        None | Some(Value::None) => return Map::new(),
        Some(Value::Data(d)) => serde_json::from_str(&d.data).unwrap_or(Json::Null),
        Some(Value::Text(t) | Value::Json(t)) => match serde_json::from_str(t) {
            Ok(json) => json,
            Err(_) => return Map::from_iter([("data".to_owned(), Json::String(t.clone()))]),
        },
        Some(Value::Message(m)) => match serde_json::from_str(&m.text) {
            Ok(json) => json,
            Err(_) => return Map::from_iter([("data".to_owned(), Json::String(m.text.clone()))]),
        },
        Some(Value::Table(t)) => Json::Array(t.rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect()),
        Some(_) => return Map::new(),
    };
    let parse = |v: &Json| match v {
        Json::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    };
    match json {
        Json::Object(object) => object.iter().map(|(k, v)| (k.clone(), parse(v))).collect(),
        Json::Array(rows) => rows
            .iter()
            .filter_map(|row| {
                let key = row.get("key")?.as_str()?.to_owned();
                Some((key, parse(row.get("value")?)))
            })
            .collect(),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_query_parameters_like_urlencode() {
        let params = vec![("q".to_owned(), "a b".to_owned()), ("page".to_owned(), "2".to_owned())];
        assert_eq!(add_query_params("https://x/s?page=1&k=v#top", &params), "https://x/s?page=2&k=v&q=a+b#top");
        assert_eq!(add_query_params("https://x/s", &[]), "https://x/s");
        assert_eq!(parse_qsl("a=1&b=%2F&c="), vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "/".to_owned())]);
    }

    #[test]
    fn bodies_become_objects() {
        let rows = Value::Json(r#"[{"key": "n", "value": "2"}, {"key": "s", "value": "x"}]"#.into());
        assert_eq!(Json::Object(process_body(Some(&rows))), json!({"n": 2, "s": "x"}));
        assert_eq!(Json::Object(process_body(Some(&Value::Text("plain".into())))), json!({"data": "plain"}));
        assert_eq!(Json::Object(process_body(None)), json!({}));
    }
}
