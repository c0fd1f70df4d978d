//! Agent (`Agent`): a tool-calling loop, as Langflow's agent runs it. The
//! model sees the system prompt, the session's last `n_messages` messages
//! (through the memory capability, when the host offers it), the input and
//! the tools: the nodes wired into `tools`, then Langflow's built-in tools
//! the flow turns on: `get_current_date` (`add_current_date_tool`, through
//! the host's `calendar`) and `evaluate_expression` (`add_calculator_tool`).
//! Each tool call the model makes runs (other nodes through the host's
//! `tools` capability) and its result goes back to the model, until it
//! answers without calling a tool or `max_iterations` model calls have been
//! made.
//!
//! `structured_response` answers Data of the `output_schema` table, as
//! Langflow's `json_response` does: without tools, one model call with the
//! schema enforced by the provider; with tools, the loop runs with the
//! schema and `format_instructions` added to the system prompt, and the
//! JSON is taken from its answer. Records come out of their `objects`
//! envelope: one record is the Data, several are `{"results": [...]}`; a
//! record that does not fit the schema is `{"data", "validation_error"}`,
//! and a failure is `{"content": "", "error": …}`, never a failed run.

use crate::model::{chat, settings};
use crate::parser::data_of;
use crate::structured_output::{self, Field};
use crate::{calculator, current_date};
use sandflow_sdk::host::llm::{self, ChatMessage, CompletionRequest, ToolCall, ToolSpec};
use sandflow_sdk::host::{memory, tools};
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Tool, Value, capability_message, flag, message, number,
    output, port, text_or, values,
};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "agent";

/// What the agent answers when it runs out of iterations, as Langflow's does.
pub const STOPPED: &str = "Agent stopped due to max iterations.";

const CALCULATOR_TOOL: &str = "evaluate_expression";

/// What Langflow answers when no JSON is found in the agent's answer.
const NO_JSON: &str = "Try setting an output schema";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Agent".into(),
        description: "Define the agent's instructions, then enter a task to complete using tools.".into(),
        inputs: vec![
            port("input_value", &["Message"], false),
            port("system_prompt", &["Message"], false),
            port("tools", &["Tool"], false),
            port("model", &["LanguageModel"], false),
            port("max_iterations", &[], false),
            port("n_messages", &[], false),
            port("add_calculator_tool", &[], false),
            port("add_current_date_tool", &[], false),
            port("output_schema", &[], false),
            port("format_instructions", &[], false),
        ],
        outputs: vec![port("response", &["Message"], false), port("structured_response", &["Data"], false)],
    }
}

/// Runs the node: `response` unless only `structured_response` is wanted.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let toolbox = Toolbox::of(inv);
    let wants = |name: &str| inv.wanted.iter().any(|w| w == name);
    let mut outputs = Vec::new();
    if inv.wanted.is_empty() || wants("response") {
        let text = converse(inv, &toolbox, text_or(inv, "system_prompt", ""), true)?;
        outputs.push(output("response", Value::Message(message(text, "Machine", "AI", &inv.session_id))));
    }
    if wants("structured_response") {
        let data = structured_response(inv, &toolbox).unwrap_or_else(|error| {
            let mut failed = Map::new();
            failed.insert("content".into(), Json::String(String::new()));
            failed.insert("error".into(), Json::String(error));
            failed
        });
        outputs.push(output("structured_response", data_of(data)));
    }
    Ok(outputs)
}

/// A tool Langflow's Agent adds itself when the flow asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    CurrentDate,
    Calculator,
}

impl Builtin {
    fn name(self) -> &'static str {
        match self {
            Builtin::CurrentDate => current_date::TOOL_NAME,
            Builtin::Calculator => CALCULATOR_TOOL,
        }
    }

    fn spec(self) -> ToolSpec {
        let (description, parameters) = match self {
            Builtin::CurrentDate => (current_date::TOOL_DESCRIPTION, current_date::TOOL_PARAMETERS),
            Builtin::Calculator => (
                "Perform basic arithmetic operations on a given expression.",
                r#"{"type":"object","properties":{"expression":{"type":"string","description":"The arithmetic expression to evaluate (e.g., '4*4*(33/22)+12-20')."}},"required":["expression"]}"#,
            ),
        };
        ToolSpec { name: self.name().into(), description: description.into(), parameters: parameters.into() }
    }

    fn call(self, arguments: &str) -> String {
        match self {
            Builtin::CurrentDate => current_date::call(arguments),
            Builtin::Calculator => calculate(arguments),
        }
    }
}

/// The tools the model is offered: the wired nodes first, then the
/// built-in ones in Langflow's order, each left out when a wired tool
/// already has its name.
struct Toolbox {
    wired: Vec<Tool>,
    builtins: Vec<Builtin>,
}

