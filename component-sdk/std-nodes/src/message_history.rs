//! Message History (`Memory`): Langflow 1.13's `MemoryComponent` over the
//! host's `memory` capability. In `Retrieve` mode it reads the session's
//! last `n_messages` messages, keeps those of the chosen sender type and
//! sender name, orders them (`Ascending`: oldest first), and answers as
//! text (each message through `template`, one per line), as a DataFrame
//! (one row per message) or both. In `Store` mode it stores `message` and
//! answers with it.
//!
//! The host returns at most [`FETCH`] messages per session; Langflow
//! filters in its database before the limit, Sandflow filters those
//! (the same answer for sessions of up to that many messages). The
//! session's messages of the running flow only: the host scopes every
//! call to the run's tenant and agent.

use crate::history::{self, stored_row};
use crate::prompt::render_f_string;
use crate::table_text::python_str;
use sandflow_sdk::host::memory;
use sandflow_sdk::{
    Descriptor, Invocation, Message, NodeError, Output, Table, Value, as_text, capability_message, message, number,
    output, port, text_or, value,
};

/// Type name in the library.
pub const NAME: &str = "message-history";

/// Most messages read from the host per call (its own cap).
pub const FETCH: u32 = 1_000;

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Message History".into(),
        description: "Stores or retrieves stored chat messages.".into(),
        inputs: vec![
            port("mode", &[], false),
            port("message", &["Message"], false),
            port("sender", &[], false),
            port("sender_type", &[], false),
            port("sender_name", &["Message"], false),
            port("n_messages", &[], false),
            port("session_id", &["Message"], false),
            port("order", &[], false),
            port("template", &["Message"], false),
        ],
        outputs: vec![
            port("messages_text", &["Message"], false),
            port("dataframe", &["DataFrame"], false),
            port("stored_messages", &["Message"], false),
        ],
    }
}

/// What to read: Langflow's retrieve parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Keep only this sender (`Machine` or `User`); none keeps both.
    pub sender: Option<String>,
    /// Keep only this sender name.
    pub sender_name: Option<String>,
    /// How many of the newest to keep; none means all fetched.
    pub n_messages: Option<usize>,
    /// Newest first.
    pub descending: bool,
}

impl Query {
    fn from_invocation(inv: &Invocation) -> Self {
        // 1.13's flows call the filter `sender`; the current component
        // `sender_type` (and uses `sender` for what Store mode writes).
        let sender =
            Some(text_or(inv, "sender_type", &text_or(inv, "sender", ""))).filter(|s| s == "Machine" || s == "User");
        Self {
            sender,
            sender_name: Some(text_or(inv, "sender_name", "")).filter(|s| !s.is_empty()),
            // Langflow's default when the field is absent (or hidden in the export).
            n_messages: Some(number(inv, "n_messages").map_or(100, |n| n.max(0.0) as usize)),
            descending: text_or(inv, "order", "Ascending") == "Descending",
        }
    }

    /// Langflow's selection over a session's messages (oldest first):
    /// filter, keep the newest `n_messages`, then order.
    pub fn select(&self, stored: Vec<Message>) -> Vec<Message> {
        if self.n_messages == Some(0) {
            return Vec::new();
        }
        let mut kept: Vec<Message> = stored
            .into_iter()
            .filter(|m| self.sender.as_ref().is_none_or(|s| &m.sender == s))
            .filter(|m| self.sender_name.as_ref().is_none_or(|s| &m.sender_name == s))
            .collect();
        if let Some(n) = self.n_messages {
            kept.drain(..kept.len().saturating_sub(n));
        }
        if self.descending {
            kept.reverse();
        }
        kept
    }
}

