//! Diagnostics: every problem found in a flow, with where it is and what to do.

use serde::Serialize;
use std::fmt::Write as _;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow compiles, but probably does not do what its author meant.
    Warning,
    /// The flow cannot compile until this is fixed.
    Error,
}

/// One problem found in a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `unknown-component`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Id of the node concerned, e.g. `Prompt-t2oaK`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Display name of that node, e.g. `Prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The field (template key) or output concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// RFC 6901 JSON pointer into the uploaded document.
    pub pointer: String,
    /// What to do about it.
    pub help: String,
}

impl Diagnostic {
    /// An error at `pointer`.
    pub fn error(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, pointer, message)
    }

    /// A warning at `pointer`.
    pub fn warning(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, pointer, message)
    }

    fn new(severity: Severity, code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            node_id: None,
            display_name: None,
            field: None,
            pointer: pointer.into(),
            help: String::new(),
        }
    }

    /// Names the node the problem is in.
    #[must_use]
    pub fn node(mut self, id: &str, display_name: &str) -> Self {
        self.node_id = Some(id.to_owned());
        self.display_name = Some(display_name.to_owned());
        self
    }

    /// Names the field or output the problem is in.
    #[must_use]
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// Says what to do about it.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Whether this diagnostic stops compilation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// All diagnostics of one flow, in document order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// Iterates over the diagnostics.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renders for people: one block per diagnostic with the offending source
    /// line when `source` is given, then a summary line.
    pub fn render(&self, file_name: &str, source: Option<&str>) -> String {
        let mut out = String::new();
        for d in &self.0 {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let _ = writeln!(out, "{level}[{}]: {}", d.code, d.message);
            let location = source.and_then(|s| crate::locate::line_col(s, &d.pointer).map(|lc| (s, lc)));
            match location {
                Some((_, (line, col))) => {
                    let _ = writeln!(out, "  --> {file_name}:{line}:{col} (at {})", display_pointer(&d.pointer));
                }
                None => {
                    let _ = writeln!(out, "  --> {file_name} (at {})", display_pointer(&d.pointer));
                }
            }
            if let Some(id) = &d.node_id {
                let name = d.display_name.as_deref().unwrap_or("");
                let _ = write!(out, "   = node: {id} ({name})");
                if let Some(field) = &d.field {
                    let _ = write!(out, ", field: {field}");
                }
                out.push('\n');
            }
            if let Some((src, (line, col))) = location {
                render_snippet(&mut out, src, line, col);
            }
            if !d.help.is_empty() {
                let _ = writeln!(out, "   = help: {}", d.help);
            }
            out.push('\n');
        }
        let errors = self.error_count();
        let warnings = self.0.len() - errors;
        let _ = writeln!(out, "{file_name}: {errors} error(s), {warnings} warning(s)");
        out
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

fn render_snippet(out: &mut String, source: &str, line: usize, col: usize) {
    let Some(text) = source.lines().nth(line - 1) else {
        return;
    };
    // Exports are often one long line: show a window around the column.
    const WINDOW: usize = 60;
    let chars: Vec<char> = text.chars().collect();
    let col0 = col.saturating_sub(1).min(chars.len());
    let start = col0.saturating_sub(WINDOW / 2);
    let end = (col0 + WINDOW).min(chars.len());
    let snippet: String = chars[start..end].iter().collect();
    let prefix = if start > 0 { "…" } else { "" };
    let gutter = line.to_string();
    let _ = writeln!(out, "{:width$} |", "", width = gutter.len());
    let _ = writeln!(out, "{gutter} | {prefix}{snippet}");
    let caret_at = col0 - start + prefix.chars().count();
    let _ = writeln!(out, "{:width$} | {:caret_at$}^", "", "", width = gutter.len());
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Escapes one JSON pointer reference token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