impl Toolbox {
    fn of(inv: &Invocation) -> Self {
        let wired: Vec<Tool> = values(inv, "tools")
            .flat_map(|v| match v {
                Value::Tools(tools) => tools.clone(),
                _ => Vec::new(),
            })
            .collect();
        let builtins = [(Builtin::CurrentDate, "add_current_date_tool"), (Builtin::Calculator, "add_calculator_tool")]
            .into_iter()
            .filter(|(builtin, field)| flag(inv, field, false) && !wired.iter().any(|t| t.name == builtin.name()))
            .map(|(builtin, _)| builtin)
            .collect();
        Toolbox { wired, builtins }
    }

    fn is_empty(&self) -> bool {
        self.wired.is_empty() && self.builtins.is_empty()
    }

    fn specs(&self) -> Vec<ToolSpec> {
        let wired = self.wired.iter().map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        });
        wired.chain(self.builtins.iter().map(|b| b.spec())).collect()
    }

    /// The result of `call`, as text for the model; failures are text too.
    fn call(&self, call: &ToolCall) -> String {
        if let Some(builtin) = self.builtins.iter().find(|b| b.name() == call.name) {
            return builtin.call(&call.arguments);
        }
        match self.wired.iter().find(|t| t.name == call.name) {
            Some(tool) => tools::call(&tool.node_id, &tool.name, &call.arguments)
                .unwrap_or_else(|e| format!("Error: {}", capability_message(&e))),
            None => format!("Error: there is no tool named `{}`", call.name),
        }
    }
}

/// The tool-calling loop under `system`: the model's final answer, or
/// [`STOPPED`] after `max_iterations` model calls.
fn converse(inv: &Invocation, toolbox: &Toolbox, system: String, stream_tokens: bool) -> Result<String, NodeError> {
    let model = settings(inv);
    let specs = toolbox.specs();
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(chat("system", system));
    }
    messages.extend(history(inv)?);
    messages.push(chat("user", text_or(inv, "input_value", "")));

    let max_iterations = number(inv, "max_iterations").map_or(15, |n| n.clamp(1.0, 100.0) as u32);
    for _ in 0..max_iterations {
        let request = CompletionRequest {
            model: model.clone(),
            messages: messages.clone(),
            tools: specs.clone(),
            stream_tokens,
            response_schema: None,
        };
        let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
        let reply = completion.message;
        if reply.tool_calls.is_empty() {
            return Ok(reply.content);
        }
        let calls = reply.tool_calls.clone();
        messages.push(ChatMessage { role: "assistant".into(), ..reply });
        for call in calls {
            messages.push(ChatMessage {
                role: "tool".into(),
                content: toolbox.call(&call),
                tool_calls: Vec::new(),
                tool_call_id: Some(call.id),
            });
        }
    }
    Ok(STOPPED.to_owned())
}

/// `structured_response`: the records of the `output_schema` table the
/// model extracted from the input (see the module's description).
fn structured_response(inv: &Invocation, toolbox: &Toolbox) -> Result<Map<String, Json>, String> {
    let input = text_or(inv, "input_value", "");
    let fields = structured_output::table_fields(inv);
    if fields.is_empty() {
        let mut echoed = Map::new();
        echoed.insert("content".into(), Json::String(input));
        return Ok(echoed);
    }
    let key = envelope_key(&fields);
    let schema = structured_output::envelope(
        structured_output::record_schema(&fields),
        &key,
        "A list of extracted records.",
        "Every record that matches the schema.",
    );
    let system = text_or(inv, "system_prompt", "");
    let answer = if toolbox.is_empty() {
        structured_output::ask_for_json(inv, system, input, &schema).map_err(|e| capability_message(&e))?
    } else {
        let prompt = augmented_prompt(&system, &text_or(inv, "format_instructions", ""), &schema);
        converse(inv, toolbox, prompt, false).map_err(|e| match e {
            NodeError::InvalidInput(m) | NodeError::Failed(m) => m,
        })?
    };
    let Some(parsed) = structured_output::extract_json(&answer) else {
        let mut unparsed = Map::new();
        unparsed.insert("content".into(), Json::String(answer));
        unparsed.insert("error".into(), Json::String(NO_JSON.into()));
        return Ok(unparsed);
    };
    Ok(records(parsed, &key, &fields))
}

/// The envelope's key: `objects`, lengthened until no field has its name.
fn envelope_key(fields: &[Field]) -> String {
    let mut key = String::from("objects");
    while fields.iter().any(|f| f.name == key) {
        key.push('_');
    }
    key
}

/// Langflow's fallback prompt: the system prompt, the format instructions
/// and the schema the answer must follow.
fn augmented_prompt(system: &str, format_instructions: &str, schema: &Json) -> String {
    let mut parts = Vec::new();
    if !system.is_empty() {
        parts.push(system.to_owned());
    }
    if !format_instructions.is_empty() {
        parts.push(format!("Format instructions: {format_instructions}"));
    }
    let schema = serde_json::to_string_pretty(schema).unwrap_or_default();
    parts.push(format!(
        "You must respond ONLY with a JSON object matching this schema. \
         Do not include explanations, markdown, or any text outside the JSON.\nSchema:\n{schema}"
    ));
    parts.join("\n\n")
}

