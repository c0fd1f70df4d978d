//! Chat Input (`ChatInput`): the user's message, as Langflow's
//! `ChatInput.message_response` builds it, stored in the session's history
//! when `should_store_message` is on and the host keeps history.

use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, as_text, message, output, port, text_or, values};

/// Type name in the library.
pub const NAME: &str = "chat-input";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Chat Input".into(),
        description: "Get chat inputs from the Playground.".into(),
        inputs: vec![
            port("input_value", &[], false),
            port("sender", &[], false),
            port("sender_name", &["Message"], false),
            port("session_id", &["Message"], false),
            port("files", &[], false),
            port("should_store_message", &[], false),
        ],
        outputs: vec![port("message", &["Message"], false)],
    }
}

/// Runs the node: `message` holds `input_value` from `sender`.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let text = text_or(inv, "input_value", "");
    let session = text_or(inv, "session_id", &inv.session_id);
    let mut msg = message(text, &text_or(inv, "sender", "User"), &text_or(inv, "sender_name", "User"), &session);
    msg.files = values(inv, "files").filter_map(as_text).filter(|f| !f.is_empty()).collect();
    crate::history::store_if_asked(inv, &msg)?;
    Ok(vec![output("message", Value::Message(msg))])
}
