//! Parser (`ParserComponent`, `parser`): a DataFrame, Data or list of
//! Data as text, as Langflow 1.13's `parse_combined_text` makes it.
//!
//! - **Parser** mode: each DataFrame row goes through `pattern.format(**row)`
//!   (a missing column is a `KeyError`), each Data through
//!   `pattern.format_map` (a missing key shows the Data's default value,
//!   `""`); the lines are joined with `sep`.
//! - **Stringify** mode: Langflow's `safe_convert`: a DataFrame as a
//!   Markdown table, Data as an indented JSON block, a list one per line;
//!   `clean_data` (when the export has the field) drops empty rows and lines.
//!
//! Rows are taken as pandas takes them (`DataFrame(rows).iterrows()`): a
//! missing cell is `nan`, an integer column with a missing cell or a row
//! whose columns are all numbers with a float among them shows floats
//! (`1.0`).

use crate::history::message_data;
use crate::pyfmt::{self, Call, Py, is_py_space};
use crate::table_text::{markdown_table, python_repr};
use sandflow_sdk::{Data, Descriptor, Invocation, NodeError, Output, Value, flag, kind, message, output, port, value};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "parser";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Parser".into(),
        description: "Extracts text using a template.".into(),
        inputs: vec![
            port("input_data", &["DataFrame", "Data"], true),
            port("mode", &[], false),
            port("pattern", &[], false),
            port("sep", &[], false),
            port("clean_data", &[], false),
        ],
        outputs: vec![port("parsed_text", &["Message"], false)],
    }
}

/// What the Parser received, as Langflow's `_clean_args` sorts it.
#[derive(Debug, Clone)]
pub enum Input {
    /// A DataFrame: its rows (JSON objects).
    Table(Vec<Map<String, Json>>),
    /// One Data or a list of Data: each object with its default value.
    Data(Vec<(Map<String, Json>, String)>),
    /// A Message (Stringify shows its text).
    Message(String, Map<String, Json>),
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let input = read_input(value(inv, "input_data"))?;
    let text = if text_field(inv, "mode", "Parser") == "Stringify" {
        stringify(&input, flag(inv, "clean_data", false))
    } else {
        let pattern = text_field(inv, "pattern", "Text: {text}");
        let sep = text_field(inv, "sep", "\n");
        parse(&input, &pattern, &sep).map_err(|e| NodeError::Failed(e.to_string()))?
    };
    Ok(vec![output("parsed_text", Value::Message(message(text, "", "", &inv.session_id)))])
}

/// A text field as set (an empty value stays empty), or `default` when absent.
pub fn text_field(inv: &Invocation, name: &str, default: &str) -> String {
    value(inv, name).and_then(sandflow_sdk::as_text).unwrap_or_else(|| default.to_owned())
}

/// The input sorted into a DataFrame, Data or a list of Data.
pub fn read_input(input: Option<&Value>) -> Result<Input, NodeError> {
    let unsupported = |what: &str| {
        NodeError::InvalidInput(format!(
            "Unsupported input type: {what}. Expected DataFrame, Data, or list[Data]; connect one to `input_data`."
        ))
    };
    match input {
        Some(Value::Table(t)) => Ok(Input::Table(t.rows.iter().map(|r| object(r)).collect())),
        Some(Value::Data(d)) => Ok(Input::Data(vec![(object(&d.data), d.default_value.clone())])),
        Some(Value::Message(m)) => Ok(Input::Message(m.text.clone(), message_data(m))),
        Some(Value::Json(j)) => match serde_json::from_str::<Json>(j) {
            Ok(Json::Array(items)) if items.iter().all(Json::is_object) => Ok(Input::Data(
                items.into_iter().map(|i| (i.as_object().cloned().unwrap_or_default(), String::new())).collect(),
            )),
            Ok(Json::Object(o)) if o.contains_key("data") => {
                let data = o.get("data").and_then(Json::as_object).cloned().unwrap_or_default();
                let default = o.get("default_value").and_then(Json::as_str).unwrap_or_default().to_owned();
                Ok(Input::Data(vec![(data, default)]))
            }
            _ => Err(unsupported("JSON that is neither a Data object nor a list of them")),
        },
        Some(other) => Err(unsupported(kind(other))),
        None => Err(unsupported("nothing")),
    }
}

