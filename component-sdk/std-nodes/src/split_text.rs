//! Split Text (`SplitText`): documents cut into chunks with LangChain's
//! `CharacterTextSplitter`, as Langflow 1.13 configures it: split on the
//! separator (`\n` written as `\\n`, `/n` or `/t` fixed up first), keep it
//! at the start or end of the pieces if asked (`keep_separator` `True` is
//! `Start`), then merge pieces into chunks of at most `chunk_size`
//! characters (Unicode code points, Python's `len`) with up to
//! `chunk_overlap` characters carried over, each chunk stripped of
//! surrounding whitespace and empty ones dropped. A piece longer than
//! `chunk_size` stays whole.
//!
//! Each chunk becomes a row `{text, …the document's other fields}`, columns
//! ordered as Langflow's `smart_column_order` does (content columns, other
//! columns, system columns), or `{text}` alone with `clean_output`. Older
//! exports' `chunks` output carries the same rows as a list of Data.

use crate::history::message_data;
use crate::parser::{py_str, text_field};
use crate::pyfmt::is_py_space;
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Table, Value, flag, kind, number, output, port, value};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "split-text";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Split Text".into(),
        description: "Split text into chunks based on specified criteria.".into(),
        inputs: vec![
            port("data_inputs", &["Data", "DataFrame", "Message"], true),
            port("chunk_overlap", &[], false),
            port("chunk_size", &[], false),
            port("separator", &[], false),
            port("text_key", &[], false),
            port("keep_separator", &[], false),
            port("clean_output", &[], false),
        ],
        outputs: vec![port("dataframe", &["DataFrame"], false), port("chunks", &["Data"], false)],
    }
}

/// Where the separator goes when it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Dropped (and re-inserted between merged pieces).
    No,
    /// At the start of the piece that follows it (`True` and `Start`).
    Start,
    /// At the end of the piece before it.
    End,
}

impl Keep {
    /// The dropdown's value as Langflow reads it.
    pub fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "false" | "" => Keep::No,
            "end" => Keep::End,
            _ => Keep::Start,
        }
    }
}

/// `CharacterTextSplitter(chunk_size, chunk_overlap, separator, keep_separator)`.
#[derive(Debug, Clone)]
pub struct Splitter {
    /// Most characters per chunk.
    pub chunk_size: i64,
    /// Characters carried over between chunks.
    pub chunk_overlap: i64,
    /// The literal separator.
    pub separator: String,
    /// Whether and where to keep it.
    pub keep: Keep,
}

impl Splitter {
    /// LangChain's checks of its arguments, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size <= 0 {
            return Err(format!("chunk_size must be > 0, got {}", self.chunk_size));
        }
        if self.chunk_overlap < 0 {
            return Err(format!("chunk_overlap must be >= 0, got {}", self.chunk_overlap));
        }
        if self.chunk_overlap > self.chunk_size {
            return Err(format!(
                "Got a larger chunk overlap ({}) than chunk size ({}), should be smaller.",
                self.chunk_overlap, self.chunk_size
            ));
        }
        Ok(())
    }

    /// `split_text`: the chunks of `text`.
    pub fn split(&self, text: &str) -> Vec<String> {
        let pieces = split_keeping(text, &self.separator, self.keep);
        let merge_sep = if self.keep == Keep::No { self.separator.as_str() } else { "" };
        self.merge(&pieces, merge_sep)
    }

    /// `_merge_splits`.
    fn merge(&self, pieces: &[&str], sep: &str) -> Vec<String> {
        let sep_len = sep.chars().count() as i64;
        let (size, overlap) = (self.chunk_size, self.chunk_overlap);
        let mut docs = Vec::new();
        // The current chunk: a window of pieces with their lengths.
        let lens: Vec<i64> = pieces.iter().map(|p| p.chars().count() as i64).collect();
        let mut start = 0;
        let mut total: i64 = 0;
        for (i, &len) in lens.iter().enumerate() {
            let count = i - start;
            if total + len + if count > 0 { sep_len } else { 0 } > size && count > 0 {
                if let Some(doc) = join(&pieces[start..i], sep) {
                    docs.push(doc);
                }
                while start < i
                    && (total > overlap || (total + len + if i > start { sep_len } else { 0 } > size && total > 0))
                {
                    total -= lens[start] + if i - start > 1 { sep_len } else { 0 };
                    start += 1;
                }
            }
            total += len + if i - start >= 1 { sep_len } else { 0 };
        }
        if let Some(doc) = join(&pieces[start..], sep) {
            docs.push(doc);
        }
        docs
    }
}