/// Langflow's `data_to_text(template, messages)`: each message's data
/// through the f-string `template` (unknown names render empty), joined
/// by newlines.
pub fn messages_text(template: &str, messages: &[Message]) -> Result<String, NodeError> {
    let lines = messages
        .iter()
        .map(|m| {
            let data = history::message_data(m);
            render_f_string(template, |name| data.get(name).map(python_str))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("\n"))
}

/// The messages as Message History's DataFrame.
pub fn messages_table(messages: &[Message]) -> Table {
    Table { rows: messages.iter().map(|m| serde_json::Value::Object(stored_row(m)).to_string()).collect() }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    if text_or(inv, "mode", "Retrieve") == "Store" {
        return store(inv);
    }
    let session = text_or(inv, "session_id", &inv.session_id);
    let query = Query::from_invocation(inv);
    // No session, no history: Langflow would read every session of the
    // flow, which is never what a conversation wants.
    let stored = if query.n_messages == Some(0) || session.is_empty() {
        Vec::new()
    } else {
        memory::history(&session, FETCH)
            .map_err(|e| NodeError::Failed(format!("reading the conversation: {}", capability_message(&e))))?
    };
    let selected = query.select(stored);
    let template = text_or(inv, "template", "{sender_name}: {text}");
    let text = messages_text(&template, &selected)?;
    Ok(vec![
        output("messages_text", Value::Message(message(text, "", "", &session))),
        output("dataframe", Value::Table(messages_table(&selected))),
    ])
}

/// Store mode: Langflow's `store_message`: the message (or text) with the
/// node's session, sender and sender name over its own.
fn store(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let mut msg = match value(inv, "message") {
        Some(Value::Message(m)) => m.clone(),
        Some(other) => message(as_text(other).unwrap_or_default(), "", "", ""),
        None => message(String::new(), "", "", ""),
    };
    msg.session_id = text_or(inv, "session_id", &msg.session_id);
    if msg.session_id.is_empty() {
        msg.session_id = inv.session_id.clone();
    }
    let own_or = |own: &str, default: &str| if own.is_empty() { default.to_owned() } else { own.to_owned() };
    msg.sender = text_or(inv, "sender", &own_or(&msg.sender, "Machine"));
    msg.sender_name = text_or(inv, "sender_name", &own_or(&msg.sender_name, "AI"));
    memory::append(&msg).map_err(|e| {
        NodeError::Failed(format!(
            "No messages were stored. Please ensure that the session ID and sender are properly set. ({})",
            capability_message(&e)
        ))
    })?;
    Ok(vec![output("stored_messages", Value::Message(msg))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str, sender: &str, name: &str) -> Message {
        message(text.into(), sender, name, "s1")
    }

    fn texts(messages: &[Message]) -> Vec<&str> {
        messages.iter().map(|m| m.text.as_str()).collect()
    }

    #[test]
    fn selection_filters_then_keeps_the_newest_then_orders() {
        let all = vec![
            msg("a", "User", "User"),
            msg("b", "Machine", "AI"),
            msg("c", "User", "Ada"),
            msg("d", "Machine", "AI"),
        ];
        let q = Query { sender: None, sender_name: None, n_messages: Some(2), descending: false };
        assert_eq!(texts(&q.select(all.clone())), ["c", "d"]);
        let q = Query { descending: true, ..q };
        assert_eq!(texts(&q.select(all.clone())), ["d", "c"]);
        let q = Query { sender: Some("User".into()), sender_name: None, n_messages: None, descending: false };
        assert_eq!(texts(&q.select(all.clone())), ["a", "c"]);
        let q = Query { sender: None, sender_name: Some("AI".into()), n_messages: Some(0), descending: false };
        assert!(q.select(all).is_empty());
    }

    #[test]
    fn text_goes_through_the_template() {
        let all = [msg("hello", "User", "User"), msg("hi!", "Machine", "AI")];
        assert_eq!(messages_text("{sender_name}: {text}", &all).expect("renders"), "User: hello\nAI: hi!");
        assert_eq!(messages_text("{sender} {nothing}.", &all[..1]).expect("renders"), "User .");
    }
}
