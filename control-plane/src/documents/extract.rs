//! Text out of an uploaded document: PDF (lopdf, page by page), HTML (tags
//! dropped, block elements as line breaks, `script` and `style` skipped,
//! entities decoded), Markdown and plain text as they are (UTF-8).
//!
//! Documents are untrusted: a PDF that does not parse, or a parser that
//! panics on it, is an [`ExtractError`] the document shows, never a crash
//! (the caller runs this on a blocking thread and catches panics).

use std::fmt;

/// The kinds of documents accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `application/pdf`.
    Pdf,
    /// `text/markdown`.
    Markdown,
    /// `text/plain`.
    Text,
    /// `text/html`.
    Html,
}

impl Kind {
    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Html => "html",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pdf, Self::Markdown, Self::Text, Self::Html].into_iter().find(|k| k.as_str() == name)
    }

    /// The kind an upload is, from its content type, else (for a missing
    /// or generic one) its file name's extension.
    pub fn detect(content_type: Option<&str>, filename: &str) -> Option<Self> {
        let essence = content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let by_type = match essence.as_deref() {
            Some("application/pdf") => Some(Self::Pdf),
            Some("text/markdown" | "text/x-markdown") => Some(Self::Markdown),
            Some("text/plain") => Some(Self::Text),
            Some("text/html" | "application/xhtml+xml") => Some(Self::Html),
            Some("" | "application/octet-stream") | None => None,
            Some(_) => return None,
        };
        by_type.or_else(|| {
            let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
            match extension.as_str() {
                "pdf" => Some(Self::Pdf),
                "md" | "markdown" => Some(Self::Markdown),
                "txt" | "text" => Some(Self::Text),
                "html" | "htm" => Some(Self::Html),
                _ => None,
            }
        })
    }

    /// The content type stored for this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
            Self::Html => "text/html",
        }
    }
}

/// Why a document's text could not be extracted (shown on the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractError(pub String);

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text of `bytes` of `kind`.
pub fn extract(kind: Kind, bytes: &[u8]) -> Result<String, ExtractError> {
    let text = match kind {
        Kind::Pdf => pdf(bytes)?,
        Kind::Html => html(utf8(bytes)?),
        Kind::Markdown | Kind::Text => utf8(bytes)?.replace("\r\n", "\n"),
    };
    let text = text.replace('\0', "");
    if text.trim().is_empty() {
        return Err(ExtractError(match kind {
            Kind::Pdf => "the PDF has no extractable text (scanned pages are images: run OCR first)".into(),
            _ => "the document has no text".into(),
        }));
    }
    Ok(text)
}

fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        ExtractError(format!(
            "the document is not UTF-8 text (invalid byte at offset {}): save it as UTF-8",
            e.valid_up_to()
        ))
    })
}

fn pdf(bytes: &[u8]) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"%PDF-") && !bytes.get(..1024).is_some_and(|head| head.windows(5).any(|w| w == b"%PDF-")) {
        return Err(ExtractError("the file is not a PDF (no %PDF- header)".into()));
    }
    let document =
        lopdf::Document::load_mem(bytes).map_err(|e| ExtractError(format!("the PDF could not be read: {e}")))?;
    if document.is_encrypted() {
        return Err(ExtractError("the PDF is encrypted: upload it without a password".into()));
    }
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Err(ExtractError("the PDF has no pages".into()));
    }
    let mut text = String::new();
    for page in pages {
        let page_text = document
            .extract_text(&[page])
            .map_err(|e| ExtractError(format!("the text of PDF page {page} could not be read: {e}")))?;
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(page_text.trim_end());
    }
    Ok(text)
}

/// HTML as text: tags dropped (block elements become line breaks,
/// paragraphs and headings blank lines), `script`, `style`, `head` and
/// comments skipped, entities decoded, runs of spaces collapsed.
pub fn html(source: &str) -> String {
    const BLOCK: &[&str] = &["br", "div", "li", "tr", "ul", "ol", "table", "section", "article", "header", "footer"];
    const PARAGRAPH: &[&str] = &["p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "title"];
    let mut out = String::with_capacity(source.len() / 2);
    let mut rest = source;
    let mut skip_until: Option<&str> = None;
    while !rest.is_empty() {
        if let Some(end) = skip_until {
            match find_ci(rest, end) {
                Some(i) => {
                    rest = &rest[i..];
                    skip_until = None;
                }
                None => break,
            }
            continue;
        }
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |i| &comment[i + 3..]);
            continue;
        }
        let Some(open) = rest.find('<') else {
            out.push_str(&decode_entities(rest));
            break;
        };
        out.push_str(&decode_entities(&rest[..open]));
        rest = &rest[open..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && matches!(name.as_str(), "script" | "style" | "head" | "noscript" | "template") {
            skip_until = Some(match name.as_str() {
                "script" => "</script",
                "style" => "</style",
                "head" => "</head",
                "noscript" => "</noscript",
                _ => "</template",
            });
            continue;
        }
        if PARAGRAPH.contains(&name.as_str()) {
            out.push_str("\n\n");
        } else if BLOCK.contains(&name.as_str()) {
            out.push('\n');
        } else if matches!(name.as_str(), "td" | "th") {
            out.push(' ');
        }
    }
    tidy(&out)
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    let lower = haystack.to_ascii_lowercase();
    lower.find(needle)
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(|c: char| c == ';' || c.is_whitespace() || c == '&').map(|i| i + 1);
        let decoded = end.filter(|&e| rest[e..].starts_with(';')).and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Collapses spaces within lines and keeps at most one blank line.
fn tidy(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().is_none_or(String::is_empty) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_type_or_the_name() {
        assert_eq!(Kind::detect(Some("application/pdf"), "x"), Some(Kind::Pdf));
        assert_eq!(Kind::detect(Some("text/plain; charset=utf-8"), "notes"), Some(Kind::Text));
        assert_eq!(Kind::detect(Some("application/octet-stream"), "guide.MD"), Some(Kind::Markdown));
        assert_eq!(Kind::detect(None, "page.htm"), Some(Kind::Html));
        assert_eq!(Kind::detect(Some("image/png"), "x.pdf"), None);
        assert_eq!(Kind::detect(None, "archive.zip"), None);
    }

    #[test]
    fn html_becomes_readable_text() {
        let page = "<html><head><title>T</title><style>p{}</style></head><body><h1>Refunds</h1>\
                    <p>Within&nbsp;30 days &amp; <b>no</b> questions.</p><script>alert('x')</script>\
                    <!-- hidden --><ul><li>One</li><li>Two &#x263A; &#9731;</li></ul>&bogus; a&b</body></html>";
        assert_eq!(html(page), "Refunds\n\nWithin 30 days & no questions.\n\nOne\n\nTwo ☺ ☃\n\n&bogus; a&b");
    }

    #[test]
    fn text_must_be_utf8_and_not_empty() {
        assert_eq!(extract(Kind::Text, b"\xEF\xBB\xBFhello\r\nworld").expect("text"), "hello\nworld");
        assert!(extract(Kind::Markdown, b"\xff\xfe").expect_err("not utf-8").0.contains("UTF-8"));
        assert!(extract(Kind::Text, b"  \n ").is_err());
    }

    #[test]
    fn broken_pdfs_are_errors() {
        assert!(extract(Kind::Pdf, b"hello").expect_err("no header").0.contains("not a PDF"));
        let error = extract(Kind::Pdf, b"%PDF-1.4\n1 0 obj garbage endobj\ntrailer <<>>\n%%EOF").expect_err("corrupt");
        assert!(error.0.contains("PDF"), "{error}");
    }
}
