//! The model's deterministic behaviour: what it answers to a conversation.
//!
//! Rules, in order:
//! 1. The last user message contains `fail with <status>`: the server answers
//!    that HTTP status (an error test).
//! 2. Tools are offered, no tool has answered since the last user message,
//!    and that message says `use <tool>` (optionally followed by a JSON object
//!    of arguments): the model calls each named tool. Without a JSON object
//!    the arguments fill every required string parameter with the message.
//! 3. Tools have answered since the last user message: the model reports
//!    each result as `<tool> returned: <content>`, one per line.
//! 4. A response schema is set: the model answers a JSON document of that
//!    schema. A string property named like the label of a `Label: value`
//!    line of the last user message (case and `_` for space aside) gets that
//!    value, as a model picks fields out of a report; other strings are the
//!    whole message.
//! 5. Otherwise: `You said: <last user message>`.
//!
//! Token counts are whitespace-separated words.

use serde_json::{Map, Value, json};

/// One message of a conversation, in either API's terms.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text content.
    pub content: String,
    /// Tool calls an assistant message made.
    pub tool_calls: Vec<Call>,
    /// For a tool message: the call it answers.
    pub tool_call_id: Option<String>,
}

/// A tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments, a JSON object.
    pub arguments: Value,
}

/// A tool offered to the model.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// What the model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Text.
    Text(String),
    /// Tool calls.
    ToolCalls(Vec<Call>),
    /// An HTTP error status.
    Fail(u16),
}

/// The model's answer to `turns`.
pub fn reply(turns: &[Turn], tools: &[ToolSpec], schema: Option<&Value>) -> Reply {
    let last_user = turns.iter().rposition(|t| t.role == "user");
    let user_text = last_user.map_or("", |i| turns[i].content.as_str());
    if let Some(status) = failure(user_text) {
        return Reply::Fail(status);
    }
    let since_user = last_user.map_or(turns, |i| &turns[i + 1..]);
    let results: Vec<&Turn> = since_user.iter().filter(|t| t.role == "tool").collect();
    if !tools.is_empty() && results.is_empty() {
        let calls = directives(user_text, tools, turns.len());
        if !calls.is_empty() {
            return Reply::ToolCalls(calls);
        }
    }
    if !results.is_empty() {
        let name_of = |id: &Option<String>| {
            since_user
                .iter()
                .flat_map(|t| &t.tool_calls)
                .find(|c| Some(&c.id) == id.as_ref())
                .map_or("tool", |c| c.name.as_str())
        };
        let lines: Vec<String> =
            results.iter().map(|t| format!("{} returned: {}", name_of(&t.tool_call_id), t.content)).collect();
        return Reply::Text(lines.join("\n"));
    }
    if let Some(schema) = schema {
        return Reply::Text(instance(schema, user_text).to_string());
    }
    Reply::Text(format!("You said: {user_text}"))
}

/// Words in `text`: the token count of this model.
pub fn tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

fn failure(text: &str) -> Option<u16> {
    let rest = &text[text.find("fail with ")? + "fail with ".len()..];
    rest.split_whitespace().next()?.parse().ok().filter(|s| (400..600).contains(s))
}

/// Every `use <tool>` in `text`, in order, with its arguments.
fn directives(text: &str, tools: &[ToolSpec], salt: usize) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        rest = &rest[at + 4..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-').collect();
        let Some(tool) = tools.iter().find(|t| t.name == name) else { continue };
        rest = &rest[name.len()..];
        let trimmed = rest.trim_start();
        let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
        let arguments = match stream.next() {
            Some(Ok(Value::Object(object))) => {
                rest = &trimmed[stream.byte_offset()..];
                Value::Object(object)
            }
            _ => default_arguments(&tool.parameters, text),
        };
        calls.push(Call { id: format!("call_{salt}_{}", calls.len()), name: tool.name.clone(), arguments });
    }
    calls
}

fn default_arguments(parameters: &Value, text: &str) -> Value {
    let mut arguments = Map::new();
    let required = parameters.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let schema = parameters.pointer(&format!("/properties/{name}")).cloned().unwrap_or(Value::Null);
        arguments.insert(name.to_owned(), instance(&schema, text));
    }
    Value::Object(arguments)
}

/// The value of the `Label: value` line of `text` labelled `name`, case
/// and `_` for space aside.
fn labelled<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let wanted = name.replace('_', " ").to_lowercase();
    text.lines().find_map(|line| {
        let (label, value) = line.split_once(':')?;
        (label.trim().to_lowercase() == wanted).then(|| value.trim())
    })
}

/// A JSON value of `schema`, strings filled with `text`.
fn instance(schema: &Value, text: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let object: Map<String, Value> = properties
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let is_string = v.get("type").and_then(Value::as_str) == Some("string");
                    match labelled(text, k) {
                        Some(found) if is_string => (k.clone(), json!(found)),
                        _ => (k.clone(), instance(v, text)),
                    }
                })
                .collect();
            Value::Object(object)
        }
        Some("array") => json!([instance(schema.get("items").unwrap_or(&Value::Null), text)]),
        Some("integer") => json!(1),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        _ => json!(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Turn {
        Turn { role: "user".into(), content: text.into(), ..Turn::default() }
    }

    fn calculator() -> ToolSpec {
        ToolSpec {
            name: "evaluate_expression".into(),
            parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
        }
    }

    #[test]
    fn echoes_without_tools() {
        assert_eq!(reply(&[user("hi there")], &[], None), Reply::Text("You said: hi there".into()));
    }

    #[test]
    fn calls_the_named_tool_with_its_json_arguments() {
        let turns = [user(r#"please use evaluate_expression {"expression": "6*7"} now"#)];
        let Reply::ToolCalls(calls) = reply(&turns, &[calculator()], None) else { panic!("expected a tool call") };
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "evaluate_expression");
        assert_eq!(calls[0].arguments, json!({"expression": "6*7"}));
    }

    #[test]
    fn fills_required_arguments_without_json() {
        let turns = [user("use evaluate_expression")];
        let Reply::ToolCalls(calls) = reply(&turns, &[calculator()], None) else { panic!("expected a tool call") };
        assert_eq!(calls[0].arguments, json!({"expression": "use evaluate_expression"}));
    }

    #[test]
    fn reports_tool_results() {
        let call = Call { id: "c1".into(), name: "evaluate_expression".into(), arguments: json!({}) };
        let turns = [
            user("use evaluate_expression"),
            Turn { role: "assistant".into(), tool_calls: vec![call], ..Turn::default() },
            Turn { role: "tool".into(), content: "42".into(), tool_call_id: Some("c1".into()), ..Turn::default() },
        ];
        assert_eq!(reply(&turns, &[calculator()], None), Reply::Text("evaluate_expression returned: 42".into()));
    }

    #[test]
    fn string_fields_are_picked_from_labelled_lines() {
        let schema = json!({"type": "object", "properties": {
            "NET_INCOME": {"type": "string"}, "n": {"type": "integer"}, "other": {"type": "string"}}});
        let text = "Report\nNet Income: USD 1.7 million\nn: 5";
        let Reply::Text(answer) = reply(&[user(text)], &[], Some(&schema)) else { panic!("text") };
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer, json!({"NET_INCOME": "USD 1.7 million", "n": 1, "other": text}));
    }

    #[test]
    fn answers_schemas_and_failures() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}});
        assert_eq!(reply(&[user("x")], &[], Some(&schema)), Reply::Text(r#"{"name":"x","n":1}"#.into()));
        assert_eq!(reply(&[user("now fail with 503")], &[], None), Reply::Fail(503));
    }
}
