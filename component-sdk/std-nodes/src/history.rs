//! Chat history through the host's `memory` capability, shared by the
//! nodes that store messages (Chat Input, Chat Output, Message History)
//! and read them (Message History), and Langflow's view of a message as a
//! row of data.
//!
//! A host without memory is not an error for a node that merely stores
//! what it passes along: the flow runs as it did, without history.

use sandflow_sdk::host::memory;
use sandflow_sdk::{CapabilityError, Invocation, Message, NodeError, capability_message, flag};
use serde_json::{Map, Value as Json, json};

/// Stores `message` when the node's `should_store_message` field is on
/// (its Langflow default) and the message has a session, as Langflow's
/// chat components do. A host without memory stores nothing.
pub fn store_if_asked(inv: &Invocation, message: &Message) -> Result<(), NodeError> {
    if !flag(inv, "should_store_message", true) || message.session_id.is_empty() {
        return Ok(());
    }
    match memory::append(message) {
        Ok(()) | Err(CapabilityError::NotConfigured(_)) => Ok(()),
        Err(e) => Err(NodeError::Failed(format!("storing the message: {}", capability_message(&e)))),
    }
}

/// What the store says about a message it returned (`properties.stored`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The store's id of the message.
    pub id: String,
    /// When it was stored, as Langflow prints timestamps.
    pub timestamp: String,
}

/// A message's properties object, and what the store added to it.
pub fn split_properties(message: &Message) -> (Map<String, Json>, Option<Stored>) {
    let mut properties: Map<String, Json> = serde_json::from_str(&message.properties).unwrap_or_default();
    let stored = properties.remove("stored").map(|s| Stored {
        id: s.get("id").and_then(Json::as_str).unwrap_or_default().to_owned(),
        timestamp: s.get("timestamp").and_then(Json::as_str).unwrap_or_default().to_owned(),
    });
    (properties, stored)
}

/// Langflow's `Properties` of a message: its defaults, in its field
/// order, with what the message sets over them.
fn langflow_properties(own: Map<String, Json>) -> Json {
    let mut properties = json!({
        "text_color": null,
        "background_color": null,
        "edited": false,
        "source": {"id": null, "display_name": null, "source": null},
        "icon": null,
        "allow_markdown": false,
        "positive_feedback": null,
        "state": "complete",
        "targets": [],
        "usage": null,
        "build_duration": null,
    });
    if let Json::Object(defaults) = &mut properties {
        defaults.extend(own);
    }
    properties
}

/// A message as a row of Langflow's message table, with its columns in
/// the order Langflow lists a stored message's (what Message History's
/// DataFrame holds). Columns Sandflow does not track (`flow_id`, `run_id`,
/// `user_id`: the host keeps runs and owners to itself) are empty.
pub fn stored_row(message: &Message) -> Map<String, Json> {
    let (properties, stored) = split_properties(message);
    let stored = stored.unwrap_or_default();
    let row = json!({
        "sender_name": message.sender_name,
        "context_id": "",
        "timestamp": stored.timestamp,
        "error": false,
        "edit": false,
        "flow_id": null,
        "run_id": null,
        "is_output": false,
        "category": "message",
        "sender": message.sender,
        "session_id": message.session_id,
        "text": message.text,
        "id": stored.id,
        "user_id": null,
        "files": message.files,
        "properties": langflow_properties(properties),
        "content_blocks": [],
        "session_metadata": {},
        "duration": null,
    });
    match row {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

/// A message as Langflow's `Message.data` (what Type Convert makes of it):
/// the fields of a message built in this run, in Langflow's order.
pub fn message_data(message: &Message) -> Map<String, Json> {
    let (properties, stored) = split_properties(message);
    let row = json!({
        "text": message.text,
        "sender": message.sender,
        "sender_name": message.sender_name,
        "session_id": message.session_id,
        "files": message.files,
        "context_id": "",
        "run_id": null,
        "timestamp": stored.map(|s| Json::String(s.timestamp)).unwrap_or(Json::Null),
        "flow_id": null,
        "error": false,
        "edit": false,
        "properties": langflow_properties(properties),
        "category": "message",
        "content_blocks": [],
        "duration": null,
        "session_metadata": null,
    });
    match row {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_metadata_leaves_the_properties() {
        let mut m = sandflow_sdk::message("hi".into(), "User", "User", "s1");
        m.properties = r#"{"icon":"x","stored":{"id":"42","timestamp":"2024-05-01 09:30:00.123000 UTC"}}"#.into();
        let (props, stored) = split_properties(&m);
        assert_eq!(Json::Object(props), json!({"icon": "x"}));
        assert_eq!(stored.expect("stored").id, "42");
        let row = stored_row(&m);
        assert_eq!(row["timestamp"], "2024-05-01 09:30:00.123000 UTC");
        assert_eq!(row["properties"]["icon"], "x");
        assert_eq!(row["properties"]["state"], "complete");
        assert_eq!(row.keys().next().map(String::as_str), Some("sender_name"));
    }
}
