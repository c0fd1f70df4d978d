//! Type Convert (`TypeConverterComponent`): a Message, Data or DataFrame
//! as another of the three, as Langflow 1.13's `convert_to_message`,
//! `convert_to_data` and `convert_to_dataframe` do it.

use crate::history::message_data;
use crate::table_text::{dataframe_markdown, python_repr};
use sandflow_sdk::{Data, Descriptor, Invocation, NodeError, Output, Table, Value, kind, message, output, port, value};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "type-convert";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Type Convert".into(),
        description: "Convert between different types (Message, Data, DataFrame)".into(),
        inputs: vec![port("input_data", &["Message", "Data", "DataFrame"], true), port("output_type", &[], false)],
        outputs: vec![
            port("message_output", &["Message"], false),
            port("data_output", &["Data"], false),
            port("dataframe_output", &["DataFrame"], false),
        ],
    }
}

/// Runs the node: every output the flow wants, from the first input.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let input = value(inv, "input_data").filter(|v| !matches!(v, Value::None)).ok_or_else(|| {
        NodeError::InvalidInput("Type Convert needs an input: connect an edge into `input_data`".into())
    })?;
    let wants = |name: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == name);
    let mut outputs = Vec::new();
    if wants("message_output") {
        outputs.push(output("message_output", to_message(input, &inv.session_id)?));
    }
    if wants("data_output") {
        outputs.push(output("data_output", to_data(input)?));
    }
    if wants("dataframe_output") {
        outputs.push(output("dataframe_output", to_dataframe(input)?));
    }
    Ok(outputs)
}

/// `convert_to_message`: a Message as it is; Data as its text (or the
/// Python form of its dict when it has no text); a DataFrame as a
/// Markdown table.
pub fn to_message(input: &Value, session_id: &str) -> Result<Value, NodeError> {
    let text = match input {
        Value::Message(m) => return Ok(Value::Message(m.clone())),
        Value::Data(d) => {
            let object = data_object(d);
            match object.get(&d.text_key) {
                Some(Json::String(s)) => s.clone(),
                Some(other) => crate::table_text::python_str(other),
                None => python_repr(&Json::Object(object)),
            }
        }
        Value::Table(t) => dataframe_markdown(&table_rows(t)),
        Value::Text(t) | Value::Json(t) => t.clone(),
        other => return Err(unsupported(other)),
    };
    Ok(Value::Message(message(text, "", "", session_id)))
}

/// `convert_to_data`: a Message as its data; Data as it is; a DataFrame
/// as `{"results": rows}`.
pub fn to_data(input: &Value) -> Result<Value, NodeError> {
    Ok(match input {
        Value::Message(m) => data_value(Json::Object(message_data(m))),
        Value::Data(d) => Value::Data(d.clone()),
        Value::Table(t) => {
            let rows: Vec<Json> = table_rows(t).into_iter().map(Json::Object).collect();
            data_value(json!({ "results": rows }))
        }
        Value::Text(t) | Value::Json(t) => data_value(json!({ "text": t })),
        other => return Err(unsupported(other)),
    })
}

/// `convert_to_dataframe`: a Message as one row; Data holding one list of
/// objects as those rows, other Data as one row; a DataFrame as it is.
pub fn to_dataframe(input: &Value) -> Result<Value, NodeError> {
    let rows: Vec<Json> = match input {
        Value::Message(m) => vec![Json::Object(message_data(m))],
        Value::Table(t) => return Ok(Value::Table(t.clone())),
        Value::Data(d) => {
            let object = data_object(d);
            match object.values().next() {
                Some(Json::Array(items)) if object.len() == 1 && items.iter().all(Json::is_object) => items.clone(),
                _ => vec![Json::Object(object)],
            }
        }
        Value::Text(t) | Value::Json(t) => vec![json!({ "text": t })],
        other => return Err(unsupported(other)),
    };
    Ok(Value::Table(Table { rows: rows.iter().map(Json::to_string).collect() }))
}

fn data_object(d: &Data) -> Map<String, Json> {
    serde_json::from_str(&d.data).unwrap_or_default()
}

fn data_value(object: Json) -> Value {
    Value::Data(Data { text_key: "text".into(), data: object.to_string(), default_value: String::new() })
}

fn table_rows(t: &Table) -> Vec<Map<String, Json>> {
    t.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect()
}

fn unsupported(value: &Value) -> NodeError {
    NodeError::InvalidInput(format!("Type Convert accepts a Message, Data or DataFrame, not {}", kind(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_without_text_shows_its_dict() {
        let d = Data { text_key: "text".into(), data: r#"{"a":1}"#.into(), default_value: String::new() };
        let Value::Message(m) = to_message(&Value::Data(d), "s").expect("converts") else { panic!("a message") };
        assert_eq!(m.text, "{'a': 1}");
    }

    #[test]
    fn a_list_of_records_becomes_rows() {
        let d = Data {
            text_key: "text".into(),
            data: r#"{"items":[{"a":1},{"a":2}]}"#.into(),
            default_value: String::new(),
        };
        let Value::Table(t) = to_dataframe(&Value::Data(d)).expect("converts") else { panic!("a table") };
        assert_eq!(t.rows, [r#"{"a":1}"#, r#"{"a":2}"#]);
    }
}
