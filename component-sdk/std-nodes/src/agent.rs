//! Agent (`Agent`): a tool-calling loop, as Langflow's agent runs it. The
//! model sees the system prompt, the session's last `n_messages` messages
//! (through the memory capability, when the host offers it), the input and
//! the tools: the nodes wired into `tools` plus, when `add_calculator_tool`
//! is on, a built-in calculator. Each tool call the model makes runs (other
//! nodes through the host's `tools` capability) and its result goes back to
//! the model, until it answers without calling a tool or `max_iterations`
//! model calls have been made.
//!
//! Langflow's `add_current_date_tool` is not offered: guests see no clock,
//! and the current date is not yet a host capability.

use crate::calculator;
use crate::model::{chat, settings};
use sandflow_sdk::host::llm::{self, ChatMessage, CompletionRequest, ToolSpec};
use sandflow_sdk::host::{memory, tools};
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Tool, Value, capability_message, flag, message, number,
    output, port, text_or, values,
};

/// Type name in the library.
pub const NAME: &str = "agent";

/// What the agent answers when it runs out of iterations, as Langflow's does.
pub const STOPPED: &str = "Agent stopped due to max iterations.";

const CALCULATOR_TOOL: &str = "evaluate_expression";

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
        ],
        outputs: vec![port("response", &["Message"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let model = settings(inv);
    let wired: Vec<Tool> = values(inv, "tools")
        .flat_map(|v| match v {
            Value::Tools(tools) => tools.clone(),
            _ => Vec::new(),
        })
        .collect();
    let builtin_calculator =
        flag(inv, "add_calculator_tool", false) && !wired.iter().any(|t| t.name == CALCULATOR_TOOL);
    let mut specs: Vec<ToolSpec> = wired
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .collect();
    if builtin_calculator {
        specs.push(ToolSpec {
            name: CALCULATOR_TOOL.into(),
            description: "Perform basic arithmetic operations on a given expression.".into(),
            parameters: r#"{"type":"object","properties":{"expression":{"type":"string","description":"The arithmetic expression to evaluate (e.g., '4*4*(33/22)+12-20')."}},"required":["expression"]}"#.into(),
        });
    }

    let mut messages = Vec::new();
    let system = text_or(inv, "system_prompt", "");
    if !system.is_empty() {
        messages.push(chat("system", system));
    }
    messages.extend(history(inv)?);
    messages.push(chat("user", text_or(inv, "input_value", "")));

    let max_iterations = number(inv, "max_iterations").map_or(15, |n| n.clamp(1.0, 100.0) as u32);
    let mut answer = None;
    for _ in 0..max_iterations {
        let request = CompletionRequest {
            model: model.clone(),
            messages: messages.clone(),
            tools: specs.clone(),
            stream_tokens: true,
            response_schema: None,
        };
        let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
        let reply = completion.message;
        if reply.tool_calls.is_empty() {
            answer = Some(reply.content);
            break;
        }
        let calls = reply.tool_calls.clone();
        messages.push(ChatMessage { role: "assistant".into(), ..reply });
        for call in calls {
            let result = if builtin_calculator && call.name == CALCULATOR_TOOL {
                calculate(&call.arguments)
            } else {
                match wired.iter().find(|t| t.name == call.name) {
                    Some(tool) => tools::call(&tool.node_id, &tool.name, &call.arguments)
                        .unwrap_or_else(|e| format!("Error: {}", capability_message(&e))),
                    None => format!("Error: there is no tool named `{}`", call.name),
                }
            };
            messages.push(ChatMessage {
                role: "tool".into(),
                content: result,
                tool_calls: Vec::new(),
                tool_call_id: Some(call.id),
            });
        }
    }
    let text = answer.unwrap_or_else(|| STOPPED.to_owned());
    Ok(vec![output("response", Value::Message(message(text, "Machine", "AI", &inv.session_id)))])
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
