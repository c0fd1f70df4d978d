//! Webhook (`Webhook`): the payload an outside system posted to
//! `/api/v1/webhook/{flow}`, as Langflow's `WebhookComponent.build_data`
//! reads it: a JSON object becomes the Data's fields, any other text is
//! kept under `payload`, and no body is empty Data.

use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, data, output, port, text_or};
use serde_json::{Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "webhook";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Webhook".into(),
        description: "Defines a webhook input for the flow.".into(),
        inputs: vec![port("data", &[], false)],
        outputs: vec![port("output_data", &["Data"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    Ok(vec![output("output_data", data(&payload(&text_or(inv, "data", "")), "text"))])
}

/// The Data fields of a posted body. A JSON value that is not an object
/// (which Langflow's `Data` refuses) is kept as text under `payload` too.
pub fn payload(body: &str) -> Json {
    if body.is_empty() {
        return json!({});
    }
    // Langflow first turns a quoted newline between values into `\n`.
    match serde_json::from_str(&body.replace("\"\n\"", "\"\\n\"")) {
        Ok(fields @ Json::Object(_)) => fields,
        _ => json!({ "payload": body }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_the_fields_and_other_text_is_the_payload() {
        assert_eq!(payload(r#"{"test": 1}"#), json!({"test": 1}));
        assert_eq!(payload("order 42 shipped"), json!({"payload": "order 42 shipped"}));
        assert_eq!(payload(""), json!({}));
        assert_eq!(payload("[1, 2]"), json!({"payload": "[1, 2]"}));
    }
}