fn object(text: &str) -> Map<String, Json> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Parser mode: the pattern over every row or item, joined with `sep`.
pub fn parse(input: &Input, pattern: &str, sep: &str) -> Result<String, pyfmt::FormatError> {
    let mut lines = Vec::new();
    match input {
        Input::Table(rows) => {
            for row in pandas_rows(rows) {
                lines.push(pyfmt::format(pattern, Call::Format, &|name| {
                    row.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
                })?);
            }
        }
        Input::Data(items) => {
            for (data, default) in items {
                lines.push(pyfmt::format(pattern, Call::FormatMap, &|name| {
                    Some(data.get(name).map_or_else(|| Py::Owned(Json::String(default.clone())), Py::Json))
                })?);
            }
        }
        Input::Message(_, data) => {
            lines.push(pyfmt::format(pattern, Call::FormatMap, &|name| {
                Some(data.get(name).map_or_else(|| Py::Owned(Json::String(String::new())), Py::Json))
            })?);
        }
    }
    Ok(lines.join(sep))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dtype {
    Int,
    Float,
    Bool,
    Object,
}

/// The rows as `DataFrame(rows).iterrows()` yields them: columns in order
/// of first appearance, cells with pandas' dtypes applied.
pub fn pandas_rows(rows: &[Map<String, Json>]) -> Vec<Vec<(String, Py<'_>)>> {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let dtypes: Vec<Dtype> = columns
        .iter()
        .map(|c| {
            let cells: Vec<Option<&Json>> = rows.iter().map(|r| r.get(*c)).collect();
            let gaps = cells.iter().any(|v| matches!(v, None | Some(Json::Null)));
            let present: Vec<&Json> = cells.iter().flatten().copied().filter(|v| !v.is_null()).collect();
            if present.is_empty() {
                Dtype::Object
            } else if present.iter().all(|v| v.is_i64() || v.is_u64()) {
                if gaps { Dtype::Float } else { Dtype::Int }
            } else if present.iter().all(|v| v.is_number()) {
                Dtype::Float
            } else if present.iter().all(|v| v.is_boolean()) && !gaps {
                Dtype::Bool
            } else {
                Dtype::Object
            }
        })
        .collect();
    // A row of a frame whose columns are all numbers takes their common type.
    let all_numeric = dtypes.iter().all(|d| matches!(d, Dtype::Int | Dtype::Float));
    let row_float = all_numeric && dtypes.contains(&Dtype::Float);
    rows.iter()
        .map(|row| {
            columns
                .iter()
                .zip(&dtypes)
                .map(|(c, dtype)| {
                    let cell = row.get(*c);
                    let value = match (cell, dtype) {
                        (None, _) => Py::Float(f64::NAN),
                        (Some(Json::Null), Dtype::Float) => Py::Float(f64::NAN),
                        (Some(v), Dtype::Float) => Py::Float(v.as_f64().unwrap_or(f64::NAN)),
                        (Some(v), Dtype::Int) if row_float => Py::Float(v.as_f64().unwrap_or(f64::NAN)),
                        (Some(v), _) => Py::Json(v),
                    };
                    ((*c).to_owned(), value)
                })
                .collect()
        })
        .collect()
}

/// Stringify mode: Langflow's `safe_convert`.
pub fn stringify(input: &Input, clean_data: bool) -> String {
    match input {
        Input::Message(text, _) => text.clone(),
        Input::Data(items) => {
            items.iter().map(|(data, _)| clean_string(&json_block(data))).collect::<Vec<_>>().join("\n")
        }
        Input::Table(rows) => {
            let cell = |s: &str| {
                let mut s = s.replace("\r\n", "\n").replace('\r', "\n");
                if clean_data {
                    if s.chars().all(is_py_space) {
                        s.clear();
                    }
                    s = collapse_newlines(&s);
                }
                s.trim_matches('\n').replace('\n', "<br/>").replace('|', "\\|")
            };
            markdown_table(rows, clean_data, &cell)
        }
    }
}

fn collapse_newlines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\n' && out.ends_with('\n') {
            continue;
        }
        out.push(c);
    }
    out
}

