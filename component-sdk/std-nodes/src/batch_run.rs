//! Batch Run (`BatchRunComponent`): one model call per DataFrame row, with
//! the row's `column_name` cell as the user message (or, without a column,
//! the whole row as TOML, `[column]` tables of `value = "…"`), after the
//! `system_message` when there is one. The result is the rows with the
//! answer in `output_column_name` (default `model_response`), their
//! `batch_index`, and with `enable_metadata` a `metadata` object, as
//! Langflow 1.13 builds them.
//!
//! Langflow sends the rows concurrently (`abatch`); the sandbox sends them
//! one after another, in order.

use crate::model::{chat, settings};
use crate::parser::{pandas_rows, text_field};
use crate::pyfmt::str_of;
use crate::table_text::python_repr;
use sandflow_sdk::host::llm::{self, CompletionRequest};
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Table, Value, capability_message, flag, output, port, value,
};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "batch-run";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Batch Run".into(),
        description: "Runs an LLM on each row of a DataFrame column. If no column is specified, all columns are used."
            .into(),
        inputs: vec![
            port("model", &["LanguageModel"], true),
            port("system_message", &["Message"], false),
            port("df", &["DataFrame"], true),
            port("column_name", &["Message"], false),
            port("output_column_name", &["Message"], false),
            port("enable_metadata", &[], false),
        ],
        outputs: vec![port("batch_results", &["DataFrame"], false)],
    }
}

/// `toml.dumps({col: {"value": str(cell)}})` for one row.
pub fn row_toml(row: &[(String, String)]) -> String {
    let mut out = String::new();
    for (column, value) in row {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        let bare = !column.is_empty() && column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let section = if bare { column.clone() } else { toml_str(column) };
        out.push_str(&format!("[{section}]\nvalue = {}\n", toml_str(value)));
    }
    out
}

/// The `toml` package's string: Python's `repr` turned into a double-quoted
/// string, `\xNN` escapes as `\u00NN`.
fn toml_str(s: &str) -> String {
    let repr = python_repr(&Json::String(s.to_owned()));
    let inner = &repr[1..repr.len() - 1];
    let inner = if repr.starts_with('\'') { inner.replace("\\'", "'").replace('"', "\\\"") } else { inner.to_owned() };
    format!("\"{}\"", inner.replace("\\x", "\\u00"))
}

/// The user message of each row.
pub fn user_texts(rows: &[Map<String, Json>], column: &str) -> Result<Vec<String>, String> {
    let cells = pandas_rows(rows);
    if column.is_empty() {
        return Ok(cells
            .iter()
            .map(|row| row_toml(&row.iter().map(|(k, v)| (k.clone(), str_of(v))).collect::<Vec<_>>()))
            .collect());
    }
    let columns: Vec<&String> = cells.first().map(|r| r.iter().map(|(k, _)| k).collect()).unwrap_or_default();
    if !columns.iter().any(|c| *c == column) {
        let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
        return Err(format!("Column '{column}' not found in the DataFrame. Available columns: {}", names.join(", ")));
    }
    Ok(cells
        .iter()
        .map(|row| row.iter().find(|(k, _)| k == column).map(|(_, v)| str_of(v)).unwrap_or_default())
        .collect())
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let Some(Value::Table(table)) = value(inv, "df") else {
        return Err(NodeError::InvalidInput("Batch Run needs a DataFrame: connect one to `df`".into()));
    };
    let rows: Vec<Map<String, Json>> = table.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect();
    let texts = user_texts(&rows, &text_field(inv, "column_name", "")).map_err(NodeError::InvalidInput)?;
    let system = text_field(inv, "system_message", "");
    let out_column = text_field(inv, "output_column_name", "model_response");
    let metadata = flag(inv, "enable_metadata", false);
    let model = settings(inv);
    let mut results = Vec::with_capacity(rows.len());
    for (index, (row, text)) in rows.into_iter().zip(texts).enumerate() {
        let mut messages = Vec::new();
        if !system.is_empty() {
            messages.push(chat("system", system.clone()));
        }
        messages.push(chat("user", text));
        let request = CompletionRequest {
            model: model.clone(),
            messages,
            tools: Vec::new(),
            stream_tokens: false,
            response_schema: None,
        };
        let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
        let answer = completion.message.content;
        let mut row = row;
        let response_length = answer.chars().count();
        row.insert(out_column.clone(), Json::String(answer));
        row.insert("batch_index".into(), json!(index));
        if metadata {
            let input_length = row.get("text_input").and_then(Json::as_str).map_or(0, |t| t.chars().count());
            row.insert(
                "metadata".into(),
                json!({
                    "has_system_message": !system.is_empty(),
                    "input_length": input_length,
                    "response_length": response_length,
                    "processing_status": "success",
                }),
            );
        }
        results.push(Json::Object(row).to_string());
    }
    Ok(vec![output("batch_results", Value::Table(Table { rows: results }))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_as_toml_like_the_toml_package() {
        let row = [
            ("a".to_owned(), "x".to_owned()),
            ("b c".to_owned(), "q\"uo\\te\nnl é \t".to_owned()),
            ("n".to_owned(), "1".to_owned()),
        ];
        assert_eq!(
            row_toml(&row),
            "[a]\nvalue = \"x\"\n\n[\"b c\"]\nvalue = \"q\\\"uo\\\\te\\nnl é \\t\"\n\n[n]\nvalue = \"1\"\n"
        );
    }
}
