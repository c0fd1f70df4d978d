//! Structured Output (`StructuredOutput`): asks the model for JSON of the
//! schema the `output_schema` table describes, wrapped as Langflow wraps
//! it (`{"objects": [<schema_name>, …]}`, at least one), and answers the
//! objects: one as Data, several as Data `{"results": [...]}`
//! (`structured_output`), or as DataFrame rows (`dataframe_output`).
//!
//! The schema goes to the `llm` capability as `response-schema`, which
//! providers enforce (OpenAI's `json_schema` response format); Langflow
//! gets there through trustcall's tool call or LangChain's
//! `with_structured_output`, which is the same contract.
//!
//! Departure: when a flow uses both outputs, Langflow calls the model once
//! per output; Sandflow calls it once and answers both from that reply.

use crate::model::{chat, settings};
use crate::parser::{data_of, text_field};
use sandflow_sdk::host::llm::{self, CompletionRequest};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Table, Value, capability_message, output, port, value};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "structured-output";

/// Langflow's default format instructions.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are an AI that extracts structured JSON objects from unstructured text. \
Use a predefined schema with expected types (str, int, float, bool, dict). \
Extract ALL relevant instances that match the schema - if multiple patterns exist, capture them all. \
Fill missing or ambiguous values with defaults: null for missing values. \
Remove exact duplicates but keep variations that have different field values. \
Always return valid JSON in the expected format, never throw errors. \
If multiple objects can be extracted, return them all in the structured format.";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Structured Output".into(),
        description: "Uses an LLM to generate structured data. Ideal for extraction and consistency.".into(),
        inputs: vec![
            port("model", &["LanguageModel"], true),
            port("input_value", &["Message"], true),
            port("system_prompt", &[], false),
            port("schema_name", &[], false),
            port("output_schema", &[], true),
        ],
        outputs: vec![port("structured_output", &["Data"], false), port("dataframe_output", &["DataFrame"], false)],
    }
}

/// The JSON Schema of one row of the `output_schema` table
/// (`build_model_from_schema`): `str`, `int`, `float`, `bool`, `dict`
/// (anything else is a string), a list of them when `multiple` is on.
pub fn schema(table: &[Json], name: &str) -> Result<Json, String> {
    if table.is_empty() {
        return Err("Output schema cannot be empty".into());
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in table {
        let field_name = field.get("name").and_then(Json::as_str).unwrap_or("field");
        let description = field.get("description").and_then(Json::as_str).unwrap_or_default();
        let kind = match field.get("type").and_then(Json::as_str).unwrap_or("str") {
            "int" => json!({"type": "integer"}),
            "float" => json!({"type": "number"}),
            "bool" | "boolean" => json!({"type": "boolean"}),
            "dict" => json!({"type": "object"}),
            _ => json!({"type": "string"}),
        };
        let multiple = match field.get("multiple") {
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let mut property = if multiple { json!({"type": "array", "items": kind}) } else { kind };
        if let Json::Object(p) = &mut property {
            p.insert("description".into(), Json::String(description.to_owned()));
        }
        properties.insert(field_name.to_owned(), property);
        required.push(Json::String(field_name.to_owned()));
    }
    Ok(json!({
        "type": "object",
        "description": format!("A list of {name}."),
        "properties": {
            "objects": {
                "type": "array",
                "description": format!("A list of {name}."),
                "minItems": 1,
                "items": {"type": "object", "properties": properties, "required": required},
            }
        },
        "required": ["objects"],
    }))
}

/// The objects in the model's answer: `objects` of the JSON it returned.
pub fn objects(answer: &str) -> Result<Vec<Json>, String> {
    let trimmed = answer.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|b| b.strip_suffix("```"))
        .unwrap_or(trimmed);
    let parsed: Json =
        serde_json::from_str(body.trim()).map_err(|e| format!("the model's answer is not JSON ({e}): {answer}"))?;
    let list = match parsed {
        Json::Object(mut o) => match o.shift_remove("objects") {
            Some(Json::Array(items)) => items,
            _ => Vec::new(),
        },
        Json::Array(items) => items,
        _ => Vec::new(),
    };
    if list.is_empty() {
        return Err("No structured output returned".into());
    }
    Ok(list)
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let name = match text_field(inv, "schema_name", "") {
        n if n.is_empty() => "OutputModel".to_owned(),
        n => n,
    };
    let table: Vec<Json> = match value(inv, "output_schema") {
        Some(Value::Json(j)) => {
            serde_json::from_str::<Json>(j).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let schema = schema(&table, &name).map_err(NodeError::InvalidInput)?;
    let system = text_field(inv, "system_prompt", DEFAULT_SYSTEM_PROMPT);
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(chat("system", system));
    }
    messages.push(chat("user", text_field(inv, "input_value", "")));
    let request = CompletionRequest {
        model: settings(inv),
        messages,
        tools: Vec::new(),
        stream_tokens: false,
        response_schema: Some(schema.to_string()),
    };
    let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
    let objects = objects(&completion.message.content).map_err(NodeError::Failed)?;
    let wants = |n: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == n);
    let mut outputs = Vec::new();
    if wants("structured_output") {
        let data = match objects.as_slice() {
            [one] => one.as_object().cloned().unwrap_or_default(),
            many => {
                let mut m = Map::new();
                m.insert("results".into(), Json::Array(many.to_vec()));
                m
            }
        };
        outputs.push(output("structured_output", data_of(data)));
    }
    if wants("dataframe_output") {
        let rows = objects.iter().map(Json::to_string).collect();
        outputs.push(output("dataframe_output", Value::Table(Table { rows })));
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_rows_become_a_wrapped_json_schema() {
        let table = [
            json!({"name": "title", "description": "d", "type": "str", "multiple": "False"}),
            json!({"name": "tags", "type": "str", "multiple": "True"}),
        ];
        let s = schema(&table, "Item").unwrap();
        assert_eq!(s["properties"]["objects"]["items"]["properties"]["tags"]["type"], "array");
        assert_eq!(s["properties"]["objects"]["minItems"], 1);
        assert!(schema(&[], "x").is_err());
    }

    #[test]
    fn answers_are_unwrapped() {
        assert_eq!(objects(r#"{"objects":[{"a":1}]}"#).unwrap(), [json!({"a": 1})]);
        assert!(objects(r#"{"objects":[]}"#).is_err());
        assert!(objects("nope").is_err());
    }
}