/// `separator.join(pieces).strip()`, or nothing when that is empty.
fn join(pieces: &[&str], sep: &str) -> Option<String> {
    let text = pieces.join(sep);
    let stripped = text.trim_matches(is_py_space);
    (!stripped.is_empty()).then(|| stripped.to_owned())
}

/// `_split_text_with_regex` on an escaped (literal) separator; empty
/// pieces are dropped, an empty separator splits into characters.
pub fn split_keeping<'a>(text: &'a str, separator: &str, keep: Keep) -> Vec<&'a str> {
    if separator.is_empty() {
        return text.char_indices().map(|(i, c)| &text[i..i + c.len_utf8()]).collect();
    }
    let mut pieces = Vec::new();
    match keep {
        Keep::No => pieces.extend(text.split(separator)),
        Keep::End => {
            let mut from = 0;
            for (at, sep) in text.match_indices(separator) {
                pieces.push(&text[from..at + sep.len()]);
                from = at + sep.len();
            }
            pieces.push(&text[from..]);
        }
        Keep::Start => {
            let mut from = 0;
            for (at, _) in text.match_indices(separator) {
                pieces.push(&text[from..at]);
                from = at;
            }
            pieces.push(&text[from..]);
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// Langflow's separator fix-ups: `/n` and `/t`, then `\n` written out.
pub fn separator(raw: &str) -> String {
    let fixed = match raw {
        "/n" => "\n",
        "/t" => "\t",
        other => other,
    };
    fixed.replace("\\n", "\n")
}

/// One document: its text and the rest of its fields.
pub type Document = (String, Map<String, Json>);

/// The documents of the input, as `split_text_base` makes them.
pub fn documents(input: Option<&Value>, text_key: &str) -> Result<Vec<Document>, NodeError> {
    let failed = |m: String| NodeError::Failed(m);
    let docs = match input {
        Some(Value::Table(t)) => {
            if t.rows.is_empty() {
                return Err(failed("DataFrame is empty".into()));
            }
            let rows: Vec<Map<String, Json>> =
                t.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect();
            if !rows.iter().any(|r| r.contains_key(text_key)) {
                return Err(failed(format!("Text key '{text_key}' not found in Table columns")));
            }
            // A row without the column holds pandas' NaN.
            rows.into_iter().map(|row| document(row, text_key, "nan")).collect()
        }
        Some(Value::Message(m)) => vec![document(message_data(m), "text", "")],
        Some(Value::Data(d)) => {
            vec![document(serde_json::from_str(&d.data).unwrap_or_default(), text_key, &d.default_value)]
        }
        Some(Value::Json(j)) => match serde_json::from_str::<Json>(j) {
            Ok(Json::Array(items)) if !items.is_empty() && items.iter().all(Json::is_object) => {
                items.into_iter().filter_map(|i| i.as_object().cloned()).map(|row| document(row, "text", "")).collect()
            }
            Ok(Json::Array(items)) if items.is_empty() => return Err(failed("No data inputs provided".into())),
            _ => return Err(failed("No valid Data inputs found in JSON".into())),
        },
        None | Some(Value::None) => return Err(failed("No data inputs provided".into())),
        Some(other) => return Err(failed(format!("No valid Data inputs found in {}", kind(other)))),
    };
    Ok(docs)
}

/// `to_lc_document`: the text under `text_key` (its `str` when it is not a
/// string; `""` when missing) and the other fields.
fn document(mut row: Map<String, Json>, text_key: &str, default: &str) -> Document {
    let text = match row.shift_remove(text_key) {
        Some(Json::String(s)) => s,
        Some(other) => py_str(&other),
        None => default.to_owned(),
    };
    (text, row)
}

const CONTENT: [&str; 7] = ["text", "content", "output", "summary", "result", "answer", "response"];
const SYSTEM: [&str; 9] =
    ["timestamp", "sender", "sender_name", "session_id", "context_id", "flow_id", "files", "error", "edit"];

/// The rows of the chunks: `Data(text=chunk, data=metadata)` (the text
/// after the metadata), then `smart_column_order`.
pub fn rows(docs: &[Document], splitter: &Splitter, clean: bool) -> Vec<Map<String, Json>> {
    let mut rows = Vec::new();
    for (text, metadata) in docs {
        for chunk in splitter.split(text) {
            let mut row = if clean { Map::new() } else { metadata.clone() };
            row.entry("text").or_insert(Json::String(chunk));
            rows.push(row);
        }
    }
    if clean {
        return rows;
    }
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for key in row.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let lower = |c: &str| c.to_lowercase();
    let is_content = |c: &str| CONTENT.contains(&lower(c).as_str());
    let is_system = |c: &str| SYSTEM.contains(&lower(c).as_str()) || c.starts_with('_');
    let mut order: Vec<&String> = columns.iter().filter(|c| is_content(c)).collect();
    order.extend(columns.iter().filter(|c| !is_content(c) && !is_system(c)));
    order.extend(columns.iter().filter(|c| is_system(c) && !is_content(c)));
    rows.into_iter()
        .map(|mut row| order.iter().filter_map(|c| row.shift_remove(c.as_str()).map(|v| ((*c).clone(), v))).collect())
        .collect()
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let splitter = Splitter {
        chunk_size: number(inv, "chunk_size").map_or(1000, |n| n as i64),
        chunk_overlap: number(inv, "chunk_overlap").map_or(200, |n| n as i64),
        separator: separator(&text_field(inv, "separator", "\n")),
        keep: Keep::parse(&text_field(inv, "keep_separator", "False")),
    };
    let text_key = text_field(inv, "text_key", "text");
    let docs = documents(value(inv, "data_inputs"), &text_key)?;
    splitter.validate().map_err(|e| NodeError::Failed(format!("Error splitting text: {e}")))?;
    let rows = rows(&docs, &splitter, flag(inv, "clean_output", false));
    let mut outputs = Vec::new();
    let wants = |name: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == name);
    if wants("chunks") {
        let list = Json::Array(rows.iter().cloned().map(Json::Object).collect());
        outputs.push(output("chunks", Value::Json(list.to_string())));
    }
    if wants("dataframe") {
        let table = Table { rows: rows.into_iter().map(|r| Json::Object(r).to_string()).collect() };
        outputs.push(output("dataframe", Value::Table(table)));
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(size: i64, overlap: i64, sep: &str, keep: Keep) -> Splitter {
        Splitter { chunk_size: size, chunk_overlap: overlap, separator: sep.into(), keep }
    }

    #[test]
    fn merges_pieces_with_overlap() {
        let s = splitter(7, 3, " ", Keep::No);
        assert_eq!(s.split("foo bar baz 123"), ["foo bar", "bar baz", "baz 123"]);
        let s = splitter(3, 0, " ", Keep::No);
        assert_eq!(s.split("foo  bar"), ["foo", "bar"]);
        let s = splitter(2, 0, "", Keep::No);
        assert_eq!(s.split("abcde"), ["ab", "cd", "e"]);
    }

    #[test]
    fn keeps_the_separator_where_asked() {
        assert_eq!(split_keeping("a.b.c", ".", Keep::Start), ["a", ".b", ".c"]);
        assert_eq!(split_keeping("a.b.c.", ".", Keep::End), ["a.", "b.", "c."]);
        assert_eq!(split_keeping(".a", ".", Keep::No), ["a"]);
    }

    #[test]
    fn long_pieces_stay_whole_and_arguments_are_checked() {
        let s = splitter(3, 1, "\n", Keep::No);
        assert_eq!(s.split("abcdef\ngh\ni"), ["abcdef", "gh", "i"]);
        assert!(splitter(3, 5, "\n", Keep::No).validate().is_err());
    }
}
