//! Write File (`SaveToFile`): writes a Message, Data or DataFrame into the
//! tenant's file storage through the `files` capability, in the formats
//! and with the contents Langflow 1.13's Save to File writes locally:
//! Message as `txt`, `html`, `json` (`{"message": …}`) or `markdown`
//! (`**Message:**`); Data as `json`, `csv` or `markdown`; DataFrame as
//! `csv`, `json` (records) or `markdown`; `append_mode` appends as
//! Langflow does. The file is `<file_name>.<format>` (Langflow's
//! extension rule, so `markdown` gives `.markdown`), readable afterwards
//! by File and Directory nodes of the same agent.
//!
//! Departures: only the `Local` storage location (the tenant's storage;
//! AWS and Google Drive would need credentials and egress this node does
//! not have); no `excel`; Data whose values are all scalars is written as
//! one row (pandas refuses it); the answer names the stored file, not a
//! host path.

use crate::table_text::{dataframe_markdown, python_str};
use sandflow_sdk::host::files;
use sandflow_sdk::{
    CapabilityError, Descriptor, Invocation, NodeError, Output, Value, capability_message, flag, kind, message, output,
    port, text_or, value,
};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "save-to-file";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Write File".into(),
        description: "Save data to local file, AWS S3, or Google Drive in the selected format.".into(),
        inputs: vec![
            port("input", &["Data", "DataFrame", "Message"], true),
            port("file_name", &[], true),
            port("storage_location", &[], false),
            port("local_format", &[], false),
            port("file_format", &[], false),
            port("append_mode", &[], false),
        ],
        outputs: vec![port("message", &["Message"], false)],
    }
}

/// What is being saved.
enum Input {
    Message(String),
    Data(Map<String, Json>),
    Frame(Vec<Map<String, Json>>),
}

impl Input {
    fn kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "Message",
            Self::Data(_) => "Data",
            Self::Frame(_) => "DataFrame",
        }
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let file_name = text_or(inv, "file_name", "").trim().to_owned();
    if file_name.is_empty() {
        return Err(NodeError::InvalidInput("File name must be provided.".into()));
    }
    let input = input(inv)?;
    let location = storage_location(value(inv, "storage_location"));
    match location.as_str() {
        "Local" => {}
        "" => return Err(NodeError::InvalidInput("Storage location must be selected.".into())),
        other => {
            return Err(NodeError::InvalidInput(format!(
                "the storage location `{other}` is not available in Sandflow; choose Local (the tenant's file storage)"
            )));
        }
    }
    if file_name.contains(['/', '\\', '\0']) || file_name == "." || file_name == ".." {
        return Err(NodeError::InvalidInput(
            "Local file name must be a file name only, without paths or parent directory references.".into(),
        ));
    }
    let default = match input {
        Input::Frame(_) => "csv",
        _ => "json",
    };
    let format = match text_or(inv, "file_format", "") {
        f if !f.is_empty() => f,
        _ => text_or(inv, "local_format", default),
    };
    let allowed: &[&str] = if matches!(input, Input::Message(_)) {
        &["txt", "html", "json", "markdown"]
    } else {
        &["csv", "excel", "json", "markdown"]
    };
    if !allowed.contains(&format.as_str()) {
        return Err(NodeError::InvalidInput(format!(
            "Invalid file format '{format}' for {}. Allowed: {allowed:?}",
            input.kind()
        )));
    }
    if format == "excel" {
        return Err(NodeError::InvalidInput(
            "Sandflow does not write Excel files; choose csv, json or markdown".into(),
        ));
    }
    let has_extension = file_name.rsplit_once('.').is_some_and(|(_, e)| e.eq_ignore_ascii_case(&format));
    let name = if has_extension { file_name } else { format!("{file_name}.{format}") };
    let existing = if flag(inv, "append_mode", false) { existing(&name)? } else { None };
    let appending = existing.is_some();
    let content = render(&input, &format, existing.as_deref())?;
    let stored =
        files::write(&files::File { name: name.clone(), content_type: String::new(), content: content.into_bytes() })
            .map_err(|e| NodeError::Failed(format!("cannot save '{name}': {}", capability_message(&e))))?;
    let action = if appending { "appended to" } else { "saved successfully as" };
    let text = format!("{} {action} '{stored}'", input.kind());
    Ok(vec![output("message", Value::Message(message(text, "Machine", "AI", &inv.session_id)))])
}

