//! Text Input (`TextInput`) and Text Output (`TextOutput`): plain text in
//! and out of a flow, as Langflow's `text_response` methods build it.

use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, message, output, port, text_or};

/// Type name of Text Input in the library.
pub const INPUT: &str = "text-input";
/// Type name of Text Output in the library.
pub const OUTPUT: &str = "text-output";

/// Describes Text Input.
pub fn describe_input() -> Descriptor {
    describe(INPUT, "Text Input", "Get user text inputs.")
}

/// Describes Text Output.
pub fn describe_output() -> Descriptor {
    describe(OUTPUT, "Text Output", "Sends text output via API.")
}

fn describe(name: &str, display: &str, description: &str) -> Descriptor {
    Descriptor {
        type_name: name.into(),
        display_name: display.into(),
        description: description.into(),
        inputs: vec![port("input_value", &["Message"], false)],
        outputs: vec![port("text", &["Message"], false)],
    }
}

/// Both nodes: `text` is a Message holding `input_value`.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let msg = message(text_or(inv, "input_value", ""), "", "", &inv.session_id);
    Ok(vec![output("text", Value::Message(msg))])
}
