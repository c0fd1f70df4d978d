//! Parser (`parser`, `ParserComponent`): Langflow's Parser, enough of it
//! for the retrieval flows (Document Q&A, Vector Store RAG, Hybrid Search
//! RAG): in `Parser` mode each DataFrame row (or the Data) goes through
//! the f-string `pattern` (unknown names render empty) and the results are
//! joined by `sep`; in `Stringify` mode a DataFrame becomes its Markdown
//! table and Data or a Message its text.

use crate::prompt::render_f_string;
use crate::retrieved::records;
use crate::table_text::{dataframe_markdown, python_str};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, as_text, message, output, port, text_or, values};

/// Type name in the library.
pub const NAME: &str = "parser";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Parser".into(),
        description: "Extracts text from structured data with a template.".into(),
        inputs: vec![
            port("input_data", &["DataFrame", "Data"], false),
            port("mode", &[], false),
            port("pattern", &["Message"], false),
            port("sep", &[], false),
        ],
        outputs: vec![port("parsed_text", &["Message"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let inputs: Vec<&Value> = values(inv, "input_data").collect();
    let sep = text_or(inv, "sep", "\n");
    let text = if text_or(inv, "mode", "Parser") == "Stringify" {
        inputs
            .iter()
            .map(|value| match value {
                Value::Table(_) => dataframe_markdown(&records(&[*value])),
                other => as_text(other).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join(&sep)
    } else {
        let pattern = text_or(inv, "pattern", "Text: {text}");
        let lines = records(&inputs)
            .iter()
            .map(|row| render_f_string(&pattern, |name| row.get(name).map(python_str)))
            .collect::<Result<Vec<_>, _>>()?;
        lines.join(&sep)
    };
    Ok(vec![output("parsed_text", Value::Message(message(text, "Machine", "AI", &inv.session_id)))])
}