fn input(inv: &Invocation) -> Result<Input, NodeError> {
    let rows = |t: &sandflow_sdk::Table| -> Vec<Map<String, Json>> {
        t.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect()
    };
    Ok(match value(inv, "input") {
        Some(Value::Message(m)) => Input::Message(m.text.clone()),
        Some(Value::Data(d)) => Input::Data(serde_json::from_str(&d.data).unwrap_or_default()),
        Some(Value::Table(t)) => Input::Frame(rows(t)),
        // A tool call passes text: a JSON record (or list of them) is a
        // DataFrame, anything else a Message.
        Some(Value::Text(t) | Value::Json(t)) => match serde_json::from_str::<Json>(t) {
            Ok(Json::Array(items)) if items.first().is_some_and(Json::is_object) => {
                Input::Frame(items.into_iter().filter_map(|i| i.as_object().cloned()).collect())
            }
            Ok(Json::Object(object)) => Input::Frame(vec![object]),
            _ => Input::Message(t.clone()),
        },
        Some(Value::None) | None => return Err(NodeError::InvalidInput("Input type is not set.".into())),
        Some(other) => return Err(NodeError::InvalidInput(format!("Unsupported input type: {}", kind(other)))),
    })
}

/// The chosen location's name: a sortable list's first entry (`[{"name":
/// "Local", …}]`), or plain text.
fn storage_location(value: Option<&Value>) -> String {
    let text = match value {
        Some(Value::Text(t) | Value::Json(t)) => t.clone(),
        _ => return String::new(),
    };
    match serde_json::from_str::<Json>(&text) {
        Ok(Json::Array(items)) => items.first().and_then(|i| i["name"].as_str()).unwrap_or_default().to_owned(),
        Ok(Json::Object(object)) => object.get("name").and_then(Json::as_str).unwrap_or_default().to_owned(),
        _ => text,
    }
}

/// The current content of `name`, if it exists.
fn existing(name: &str) -> Result<Option<String>, NodeError> {
    match files::read(name) {
        Ok(file) => Ok(Some(String::from_utf8_lossy(&file.content).into_owned())),
        Err(CapabilityError::Invalid(m)) if m.starts_with("there is no file") => Ok(None),
        Err(e) => Err(NodeError::Failed(format!("cannot read '{name}' to append to it: {}", capability_message(&e)))),
    }
}

/// The file's new content.
fn render(input: &Input, format: &str, existing: Option<&str>) -> Result<String, NodeError> {
    Ok(match (input, format) {
        (Input::Message(text), "txt" | "html") => match existing {
            Some(old) => format!("{old}\n{text}"),
            None => text.clone(),
        },
        (Input::Message(text), "json") => {
            let new = json!({ "message": text });
            match existing {
                Some(old) => python_json(&Json::Array(append(old, vec![new]))),
                None => python_json(&new),
            }
        }
        (Input::Message(text), _) => {
            let new = format!("**Message:**\n\n{text}");
            match existing {
                Some(old) => format!("{old}\n\n{new}"),
                None => new,
            }
        }
        (Input::Data(object), "json") => match existing {
            Some(old) => python_json(&Json::Array(append(old, vec![Json::Object(object.clone())]))),
            None => write_json(&Json::Object(object.clone()), ": ", false, false),
        },
        (Input::Frame(rows), "json") => {
            let records: Vec<Json> = rows.iter().cloned().map(Json::Object).collect();
            match existing {
                Some(old) => python_json(&Json::Array(append(old, records))),
                None => write_json(&Json::Array(records), ":", true, true),
            }
        }
        (Input::Data(object), "csv") => csv(&data_rows(object), existing),
        (Input::Frame(rows), "csv") => csv(rows, existing),
        (Input::Data(object), _) => markdown(&data_rows(object), existing),
        (Input::Frame(rows), _) => markdown(rows, existing),
    })
}

/// Langflow's append for JSON: what is there (an object as a one-item
/// list; unreadable as empty), then the new items.
fn append(old: &str, new: Vec<Json>) -> Vec<Json> {
    let mut items = match serde_json::from_str::<Json>(old.trim()) {
        Ok(Json::Array(items)) => items,
        Ok(object @ Json::Object(_)) => vec![object],
        _ => Vec::new(),
    };
    items.extend(new);
    items
}

fn markdown(rows: &[Map<String, Json>], existing: Option<&str>) -> String {
    let table = dataframe_markdown(rows);
    match existing {
        Some(old) => format!("{old}\n\n{table}"),
        None => table,
    }
}

/// `pd.DataFrame(data.data)`: lists are columns (scalars repeated beside
/// them); a record of scalars only is one row.
fn data_rows(object: &Map<String, Json>) -> Vec<Map<String, Json>> {
    let length = object.values().filter_map(Json::as_array).map(Vec::len).max();
    let Some(length) = length else { return vec![object.clone()] };
    (0..length)
        .map(|i| {
            object
                .iter()
                .map(|(k, v)| {
                    let cell = match v {
                        Json::Array(items) => items.get(i).cloned().unwrap_or(Json::Null),
                        scalar => scalar.clone(),
                    };
                    (k.clone(), cell)
                })
                .collect()
        })
        .collect()
}