/// The answer's records, out of their envelope and checked against the
/// schema: one record is the Data, several are `{"results": [...]}`.
fn records(parsed: Json, key: &str, fields: &[Field]) -> Map<String, Json> {
    let items = match parsed {
        Json::Object(mut o) if o.get(key).is_some_and(Json::is_array) => match o.shift_remove(key) {
            Some(Json::Array(items)) => items,
            _ => Vec::new(),
        },
        Json::Array(items) => items,
        one => vec![one],
    };
    let mut checked: Vec<Json> = items
        .into_iter()
        .map(|item| match structured_output::validate(&item, fields) {
            Ok(record) => Json::Object(record),
            Err(e) => json!({"data": item, "validation_error": e}),
        })
        .collect();
    if let [Json::Object(_)] = checked.as_slice()
        && let Some(Json::Object(one)) = checked.pop()
    {
        return one;
    }
    let mut many = Map::new();
    many.insert("results".into(), Json::Array(checked));
    many
}

/// The session's last `n_messages` messages, as chat turns, without the
/// input itself: Chat Input stored it before the agent runs, and Langflow
/// leaves the input's own message (by id) out of the history. Sandflow's
/// messages carry no id, so the newest stored message equal to the input
/// message is the one left out. A host without memory means no history.
fn history(inv: &Invocation) -> Result<Vec<ChatMessage>, NodeError> {
    let limit = number(inv, "n_messages").map_or(100, |n| n.clamp(0.0, 10_000.0) as u32);
    if limit == 0 {
        return Ok(Vec::new());
    }
    match memory::history(&inv.session_id, limit) {
        Ok(mut stored) => {
            if let Some(Value::Message(input)) = sandflow_sdk::value(inv, "input_value") {
                let same = |m: &sandflow_sdk::Message| {
                    (&m.text, &m.sender, &m.sender_name, &m.session_id)
                        == (&input.text, &input.sender, &input.sender_name, &input.session_id)
                };
                if let Some(at) = stored.iter().rposition(same) {
                    stored.remove(at);
                }
            }
            Ok(stored
                .into_iter()
                .map(|m| chat(if m.sender == "User" { "user" } else { "assistant" }, m.text))
                .collect())
        }
        Err(CapabilityError::NotConfigured(_)) => Ok(Vec::new()),
        Err(e) => Err(NodeError::Failed(format!("reading the conversation: {}", capability_message(&e)))),
    }
}

/// The built-in calculator tool, answering as the Calculator node's Data.
fn calculate(arguments: &str) -> String {
    let expression = serde_json::from_str::<serde_json::Value>(arguments)
        .ok()
        .and_then(|a| a.get("expression").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_default();
    match calculator::evaluate(&expression) {
        Ok(v) => serde_json::json!({ "result": calculator::format_result(v) }).to_string(),
        Err(e) => serde_json::json!({ "error": e, "input": expression }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_fields() -> Vec<Field> {
        structured_output::fields(&[
            json!({"name": "REVENUE", "type": "str", "multiple": "False"}),
            json!({"name": "COMPANY", "type": "str"}),
        ])
    }

    #[test]
    fn one_record_is_the_data_and_several_are_results() {
        let f = report_fields();
        let one = records(json!({"objects": [{"COMPANY": "N", "REVENUE": "1", "x": 0}]}), "objects", &f);
        assert_eq!(Json::Object(one), json!({"REVENUE": "1", "COMPANY": "N"}));
        let bare = records(json!({"COMPANY": "N", "REVENUE": "1"}), "objects", &f);
        assert_eq!(Json::Object(bare), json!({"REVENUE": "1", "COMPANY": "N"}));
        let many = records(json!([{"COMPANY": "A", "REVENUE": "1"}, {"COMPANY": "B"}]), "objects", &f);
        assert_eq!(many["results"][0], json!({"REVENUE": "1", "COMPANY": "A"}));
        assert_eq!(many["results"][1]["validation_error"], "REVENUE: Field required");
        assert_eq!(many["results"][1]["data"], json!({"COMPANY": "B"}));
    }

    #[test]
    fn the_envelope_key_never_collides_with_a_field() {
        assert_eq!(envelope_key(&report_fields()), "objects");
        let f = structured_output::fields(&[json!({"name": "objects"}), json!({"name": "objects_"})]);
        assert_eq!(envelope_key(&f), "objects__");
    }

    #[test]
    fn the_fallback_prompt_carries_the_instructions_and_the_schema() {
        let prompt = augmented_prompt("Be exact.", "One object.", &json!({"type": "object"}));
        assert!(
            prompt.starts_with("Be exact.\n\nFormat instructions: One object.\n\nYou must respond ONLY"),
            "{prompt}"
        );
        assert!(prompt.ends_with("Schema:\n{\n  \"type\": \"object\"\n}"), "{prompt}");
        assert!(augmented_prompt("", "", &json!({})).starts_with("You must respond ONLY"));
    }
}
