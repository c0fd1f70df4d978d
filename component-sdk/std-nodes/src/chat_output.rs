//! Chat Output (`ChatOutput`): the flow's answer, as Langflow's
//! `ChatOutput.message_response` builds it, stored in the session's
//! history when `should_store_message` is on and the host keeps history.

use sandflow_sdk::{
    Data, Descriptor, Invocation, NodeError, Output, Table, Value, message, output, port, text_or, values,
};

/// Type name in the library.
pub const NAME: &str = "chat-output";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Chat Output".into(),
        description: "Display a chat message in the Playground.".into(),
        inputs: vec![
            port("input_value", &["Data", "DataFrame", "Message"], true),
            port("sender", &[], false),
            port("sender_name", &["Message"], false),
            port("session_id", &["Message"], false),
            port("clean_data", &[], false),
            port("should_store_message", &[], false),
        ],
        outputs: vec![port("message", &["Message"], false)],
    }
}

/// Runs the node: converts `input_value` to text the way Langflow's
/// `safe_convert` does and answers as `sender`.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let clean = sandflow_sdk::flag(inv, "clean_data", false);
    let inputs: Vec<&Value> = values(inv, "input_value").collect();
    if inputs.is_empty() || inputs.iter().all(|v| matches!(v, Value::None)) {
        return Err(NodeError::InvalidInput("Input data cannot be None: connect an edge into `input_value`".into()));
    }
    let text = inputs.iter().map(|v| convert(v, clean)).collect::<Result<Vec<_>, _>>()?.join("\n");
    // An incoming Message keeps its session unless the field sets one.
    let incoming_session = inputs.iter().find_map(|v| match v {
        Value::Message(m) if !m.session_id.is_empty() => Some(m.session_id.clone()),
        _ => None,
    });
    let session = text_or(inv, "session_id", incoming_session.as_deref().unwrap_or(&inv.session_id));
    let msg = message(text, &text_or(inv, "sender", "Machine"), &text_or(inv, "sender_name", "AI"), &session);
    crate::history::store_if_asked(inv, &msg)?;
    Ok(vec![output("message", Value::Message(msg))])
}

/// Langflow's `safe_convert`: Message → text, Data → text or a JSON block,
/// DataFrame → a Markdown table.
pub fn convert(value: &Value, clean: bool) -> Result<String, NodeError> {
    Ok(match value {
        Value::Message(m) => m.text.clone(),
        Value::Text(t) | Value::Json(t) => t.clone(),
        Value::Data(d) => data_text(d),
        Value::Table(t) => markdown_table(t, clean),
        Value::None => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => if *b { "True" } else { "False" }.to_owned(),
        other => {
            return Err(NodeError::InvalidInput(format!(
                "Expected Data or DataFrame or Message or str, got {}",
                sandflow_sdk::kind(other)
            )));
        }
    })
}

fn data_text(d: &Data) -> String {
    let parsed: serde_json::Value = serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null);
    match parsed.get(&d.text_key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => {
            let pretty = serde_json::to_string_pretty(&parsed).unwrap_or_default();
            format!("```json\n{pretty}\n```")
        }
    }
}

/// `safe_convert` of a DataFrame: the Parser's Stringify table.
fn markdown_table(table: &Table, clean: bool) -> String {
    let rows = table.rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect();
    crate::parser::stringify(&crate::parser::Input::Table(rows), clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uses_its_text_key_or_a_json_block() {
        let d = Data { text_key: "text".into(), data: r#"{"text":"hi"}"#.into(), default_value: String::new() };
        assert_eq!(convert(&Value::Data(d), false).unwrap(), "hi");
        let d = Data { text_key: "text".into(), data: r#"{"a":1}"#.into(), default_value: String::new() };
        assert_eq!(convert(&Value::Data(d), false).unwrap(), "```json\n{\n  \"a\": 1\n}\n```");
    }

    #[test]
    fn tables_become_markdown() {
        // As Langflow 1.13's safe_convert prints them (recorded with lfx).
        let t = Table { rows: vec![r#"{"a":1,"b":"x\ny"}"#.into()] };
        assert_eq!(
            convert(&Value::Table(t), false).unwrap(),
            "|   a | b       |\n|----:|:--------|\n|   1 | x<br/>y |"
        );
        let t = Table { rows: vec![r#"{"a":1,"b":"x\n\n\ny  "}"#.into(), r#"{"a":null,"b":null}"#.into()] };
        assert_eq!(convert(&Value::Table(t), true).unwrap(), "|   a | b       |\n|----:|:--------|\n|   1 | x<br/>y |");
    }
}