/// pandas `to_csv(index=False)`: a header (unless appending), then one
/// line per row; missing values empty, other cells as Python prints them,
/// quoted when they hold `,`, `"` or a newline.
fn csv(rows: &[Map<String, Json>], existing: Option<&str>) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut out = existing.map(str::to_owned).unwrap_or_default();
    if existing.is_none() {
        out.push_str(&columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    // A numeric column holding any float is a float column: pandas
    // writes its whole numbers as `1.0`.
    let float_column: Vec<bool> = columns
        .iter()
        .map(|c| {
            let cells: Vec<&Json> = rows.iter().filter_map(|r| r.get(*c)).filter(|v| !v.is_null()).collect();
            cells.iter().all(|v| v.is_number()) && cells.iter().any(|v| v.is_f64())
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .zip(&float_column)
            .map(|(c, float)| match row.get(*c) {
                None | Some(Json::Null) => String::new(),
                Some(Json::String(s)) => quote(s),
                Some(Json::Number(n)) if *float && !n.is_f64() => format!("{n}.0"),
                Some(other) => quote(&python_str(other)),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell.to_owned() }
}

/// Python's `json.dumps(value, indent=2)` (non-ASCII escaped).
fn python_json(value: &Json) -> String {
    write_json(value, ": ", true, false)
}

/// JSON indented by two spaces, with `colon` after keys; `ascii` escapes
/// non-ASCII characters (`\uXXXX`), `slash` escapes `/` (pandas does).
pub fn write_json(value: &Json, colon: &str, ascii: bool, slash: bool) -> String {
    let mut out = String::new();
    write_value(value, 0, colon, ascii, slash, &mut out);
    out
}

fn write_value(value: &Json, depth: usize, colon: &str, ascii: bool, slash: bool, out: &mut String) {
    let pad = |n: usize, out: &mut String| {
        out.push('\n');
        out.push_str(&"  ".repeat(n));
    };
    match value {
        Json::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(depth + 1, out);
                write_value(item, depth + 1, colon, ascii, slash, out);
            }
            pad(depth, out);
            out.push(']');
        }
        Json::Object(object) if !object.is_empty() => {
            out.push('{');
            for (i, (key, item)) in object.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(depth + 1, out);
                write_string(key, ascii, slash, out);
                out.push_str(colon);
                write_value(item, depth + 1, colon, ascii, slash, out);
            }
            pad(depth, out);
            out.push('}');
        }
        Json::String(s) => write_string(s, ascii, slash, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, ascii: bool, slash: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '/' if slash => out.push_str("\\/"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_as_langflow_writes_them() {
        let m = Input::Message("café".into());
        assert_eq!(render(&m, "json", None).expect("json"), "{\n  \"message\": \"caf\\u00e9\"\n}");
        assert_eq!(render(&m, "markdown", None).expect("md"), "**Message:**\n\ncafé");
        assert_eq!(render(&m, "txt", Some("old")).expect("txt"), "old\ncafé");
        assert_eq!(
            render(&m, "json", Some("{\"message\": \"a\"}")).expect("append"),
            "[\n  {\n    \"message\": \"a\"\n  },\n  {\n    \"message\": \"caf\\u00e9\"\n  }\n]"
        );
    }

    #[test]
    fn frames_as_pandas_writes_them() {
        let rows = vec![
            json!({"a": 1, "b": "x, y"}).as_object().cloned().expect("row"),
            json!({"a": 2.5, "b": null, "c": "/p"}).as_object().cloned().expect("row"),
        ];
        let frame = Input::Frame(rows);
        assert_eq!(render(&frame, "csv", None).expect("csv"), "a,b,c\n1.0,\"x, y\",\n2.5,,/p\n");
        assert_eq!(
            render(&frame, "json", None).expect("json"),
            "[\n  {\n    \"a\":1,\n    \"b\":\"x, y\"\n  },\n  {\n    \"a\":2.5,\n    \"b\":null,\n    \"c\":\"\\/p\"\n  }\n]"
        );
    }

    #[test]
    fn data_lists_are_columns() {
        let object = json!({"k": [1, 2], "t": "s"}).as_object().cloned().expect("object");
        assert_eq!(csv(&data_rows(&object), None), "k,t\n1,s\n2,s\n");
    }

    #[test]
    fn storage_locations() {
        let sortable = Value::Json(r#"[{"chosen":false,"icon":"hard-drive","name":"Local","selected":false}]"#.into());
        assert_eq!(storage_location(Some(&sortable)), "Local");
        assert_eq!(storage_location(Some(&Value::Text("AWS".into()))), "AWS");
        assert_eq!(storage_location(None), "");
    }
}
