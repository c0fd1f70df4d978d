//! Message to Data (`MessagetoData`): a Message as Data holding the
//! message's fields (`Data(data=message.data)`); anything else as Data
//! holding Langflow's error text, as Langflow 1.13 does.

use crate::history::message_data;
use crate::parser::data_of;
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, message, output, port, value};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "message-to-data";

/// What Langflow's component answers when its input is not a Message.
pub const NOT_A_MESSAGE: &str = "Error converting Message to Data: Input must be a Message object";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Message to Data".into(),
        description: "Convert a Message object to a Data object".into(),
        inputs: vec![port("message", &["Message"], false)],
        outputs: vec![port("data", &["Data"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    Ok(vec![output("data", convert(value(inv, "message"), &inv.session_id))])
}

/// The Data of `input`. A text value is a Message (`MessageInput` makes
/// one of a string).
pub fn convert(input: Option<&Value>, session_id: &str) -> Value {
    match input {
        Some(Value::Message(m)) => data_of(message_data(m)),
        Some(Value::Text(t)) => data_of(message_data(&message(t.clone(), "", "", session_id))),
        _ => {
            let mut error = Map::new();
            error.insert("error".into(), Json::String(NOT_A_MESSAGE.into()));
            data_of(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_keeps_its_fields() {
        let m = message("hi".into(), "User", "User", "s");
        let Value::Data(d) = convert(Some(&Value::Message(m)), "s") else { panic!("data") };
        let data: Json = serde_json::from_str(&d.data).expect("json");
        assert_eq!(data["text"], "hi");
        assert_eq!(data["sender"], "User");
        let Value::Data(d) = convert(Some(&Value::Integer(1)), "s") else { panic!("data") };
        assert!(d.data.contains(NOT_A_MESSAGE));
    }
}
