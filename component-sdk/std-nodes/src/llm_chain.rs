//! LLM Chain (`LLMChain`, and the pre-1.0 chains built on it such as
//! `TimeTravelGuideChain`): LangChain's `LLMChain` as pre-1.0 Langflow
//! flows use it. The compiler folds the chain's prompt template, its model
//! and its `ConversationBufferMemory` into this one node (see the
//! compiler's `legacy` module), because in LangChain they are objects the
//! chain calls, not steps of the graph.
//!
//! A run does what `LLMChain.invoke` does with a buffer memory:
//! 1. the memory's variable (`memory_key`, usually `history`) is the
//!    session's earlier turns, one line each, `Human: …` / `AI: …`
//!    (`get_buffer_string` with the memory's prefixes); this turn is not
//!    in it yet;
//! 2. the prompt's other variables come from their fields, and the one
//!    named by `input_key` from the run's input when no edge fills it;
//! 3. the rendered prompt goes to the model as one user message;
//! 4. with memory, the turn is saved: the input as the user's message,
//!    the answer as the AI's (`save_context`).
//!
//! The answer is the `text` output.

use crate::model::{chat, settings};
use crate::prompt::render_f_string;
use sandflow_sdk::host::{llm, memory};
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, Message, NodeError, Output, Value, as_text, capability_message, message,
    output, port, text_or, value,
};

/// Type name in the library.
pub const NAME: &str = "llm-chain";

/// The fields the node reads for itself; a prompt variable may not use
/// these names (the compiler refuses such a flow).
pub const OWN_FIELDS: &[&str] =
    &["template", "model", "input_value", "input_key", "memory_key", "human_prefix", "ai_prefix"];

/// Most earlier messages put into the prompt (the host's cap per read).
const HISTORY: u32 = 1_000;

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "LLM Chain".into(),
        description:
            "Formats a prompt with the input and the conversation so far and calls a model (LangChain's LLMChain)."
                .into(),
        inputs: vec![
            port("template", &[], true),
            port("model", &["LanguageModel"], false),
            port("input_value", &["Message"], false),
            port("input_key", &[], false),
            port("memory_key", &[], false),
            port("human_prefix", &[], false),
            port("ai_prefix", &[], false),
        ],
        outputs: vec![port("text", &["Message"], false)],
    }
}

/// The chain's memory: where it puts the conversation and how it names
/// the two sides.
struct Memory {
    key: String,
    human: String,
    ai: String,
}

impl Memory {
    fn of(inv: &Invocation) -> Option<Self> {
        let key = text_or(inv, "memory_key", "");
        (!key.is_empty()).then(|| Self {
            key,
            human: text_or(inv, "human_prefix", "Human"),
            ai: text_or(inv, "ai_prefix", "AI"),
        })
    }

    /// LangChain's `get_buffer_string`: `Human: …` and `AI: …` lines.
    fn buffer(&self, messages: &[Message]) -> String {
        let line = |m: &Message| {
            let prefix = if m.sender == "User" { &self.human } else { &self.ai };
            format!("{prefix}: {}", m.text)
        };
        messages.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let memory = Memory::of(inv);
    let session = inv.session_id.clone();
    let history = match &memory {
        Some(m) if !session.is_empty() => m.buffer(&earlier_turns(&session)?),
        _ => String::new(),
    };
    let input_key = text_or(inv, "input_key", "");
    let input = match value(inv, &input_key).and_then(as_text).filter(|t| !t.is_empty()) {
        Some(fed) => fed,
        None => text_or(inv, "input_value", ""),
    };
    let variable = |name: &str| {
        if memory.as_ref().is_some_and(|m| m.key == name) {
            Some(history.clone())
        } else if name == input_key {
            Some(input.clone())
        } else {
            value(inv, name).and_then(as_text)
        }
    };
    let prompt = render_f_string(&text_or(inv, "template", ""), variable)?;
    let request = llm::CompletionRequest {
        model: settings(inv),
        messages: vec![chat("user", prompt)],
        tools: Vec::new(),
        stream_tokens: true,
        response_schema: None,
    };
    let completion = llm::complete(&request).map_err(|e| NodeError::Failed(capability_message(&e)))?;
    let answer = completion.message.content;
    if memory.is_some() && !session.is_empty() {
        save(message(input, "User", "User", &session))?;
        save(message(answer.clone(), "Machine", "AI", &session))?;
    }
    Ok(vec![output("text", Value::Message(message(answer, "Machine", "AI", &session)))])
}

/// The session's messages so far; none when the host keeps no history.
fn earlier_turns(session: &str) -> Result<Vec<Message>, NodeError> {
    match memory::history(session, HISTORY) {
        Ok(messages) => Ok(messages),
        Err(CapabilityError::NotConfigured(_)) => Ok(Vec::new()),
        Err(e) => Err(NodeError::Failed(format!("reading the conversation: {}", capability_message(&e)))),
    }
}

fn save(turn: Message) -> Result<(), NodeError> {
    match memory::append(&turn) {
        Ok(()) | Err(CapabilityError::NotConfigured(_)) => Ok(()),
        Err(e) => Err(NodeError::Failed(format!("saving the conversation: {}", capability_message(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_names_each_side_with_its_prefix() {
        let memory = Memory { key: "history".into(), human: "Human".into(), ai: "AI".into() };
        let turns = [message("hi".into(), "User", "User", "s"), message("hello!".into(), "Machine", "AI", "s")];
        assert_eq!(memory.buffer(&turns), "Human: hi\nAI: hello!");
        assert_eq!(memory.buffer(&[]), "");
    }
}