/// `_serialize_data`: the object as orjson's indented JSON in a fence.
fn json_block(data: &Map<String, Json>) -> String {
    let json = serde_json::to_string_pretty(data).unwrap_or_else(|_| "{}".into());
    format!("```json\n{json}\n```")
}

/// Langflow's `clean_string`: `re.sub(r"^\s*$", "", s, flags=re.M)` (which
/// empties blank lines and, `\s` matching newlines, also swallows all but
/// the last newline of a run of blank lines), then runs of three or more
/// newlines as two.
pub fn clean_string(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    // ws_end[i]: end of the run of whitespace starting at i.
    let mut ws_end = vec![n; n + 1];
    for i in (0..n).rev() {
        ws_end[i] = if is_py_space(chars[i]) { ws_end[i + 1] } else { i };
    }
    // last_nl[i]: the last newline before i.
    let mut last_nl: Vec<Option<usize>> = vec![None; n + 1];
    for i in 0..n {
        last_nl[i + 1] = if chars[i] == '\n' { Some(i) } else { last_nl[i] };
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < n {
        let line_start = i == 0 || chars[i - 1] == '\n';
        if line_start {
            // The longest match of `\s*$` from here: up to the end, or up to the
            // last newline inside the whitespace run.
            let end = ws_end[i];
            let stop = if end == n { Some(n) } else { last_nl[end].filter(|&q| q >= i) };
            if let Some(q) = stop
                && q > i
            {
                i = q;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    let mut result = String::with_capacity(out.len());
    let mut run = 0;
    for c in out.chars() {
        if c == '\n' {
            run += 1;
            continue;
        }
        push_newlines(&mut result, run);
        run = 0;
        result.push(c);
    }
    push_newlines(&mut result, run);
    result
}

fn push_newlines(out: &mut String, run: usize) {
    for _ in 0..if run >= 3 { 2 } else { run } {
        out.push('\n');
    }
}

/// A Data value for `object`.
pub fn data_of(object: Map<String, Json>) -> Value {
    Value::Data(Data { text_key: "text".into(), data: Json::Object(object).to_string(), default_value: String::new() })
}

/// Python's `str()` of a JSON value.
pub fn py_str(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Number(n) if n.is_f64() => pyfmt::float_repr(n.as_f64().unwrap_or(f64::NAN)),
        other => python_repr(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Json) -> Vec<Map<String, Json>> {
        v.as_array().expect("rows").iter().map(|r| r.as_object().expect("row").clone()).collect()
    }

    #[test]
    fn templates_over_rows_and_data() {
        let table = Input::Table(rows(json!([{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}])));
        assert_eq!(parse(&table, "{name} ({age})", "\n").unwrap(), "Ada (36)\nAlan (41)");
        assert_eq!(parse(&table, "{nope}", "\n").unwrap_err().kind, "KeyError");
        let data = Input::Data(vec![(rows(json!([{"text": "hi"}])).remove(0), String::new())]);
        assert_eq!(parse(&data, "Text: {text} / {missing}", "\n").unwrap(), "Text: hi / ");
    }

    #[test]
    fn pandas_makes_floats() {
        let table = Input::Table(rows(json!([{"a": 1, "b": 2.5}, {"a": 2, "b": 1}])));
        assert_eq!(parse(&table, "{a}|{b}", ",").unwrap(), "1.0|2.5,2.0|1.0");
        let gaps = Input::Table(rows(json!([{"a": 1, "s": "x"}, {"s": "y"}])));
        assert_eq!(parse(&gaps, "{a}|{s}", ",").unwrap(), "1.0|x,nan|y");
    }

    #[test]
    fn clean_string_is_langflows_regex() {
        assert_eq!(clean_string("a\n\n\nb"), "a\n\nb");
        assert_eq!(clean_string("a\n  \n\t\nb\n\n\n\n\nc"), "a\n\nb\n\nc");
        assert_eq!(clean_string("  x  \n   \ny"), "  x  \n\ny");
    }
}
