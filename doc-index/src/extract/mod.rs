//! Text out of an uploaded document, shared by the control plane (training
//! documents) and the runtime host (the File node, through the `files`
//! capability): PDF (lopdf, page by page), DOCX (the paragraphs of
//! `word/document.xml`), HTML (tags dropped, block elements as line breaks,
//! `script` and `style` skipped, entities decoded), Markdown and plain text
//! as they are (UTF-8).
//!
//! PDF pages and DOCX paragraphs are joined by a blank line, as Langflow
//! 1.13's File component joins pypdf's pages and python-docx's paragraphs.
//!
//! Documents are untrusted. Everything that expands is bounded by
//! [`Limits`]: the pages read, the bytes one PDF stream or one DOCX part
//! may decompress to (a "decompression bomb" is a small file that inflates
//! to gigabytes), the text kept and the time spent between pages and
//! paragraphs. A document over a limit, or one that does not parse, is an
//! [`ExtractError`] that says what is wrong, never a crash; callers run
//! this on a blocking thread and also catch panics, since the parsers are
//! third-party code.
//!
//! ```
//! use sandflow_doc_index::extract::{Kind, extract};
//! assert_eq!(extract(Kind::Markdown, b"# Refunds\r\nWithin 30 days.").unwrap(), "# Refunds\nWithin 30 days.");
//! assert!(extract(Kind::Pdf, b"not a pdf").unwrap_err().to_string().contains("not a PDF"));
//! ```

mod docx;
mod html;
mod pdf;

pub use html::html;

use std::fmt;
use std::time::{Duration, Instant};

/// The kinds of documents accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `application/pdf`.
    Pdf,
    /// Word's `application/vnd.openxmlformats-officedocument.wordprocessingml.document`.
    Docx,
    /// `text/markdown`.
    Markdown,
    /// `text/plain`.
    Text,
    /// `text/html`.
    Html,
}

/// DOCX's content type.
pub const DOCX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

impl Kind {
    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Html => "html",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pdf, Self::Docx, Self::Markdown, Self::Text, Self::Html].into_iter().find(|k| k.as_str() == name)
    }

    /// The kind an upload is, from its content type, else (for a missing
    /// or generic one) its file name's extension.
    pub fn detect(content_type: Option<&str>, filename: &str) -> Option<Self> {
        let essence = content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let by_type = match essence.as_deref() {
            Some("application/pdf") => Some(Self::Pdf),
            Some(DOCX_CONTENT_TYPE) => Some(Self::Docx),
            Some("text/markdown" | "text/x-markdown") => Some(Self::Markdown),
            Some("text/plain") => Some(Self::Text),
            Some("text/html" | "application/xhtml+xml") => Some(Self::Html),
            Some("" | "application/octet-stream" | "application/zip") | None => None,
            Some(_) => return None,
        };
        by_type.or_else(|| Self::from_extension(filename))
    }

    /// The kind a file name's extension says, if any.
    pub fn from_extension(filename: &str) -> Option<Self> {
        let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
        match extension.as_str() {
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            "md" | "markdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            "html" | "htm" => Some(Self::Html),
            _ => None,
        }
    }

    /// The content type stored for this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => DOCX_CONTENT_TYPE,
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
            Self::Html => "text/html",
        }
    }

    /// Whether the kind is a binary format (not read as UTF-8 text).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::Pdf | Self::Docx)
    }
}

/// Why a document's text could not be extracted (shown to whoever uploaded it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractError(pub String);

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExtractError {}

/// Bounds on the work one document may cause. They defend the process
/// that extracts (the control plane's job worker, the runtime host serving
/// many tenants) against hostile files: decompression bombs, documents of
/// millions of pages, parsers that crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most PDF pages read; a longer PDF is refused.
    pub max_pages: usize,
    /// Most bytes one PDF stream (object, cross-reference or a page's
    /// content) or one DOCX part may decompress to.
    pub max_expanded_bytes: usize,
    /// Most bytes of text kept; more is refused.
    pub max_text_bytes: usize,
    /// Most entries a DOCX archive may list.
    pub max_zip_entries: usize,
    /// Time after which extraction stops (checked between pages and
    /// paragraphs, so one page's own parse may overrun it a little).
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pages: 2_000,
            max_expanded_bytes: 32 << 20,
            max_text_bytes: 16 << 20,
            max_zip_entries: 10_000,
            max_time: Duration::from_secs(20),
        }
    }
}

/// A running extraction's clock and text budget.
struct Budget<'a> {
    limits: &'a Limits,
    deadline: Instant,
    text_bytes: usize,
}

impl<'a> Budget<'a> {
    fn new(limits: &'a Limits) -> Self {
        Self { limits, deadline: Instant::now() + limits.max_time, text_bytes: 0 }
    }

    /// Counts `added` bytes of text and checks the clock.
    fn charge(&mut self, added: usize, what: &str) -> Result<(), ExtractError> {
        self.text_bytes += added;
        if self.text_bytes > self.limits.max_text_bytes {
            return Err(ExtractError(format!(
                "the {what} holds more than {} of text: split it into smaller documents",
                mib(self.limits.max_text_bytes)
            )));
        }
        if Instant::now() > self.deadline {
            return Err(ExtractError(format!(
                "reading the {what} took longer than {} s: split it into smaller documents",
                self.limits.max_time.as_secs()
            )));
        }
        Ok(())
    }
}

/// `bytes` as "N MiB" (or "N KiB" below a MiB).
fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) }
}

/// The text of `bytes` of `kind`, within the default [`Limits`].
pub fn extract(kind: Kind, bytes: &[u8]) -> Result<String, ExtractError> {
    extract_with(kind, bytes, &Limits::default())
}

/// The text of `bytes` of `kind`, within `limits`.
pub fn extract_with(kind: Kind, bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    let mut budget = Budget::new(limits);
    let text = match kind {
        Kind::Pdf => pdf::text(bytes, &mut budget)?,
        Kind::Docx => docx::text(bytes, &mut budget)?,
        Kind::Html => html(utf8(bytes)?),
        Kind::Markdown | Kind::Text => utf8(bytes)?.replace("\r\n", "\n"),
    };
    let text = text.replace('\0', "");
    if text.trim().is_empty() {
        return Err(ExtractError(match kind {
            Kind::Pdf => "the PDF has no extractable text (scanned pages are images: run OCR first)".into(),
            Kind::Docx => "the DOCX document has no text in its paragraphs".into(),
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
