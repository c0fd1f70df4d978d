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
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Table, Value, capability_message, output, port, value,
};
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

/// One row of an `output_schema` table, normalised as Langflow's
/// `preprocess_schema` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Field name (`field` when the row has none).
    pub name: String,
    /// `str`, `int`, `float`, `bool` or `dict`; anything else is a string.
    pub kind: String,
    /// What the model is told the field holds.
    pub description: String,
    /// A list of values rather than one.
    pub multiple: bool,
}

/// The rows of an `output_schema` table (a JSON array of objects).
pub fn fields(table: &[Json]) -> Vec<Field> {
    table
        .iter()
        .map(|row| {
            let text = |key: &str, default: &str| match row.get(key) {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Null) | None => default.to_owned(),
                Some(other) => other.to_string(),
            };
            let multiple = match row.get("multiple") {
                Some(Json::Bool(b)) => *b,
                Some(Json::String(s)) => matches!(s.trim().to_lowercase().as_str(), "true" | "1" | "t" | "y" | "yes"),
                Some(Json::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
                _ => false,
            };
            Field {
                name: text("name", "field"),
                kind: text("type", "str"),
                description: text("description", ""),
                multiple,
            }
        })
        .collect()
}

/// The `output_schema` table of `inv`, as fields.
pub fn table_fields(inv: &Invocation) -> Vec<Field> {
    match value(inv, "output_schema") {
        Some(Value::Json(j)) => {
            serde_json::from_str::<Json>(j).ok().and_then(|v| v.as_array().map(|rows| fields(rows))).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The JSON Schema of one record (`build_model_from_schema`): every field
/// required, typed, a list of that type when `multiple` is on.
pub fn record_schema(fields: &[Field]) -> Json {
    let mut properties = Map::new();
    for field in fields {
        let kind = match field.kind.as_str() {
            "int" => json!({"type": "integer"}),
            "float" => json!({"type": "number"}),
            "bool" | "boolean" => json!({"type": "boolean"}),
            "dict" => json!({"type": "object"}),
            _ => json!({"type": "string"}),
        };
        let mut property = if field.multiple { json!({"type": "array", "items": kind}) } else { kind };
        if let Json::Object(p) = &mut property {
            p.insert("description".into(), Json::String(field.description.clone()));
        }
        properties.insert(field.name.clone(), property);
    }
    let required: Vec<Json> = fields.iter().map(|f| Json::String(f.name.clone())).collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The envelope the records come in: `{key: [record, …]}`, at least one.
pub fn envelope(record: Json, key: &str, description: &str, list_description: &str) -> Json {
    json!({
        "type": "object",
        "description": description,
        "properties": {
            key: {"type": "array", "description": list_description, "minItems": 1, "items": record}
        },
        "required": [key],
    })
}

/// The JSON Schema of the `output_schema` table, wrapped as Structured
/// Output wraps it: `{"objects": [<name>, …]}`.
pub fn schema(table: &[Json], name: &str) -> Result<Json, String> {
    if table.is_empty() {
        return Err("Output schema cannot be empty".into());
    }
    let description = format!("A list of {name}.");
    Ok(envelope(record_schema(&fields(table)), "objects", &description, &description))
}

/// `item` checked against the record's fields, as pydantic's
/// `model_validate(item).model_dump()`: every field present and of its
/// type (numbers and booleans also from their text), fields outside the
/// schema dropped. Failing, it names the first field that does not fit.
pub fn validate(item: &Json, fields: &[Field]) -> Result<Map<String, Json>, String> {
    let Json::Object(object) = item else {
        return Err(format!("the record is not an object: {item}"));
    };
    let mut record = Map::new();
    for field in fields {
        let value = object.get(&field.name).ok_or_else(|| format!("{}: Field required", field.name))?;
        let checked = if field.multiple {
            match value {
                Json::Array(items) => {
                    items.iter().map(|v| coerce(v, &field.kind)).collect::<Option<Vec<_>>>().map(Json::Array)
                }
                _ => None,
            }
        } else {
            coerce(value, &field.kind)
        };
        let checked = checked.ok_or_else(|| format!("{}: expected {}, got {value}", field.name, field.kind))?;
        record.insert(field.name.clone(), checked);
    }
    Ok(record)
}

/// `value` as a value of `kind`, as pydantic's lax mode takes it.
fn coerce(value: &Json, kind: &str) -> Option<Json> {
    match (kind, value) {
        ("int", Json::Number(n)) if n.is_i64() || n.is_u64() => Some(value.clone()),
        ("int", Json::Number(n)) => n.as_f64().filter(|f| f.fract() == 0.0).map(|f| json!(f as i64)),
        ("int", Json::String(s)) => s.trim().parse::<i64>().ok().map(Json::from),
        ("float", Json::Number(_)) => Some(value.clone()),
        ("float", Json::String(s)) => s.trim().parse::<f64>().ok().map(Json::from),
        ("bool" | "boolean", Json::Bool(_)) => Some(value.clone()),
        ("bool" | "boolean", Json::String(s)) => match s.trim().to_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Some(Json::Bool(true)),
            "false" | "0" | "no" | "n" | "off" | "f" => Some(Json::Bool(false)),
            _ => None,
        },
        ("dict", Json::Object(_)) => Some(value.clone()),
        ("int" | "float" | "bool" | "boolean" | "dict", _) => None,
        (_, Json::String(_)) => Some(value.clone()),
        _ => None,
    }
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

/// The first JSON object or array in `text` (the whole text, or from the
/// first `{` or `[` where one parses), as Langflow's
/// `extract_json_from_text` finds it in a model's free-text answer.
pub fn extract_json(text: &str) -> Option<Json> {
    let structured = |v: Json| matches!(v, Json::Object(_) | Json::Array(_)).then_some(v);
    if let Some(whole) = serde_json::from_str::<Json>(text).ok().and_then(structured) {
        return Some(whole);
    }
    text.match_indices(['{', '[']).find_map(|(at, _)| {
        let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Json>();
        values.next()?.ok().and_then(structured)
    })
}

/// One model call whose answer the provider holds to `schema`: the system
/// prompt (when there is one) and `input`, no tools, nothing streamed.
/// Returns the answer's text.
pub fn ask_for_json(inv: &Invocation, system: String, input: String, schema: &Json) -> Result<String, CapabilityError> {
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(chat("system", system));
    }
    messages.push(chat("user", input));
    let request = CompletionRequest {
        model: settings(inv),
        messages,
        tools: Vec::new(),
        stream_tokens: false,
        response_schema: Some(schema.to_string()),
    };
    Ok(llm::complete(&request)?.message.content)
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let name = match text_field(inv, "schema_name", "") {
        n if n.is_empty() => "OutputModel".to_owned(),
        n => n,
    };
    let fields = table_fields(inv);
    if fields.is_empty() {
        return Err(NodeError::InvalidInput("Output schema cannot be empty".into()));
    }
    let description = format!("A list of {name}.");
    let schema = envelope(record_schema(&fields), "objects", &description, &description);
    let system = text_field(inv, "system_prompt", DEFAULT_SYSTEM_PROMPT);
    let answer = ask_for_json(inv, system, text_field(inv, "input_value", ""), &schema)
        .map_err(|e| NodeError::Failed(capability_message(&e)))?;
    let objects = objects(&answer).map_err(NodeError::Failed)?;
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
    fn records_are_validated_as_pydantic_would() {
        let table = [
            json!({"name": "name", "type": "str"}),
            json!({"name": "age", "type": "int"}),
            json!({"name": "tags", "type": "str", "multiple": "yes"}),
        ];
        let f = fields(&table);
        let ok = validate(&json!({"tags": ["a"], "age": "42", "name": "Ada", "extra": 1}), &f).unwrap();
        assert_eq!(Json::Object(ok), json!({"name": "Ada", "age": 42, "tags": ["a"]}));
        assert_eq!(validate(&json!({"name": "Ada", "tags": []}), &f).unwrap_err(), "age: Field required");
        assert!(validate(&json!({"name": 7, "age": 1, "tags": []}), &f).unwrap_err().starts_with("name: expected str"));
        assert!(validate(&json!({"name": "x", "age": 1.5, "tags": []}), &f).is_err());
        assert!(validate(&json!([1]), &f).is_err());
    }

    #[test]
    fn json_is_found_inside_free_text() {
        assert_eq!(extract_json(r#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(extract_json("Sure! Here it is: [1, 2] and more {x"), Some(json!([1, 2])));
        assert_eq!(extract_json("```json\n{\"objects\": [{\"a\": 1}]}\n```"), Some(json!({"objects": [{"a": 1}]})));
        assert_eq!(extract_json("no {json here"), None);
        assert_eq!(extract_json("42"), None);
    }

    #[test]
    fn answers_are_unwrapped() {
        assert_eq!(objects(r#"{"objects":[{"a":1}]}"#).unwrap(), [json!({"a": 1})]);
        assert!(objects(r#"{"objects":[]}"#).is_err());
        assert!(objects("nope").is_err());
    }
}
