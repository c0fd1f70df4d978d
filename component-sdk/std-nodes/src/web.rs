//! What the web nodes share: requests through the host's `http`
//! capability, URL handling as Python's `urllib.parse` does it, Langflow's
//! text clean-up and header tables.

use sandflow_sdk::host::http::{self, Request, Response};
use sandflow_sdk::{CapabilityError, Invocation, Value, capability_message, values};

/// A GET of `url` with `headers`, waiting at most `timeout_secs`.
pub fn get(url: &str, headers: &[(String, String)], timeout_secs: Option<f64>) -> Result<Response, CapabilityError> {
    send("GET", url, headers, Vec::new(), timeout_secs)
}

/// One request through the host (which applies the operator's egress
/// policy, follows redirects and caps the body).
pub fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout_secs: Option<f64>,
) -> Result<Response, CapabilityError> {
    let timeout_ms = timeout_secs.filter(|s| *s > 0.0).map(|s| (s * 1000.0).min(f64::from(u32::MAX)) as u32);
    http::fetch(&Request {
        method: method.to_owned(),
        url: url.to_owned(),
        headers: headers.to_vec(),
        body,
        timeout_ms,
    })
}

/// A capability error as the text a node reports.
pub fn describe(error: &CapabilityError) -> String {
    capability_message(error)
}

/// A response header (case-insensitive), if present.
pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The body as text: UTF-8, Latin-1 when the content type says so;
/// undecodable bytes become U+FFFD (`errors="replace"`).
pub fn body_text(response: &Response) -> String {
    let content_type = header(response, "content-type").unwrap_or_default().to_ascii_lowercase();
    if content_type.contains("charset=iso-8859-1") || content_type.contains("charset=latin-1") {
        return response.body.iter().map(|&b| char::from(b)).collect();
    }
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Langflow's `clean_string`: whitespace-only lines emptied, three or more
/// newlines made two (`re.sub(r"^\s*$", "", s, flags=re.M)`, then
/// `re.sub(r"\n{3,}", "\n\n", s)`).
pub fn clean_string(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut last_match_end: Option<usize> = None;
    while at <= chars.len() {
        let line_start = at == 0 || chars[at - 1] == '\n';
        if line_start && last_match_end != Some(at) {
            // `\s*` greedily, then back off until `$` matches (end or before a newline).
            let mut end = at;
            while end < chars.len() && chars[end].is_whitespace() {
                end += 1;
            }
            let found = (at..=end).rev().find(|&e| e == chars.len() || chars[e] == '\n');
            if let Some(e) = found {
                last_match_end = Some(e);
                at = e;
                if at == chars.len() {
                    break;
                }
                continue;
            }
        }
        if at == chars.len() {
            break;
        }
        out.push(chars[at]);
        at += 1;
    }
    let mut collapsed = String::with_capacity(out.len());
    let mut newlines = 0;
    for c in out.chars() {
        if c == '\n' {
            newlines += 1;
            continue;
        }
        collapsed.push_str(if newlines >= 3 { "\n\n" } else { &"\n\n"[..newlines] });
        newlines = 0;
        collapsed.push(c);
    }
    collapsed.push_str(if newlines >= 3 { "\n\n" } else { &"\n\n"[..newlines] });
    collapsed
}

/// Langflow's URL check (`URL_REGEX` of the URL and Web Search
/// components): an optional http(s) scheme, a host of letters, digits, `.`
/// and `-`, an optional port and a path without whitespace.
pub fn looks_like_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or(url);
    let rest = rest.get(..4).filter(|p| p.eq_ignore_ascii_case("www.")).map_or(rest, |_| &rest[4..]);
    let host_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(rest.len());
    if host_end == 0 {
        return false;
    }
    let mut tail = &rest[host_end..];
    if let Some(port) = tail.strip_prefix(':') {
        let digits = port.find(|c: char| !c.is_ascii_digit()).unwrap_or(port.len());
        if digits == 0 {
            return false;
        }
        tail = &port[digits..];
    }
    tail.is_empty() || (tail.starts_with('/') && !tail.chars().any(char::is_whitespace))
}

/// `https://` prepended when the URL names no http(s) scheme.
pub fn with_scheme(url: &str) -> String {
    let url = url.trim();
    if url.starts_with("http://") || url.starts_with("https://") { url.to_owned() } else { format!("https://{url}") }
}

/// `scheme://netloc` and the path of an absolute URL.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..netloc_end], &rest[netloc_end..]))
}

/// The network location (`host[:port]`) of a URL, as `urlparse(u).netloc`.
pub fn netloc(url: &str) -> &str {
    split(url).map_or("", |(_, n, _)| n)
}

/// `urljoin(base, href)` for the links a crawler follows.
pub fn join(base: &str, href: &str) -> String {
    let href = href.trim();
    if href.contains("://")
        && href.split("://").next().is_some_and(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    {
        return href.to_owned();
    }
    let Some((scheme, netloc, path)) = split(base) else { return href.to_owned() };
    if let Some(rest) = href.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if href.is_empty() {
        return base.to_owned();
    }
    let path_only = path.split(['?', '#']).next().unwrap_or("");
    if href.starts_with('#') {
        return format!("{scheme}://{netloc}{}{href}", path.split('#').next().unwrap_or(""));
    }
    if href.starts_with('?') {
        return format!("{scheme}://{netloc}{path_only}{href}");
    }
    let (href_path, suffix) = href.find(['?', '#']).map_or((href, ""), |i| (&href[..i], &href[i..]));
    let merged = if href_path.starts_with('/') {
        href_path.to_owned()
    } else {
        let dir = path_only.rfind('/').map_or("/", |i| &path_only[..=i]);
        format!("{}{href_path}", if dir.is_empty() { "/" } else { dir })
    };
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = merged.split('/').collect();
    for (i, segment) in parts.iter().enumerate() {
        match *segment {
            "." => {
                if i == parts.len() - 1 {
                    segments.push("");
                }
            }
            ".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
                if i == parts.len() - 1 {
                    segments.push("");
                }
            }
            s => segments.push(s),
        }
    }
    format!("{scheme}://{netloc}{}{suffix}", segments.join("/"))
}

