//! Data to Message (`ParseData`, legacy "Parse Data"): every Data through
//! the template with Langflow's `data_to_text_list`: the template sees the
//! Data's keys, the keys of a nested `data` object, `text` = its `error`
//! when it has one and no nested object, and `data` itself; a missing key
//! shows `""` (a `defaultdict(str)`). `text` joins the results with `sep`;
//! `data_list` is the Data with their `text` set to them.

use crate::history::message_data;
use crate::parser::text_field;
use crate::pyfmt::{self, Call, Py};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, as_text, message, output, port, values};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "parse-data";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Data to Message".into(),
        description: "Convert Data objects into Messages using any {field_name} from input data.".into(),
        inputs: vec![port("data", &["Data"], true), port("template", &[], true), port("sep", &[], false)],
        outputs: vec![port("text", &["Message"], false), port("data_list", &["Data"], false)],
    }
}

/// One Data: its object and its text key.
pub type Item = (Map<String, Json>, String);

/// The Data items of the `data` field (a list field: one per edge; a list
/// of Data or a DataFrame gives one per entry).
pub fn items<'a>(inputs: impl Iterator<Item = &'a Value>) -> Vec<Item> {
    let mut out = Vec::new();
    let text_item = |t: String| {
        let mut m = Map::new();
        m.insert("text".into(), Json::String(t));
        (m, "text".to_owned())
    };
    for input in inputs {
        match input {
            Value::None => {}
            Value::Data(d) => out.push((serde_json::from_str(&d.data).unwrap_or_default(), d.text_key.clone())),
            Value::Message(m) => out.push((message_data(m), "text".into())),
            Value::Table(t) => {
                out.extend(t.rows.iter().map(|r| (serde_json::from_str(r).unwrap_or_default(), "text".into())))
            }
            Value::Json(j) => match serde_json::from_str::<Json>(j) {
                Ok(Json::Array(list)) => out.extend(list.into_iter().map(|i| match i {
                    Json::Object(o) => (o, "text".into()),
                    other => text_item(crate::parser::py_str(&other)),
                })),
                Ok(Json::Object(o)) => out.push((o, "text".into())),
                _ => out.push(text_item(j.clone())),
            },
            other => out.push(text_item(as_text(other).unwrap_or_default())),
        }
    }
    out
}

/// `data_to_text_list`: the template filled from each item.
pub fn texts(template: &str, items: &[Item]) -> Result<Vec<String>, pyfmt::FormatError> {
    items
        .iter()
        .map(|(data, _)| {
            let mut map = data.clone();
            match data.get("data") {
                Some(Json::Object(inner)) => map.extend(inner.clone()),
                _ => {
                    if let Some(error) = data.get("error").filter(|e| truthy(e)) {
                        map.insert("text".into(), error.clone());
                    }
                }
            }
            map.insert("data".into(), Json::Object(data.clone()));
            let empty = Json::String(String::new());
            pyfmt::format(template, Call::FormatMap, &|name| Some(Py::Owned(map.get(name).unwrap_or(&empty).clone())))
                .map_err(|e| match e.kind {
                    "ValueError" => pyfmt::FormatError {
                        kind: "ValueError",
                        message: format!("Error formatting template: {}", e.message),
                    },
                    _ => e,
                })
        })
        .collect()
}

/// Python's truth value of a JSON value.
pub fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let items = items(values(inv, "data"));
    let template = text_field(inv, "template", "{text}");
    let texts = texts(&template, &items).map_err(|e| NodeError::Failed(e.to_string()))?;
    let wants = |name: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == name);
    let mut outputs = Vec::new();
    if wants("text") {
        let sep = text_field(inv, "sep", "\n");
        outputs.push(output("text", Value::Message(message(texts.join(&sep), "", "", &inv.session_id))));
    }
    if wants("data_list") {
        let list: Vec<Json> = items
            .into_iter()
            .zip(texts)
            .map(|((mut data, key), text)| {
                data.insert(key, Json::String(text));
                Json::Object(data)
            })
            .collect();
        outputs.push(output("data_list", Value::Json(Json::Array(list).to_string())));
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Json) -> Item {
        (v.as_object().expect("object").clone(), "text".into())
    }

    #[test]
    fn fills_from_the_data_and_its_nested_data() {
        let items =
            [item(json!({"text": "a", "n": 1})), item(json!({"data": {"x": "y"}})), item(json!({"error": "boom"}))];
        assert_eq!(texts("{text}|{n}|{x}", &items).unwrap(), ["a|1|", "||y", "boom||"]);
        assert_eq!(texts("{data}", &items[..1]).unwrap(), ["{'text': 'a', 'n': 1}"]);
        assert!(texts("{0}", &items).unwrap_err().message.starts_with("Error formatting template"));
    }
}