/// `urllib.parse.quote(text)` (`/` kept, everything else outside
/// `A-Za-z0-9_.-~` percent-encoded).
pub fn quote(text: &str) -> String {
    encode(text, b"/", false)
}

/// `urllib.parse.quote_plus(text)` (spaces as `+`).
pub fn quote_plus(text: &str) -> String {
    encode(text, b"", true)
}

fn encode(text: &str, safe: &[u8], plus: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            b' ' if plus => out.push('+'),
            b if safe.contains(&b) => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Langflow's table of headers (`[{"key": …, "value": …}]`, from the
/// node's field or an edge) as pairs; rows without a value are left out.
pub fn header_table(inv: &Invocation, field: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for value in values(inv, field) {
        let json = match value {
            Value::Json(text) | Value::Text(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
            Value::Data(d) => serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null),
            Value::Table(t) => {
                serde_json::Value::Array(t.rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
            }
            _ => serde_json::Value::Null,
        };
        collect_pairs(&json, &mut pairs);
    }
    pairs
}

fn collect_pairs(json: &serde_json::Value, pairs: &mut Vec<(String, String)>) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    match json {
        serde_json::Value::Array(rows) => {
            for row in rows {
                if let (Some(key), Some(value)) = (row.get("key").and_then(text), row.get("value").and_then(text)) {
                    pairs.push((key, value));
                }
            }
        }
        serde_json::Value::Object(object) if !object.contains_key("key") => {
            pairs.extend(object.iter().filter_map(|(k, v)| text(v).map(|v| (k.clone(), v))));
        }
        serde_json::Value::Object(_) => collect_pairs(&serde_json::Value::Array(vec![json.clone()]), pairs),
        _ => {}
    }
}

/// Langflow's `_truncate_content`: at most `limit` characters, the cut
/// marked with `... [truncated]` (or `…` when the limit is shorter than
/// that); `None` keeps everything.
pub fn truncate(content: &str, limit: Option<usize>) -> String {
    const SUFFIX: &str = "... [truncated]";
    let length = content.chars().count();
    let Some(limit) = limit.filter(|l| length > *l) else { return content.to_owned() };
    let suffix_len = SUFFIX.chars().count();
    let head = |n: usize| content.chars().take(n).collect::<String>();
    if limit < suffix_len {
        // Python slices a negative end from the right: content[:limit - 1].
        return format!("{}…", head(limit.saturating_sub(1)));
    }
    if limit == suffix_len {
        return SUFFIX.to_owned();
    }
    format!("{}{SUFFIX}", head(limit - suffix_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_string_matches_python() {
        // Expected values printed by Python's re with Langflow's two patterns.
        assert_eq!(
            clean_string("\n\nT & U\n\n\n\n\n\nHello\nWorld\n\n\none\ntwo\n\n\n"),
            "\nT & U\n\nHello\nWorld\n\none\ntwo\n"
        );
        assert_eq!(clean_string("a\n  \n\nb"), "a\n\nb");
        assert_eq!(clean_string("  lead\n\t\nx  \n"), "  lead\n\nx  \n");
        assert_eq!(clean_string("\nx\ny"), "\nx\ny");
        assert_eq!(clean_string(""), "");
    }

    #[test]
    fn checks_urls_as_langflow_does() {
        assert!(looks_like_url("https://docs.langflow.org/"));
        assert!(looks_like_url("http://127.0.0.1:8080/a?b=c"));
        assert!(looks_like_url("https://example.com"));
        assert!(!looks_like_url("https://file:///etc/passwd"));
        assert!(!looks_like_url("https://exa mple.com"));
        assert!(!looks_like_url("https://user@host/"));
        assert_eq!(with_scheme(" example.com "), "https://example.com");
    }

    #[test]
    fn joins_like_urljoin() {
        let base = "http://h:1/a/b/c.html?q=1";
        assert_eq!(join(base, "d.html"), "http://h:1/a/b/d.html");
        assert_eq!(join(base, "../x"), "http://h:1/a/x");
        assert_eq!(join(base, "/root"), "http://h:1/root");
        assert_eq!(join(base, "//other/p"), "http://other/p");
        assert_eq!(join(base, "https://e.com/"), "https://e.com/");
        assert_eq!(join(base, "#frag"), "http://h:1/a/b/c.html?q=1#frag");
        assert_eq!(join("http://h", "a"), "http://h/a");
        assert_eq!(netloc(base), "h:1");
    }

    #[test]
    fn quotes_and_truncates_like_python() {
        assert_eq!(quote("all:quantum computing/x"), "all%3Aquantum%20computing/x");
        assert_eq!(quote_plus("a b&c"), "a+b%26c");
        assert_eq!(truncate("abcdefghijklmnopqrstuvwxyz", Some(20)), "abcde... [truncated]");
        assert_eq!(truncate("abcdefghijklmnopqrstuvwxyz", Some(5)), "abcd…");
        assert_eq!(truncate("short", Some(20)), "short");
        assert_eq!(truncate("abcdefghijklmnopqrstuvwxyz", None).len(), 26);
    }
}
