//! The text and flow-control nodes against Langflow 1.13's own component
//! code, recorded by `scripts/langflow/record.py` into `tests/langflow/`
//! (each component built from the `code` field of the shared export that
//! uses it; If-Else from `lfx`).

use crate::{conditional_router, keyword_search, message_to_data, parse_data, parser, split_text, type_convert};
use sandflow_sdk::{Data, Table, Value};
use serde_json::{Map, Value as Json};
use std::path::Path;

fn recording(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/langflow").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("a recording is JSON")
}

fn cases(recording: &Json) -> &Vec<Json> {
    recording.as_array().expect("a list of cases")
}

fn object(v: &Json) -> Map<String, Json> {
    v.as_object().expect("an object").clone()
}

fn rows(v: &Json) -> Vec<Map<String, Json>> {
    v.as_array().expect("rows").iter().map(object).collect()
}

fn str_of<'a>(case: &'a Json, key: &str, default: &'a str) -> &'a str {
    case.get(key).and_then(Json::as_str).unwrap_or(default)
}

/// The recorded input as the value an edge would carry.
fn value_of(spec: &Json) -> Value {
    if let Some(table) = spec.get("table") {
        return Value::Table(Table { rows: rows(table).into_iter().map(|r| Json::Object(r).to_string()).collect() });
    }
    if let Some(data) = spec.get("data") {
        return Value::Data(Data {
            text_key: "text".into(),
            data: data.to_string(),
            default_value: str_of(spec, "default_value", "").into(),
        });
    }
    if let Some(list) = spec.get("data_list") {
        return Value::Json(list.to_string());
    }
    Value::Message(sandflow_sdk::message(str_of(spec, "message", "").into(), "User", "User", "s"))
}

/// Checks an outcome against the case's `error_type` and `error` when it has them.
fn expect_error(case: &Json, ours: &str) {
    let kind = str_of(case, "error_type", "");
    let message = str_of(case, "error", "");
    assert!(!message.is_empty(), "Langflow succeeded on {case} but ours failed: {ours}");
    assert!(
        ours.contains(message)
            || (kind == "TypeError" && ours.contains(message.trim_start_matches("Error splitting text: "))),
        "{case}: ours says {ours:?}, Langflow {kind}: {message}"
    );
}

#[test]
fn parser_matches_langflow() {
    let recording = recording("parser");
    assert!(cases(&recording).len() >= 20);
    for case in cases(&recording) {
        let input = parser::read_input(Some(&value_of(&case["input"]))).expect("a supported input");
        let ours = if case["mode"] == "Stringify" {
            Ok(parser::stringify(&input, case.get("clean_data").and_then(Json::as_bool).unwrap_or(false)))
        } else {
            parser::parse(&input, str_of(case, "pattern", ""), str_of(case, "sep", "\n"))
        };
        match (ours, case.get("text")) {
            (Ok(text), Some(expected)) => assert_eq!(text, expected.as_str().expect("text"), "{case}"),
            (Err(e), None) => {
                assert_eq!(e.kind, str_of(case, "error_type", ""), "{case}");
                assert_eq!(e.message, str_of(case, "error", ""), "{case}");
            }
            (ours, _) => panic!("{case}: ours {ours:?}"),
        }
    }
}

#[test]
fn split_text_matches_langflow() {
    let recording = recording("split-text");
    assert!(cases(&recording).len() >= 100);
    for case in cases(&recording) {
        let splitter = split_text::Splitter {
            chunk_size: case["chunk_size"].as_i64().expect("size"),
            chunk_overlap: case["chunk_overlap"].as_i64().expect("overlap"),
            separator: split_text::separator(str_of(case, "separator", "")),
            keep: split_text::Keep::parse(str_of(case, "keep_separator", "False")),
        };
        let input = value_of(&case["input"]);
        let clean = case.get("clean_output").and_then(Json::as_bool).unwrap_or(false);
        let ours = split_text::documents(Some(&input), str_of(case, "text_key", "text"))
            .map_err(|e| format!("{e:?}"))
            .and_then(|docs| splitter.validate().map(|()| docs).map_err(|e| format!("Error splitting text: {e}")))
            .map(|docs| split_text::rows(&docs, &splitter, clean));
        match (ours, case.get("rows")) {
            (Ok(ours), Some(expected)) => {
                let ours: Vec<Json> = ours.into_iter().map(Json::Object).collect();
                assert_eq!(&Json::Array(ours), expected, "{case}");
                // Key order too: the DataFrame's columns.
                let keys = |v: &Json| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
                let expected_keys: Vec<_> = expected.as_array().expect("rows").iter().map(keys).collect();
                let ours_keys: Vec<_> = split_text::rows(
                    &split_text::documents(Some(&input), str_of(case, "text_key", "text")).expect("docs"),
                    &splitter,
                    clean,
                )
                .into_iter()
                .map(|r| Some(r.keys().cloned().collect::<Vec<_>>()))
                .collect();
                assert_eq!(ours_keys, expected_keys, "{case}");
            }
            (Err(ours), None) => expect_error(case, &ours),
            (ours, _) => panic!("{case}: ours {ours:?}"),
        }
    }
}

#[test]
fn type_convert_matches_langflow() {
    for case in cases(&recording("type-convert")) {
        let input = value_of(&case["input"]);
        let Value::Message(m) = type_convert::to_message(&input, "s").expect("converts") else { panic!("a message") };
        assert_eq!(m.text, case["message"]["text"].as_str().expect("text"), "{case}");
        let Value::Data(d) = type_convert::to_data(&input).expect("converts") else { panic!("data") };
        let data: Json = serde_json::from_str(&d.data).expect("json");
        assert_eq!(data, case["data"]["data"], "{case}");
        let Value::Table(t) = type_convert::to_dataframe(&input).expect("converts") else { panic!("a table") };
        let ours: Vec<Json> = t.rows.iter().map(|r| serde_json::from_str(r).expect("row")).collect();
        assert_eq!(Json::Array(ours), case["dataframe"]["rows"], "{case}");
    }
}

#[test]
fn message_to_data_matches_langflow() {
    for case in cases(&recording("message-to-data")) {
        let input = case["message"].as_object().map(|m| {
            let field = |k: &str| m[k].as_str().expect("a string field");
            Value::Message(sandflow_sdk::message(
                field("text").into(),
                field("sender"),
                field("sender_name"),
                field("session_id"),
            ))
        });
        let Value::Data(d) = message_to_data::convert(input.as_ref(), "session-1") else { panic!("data") };
        let ours: Map<String, Json> = serde_json::from_str(&d.data).expect("json");
        let mut expected = object(&case["data"]);
        // Langflow stamps a new message with the current time; a sandbox has no clock.
        if let Some(Json::String(_)) = expected.get("timestamp") {
            expected.insert("timestamp".into(), Json::Null);
        }
        assert_eq!(ours.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{case}");
        assert_eq!(Json::Object(ours), Json::Object(expected), "{case}");
    }
}

#[test]
fn parse_data_matches_langflow() {
    for case in cases(&recording("parse-data")) {
        let items: Vec<parse_data::Item> =
            case["items"].as_array().expect("items").iter().map(|i| (object(i), "text".to_owned())).collect();
        let ours = parse_data::texts(str_of(case, "template", ""), &items);
        match (ours, case.get("text")) {
            (Ok(texts), Some(expected)) => {
                assert_eq!(texts.join(str_of(case, "sep", "\n")), expected.as_str().expect("text"), "{case}");
                let listed: Vec<Json> = items
                    .into_iter()
                    .zip(texts)
                    .map(|((mut data, key), text)| {
                        data.insert(key, Json::String(text));
                        Json::Object(data)
                    })
                    .collect();
                assert_eq!(Json::Array(listed), case["data_list"], "{case}");
            }
            (Err(e), None) => {
                assert_eq!(e.kind, str_of(case, "error_type", ""), "{case}");
                assert_eq!(e.message, str_of(case, "error", ""), "{case}");
            }
            (ours, _) => panic!("{case}: ours {ours:?}"),
        }
    }
}

#[test]
fn conditional_router_matches_langflow() {
    let recording = recording("conditional-router");
    let conditions = recording["conditions"].as_array().expect("conditions");
    assert!(conditions.len() >= 200);
    for case in conditions {
        let ours = conditional_router::evaluate(
            str_of(case, "input_text", ""),
            str_of(case, "match_text", ""),
            str_of(case, "operator", ""),
            case["case_sensitive"] == true,
        );
        assert_eq!(Json::Bool(ours), case["result"], "{case}");
    }
    for case in recording["routes"].as_array().expect("routes") {
        let wanted: Vec<&str> = case["wanted"].as_array().expect("wanted").iter().filter_map(Json::as_str).collect();
        let message = |t: &str| sandflow_sdk::message(t.into(), "", "", "");
        let true_text = str_of(case, "true_text", "");
        let (on_true, on_false) = conditional_router::route(
            case["matches"] == true,
            case["max_iterations"].as_i64().expect("max"),
            case["default_route"] == "true_result",
            (wanted.contains(&"true_result"), wanted.contains(&"false_result")),
            || message(if true_text.is_empty() { "abc" } else { true_text }),
            || message("F"),
        );
        let mut ours = Map::new();
        if let Some(m) = on_true {
            ours.insert("true_result".into(), Json::String(m.text));
        }
        if let Some(m) = on_false {
            ours.insert("false_result".into(), Json::String(m.text));
        }
        assert_eq!(Json::Object(ours), case["produced"], "{case}");
    }
}

#[test]
fn keyword_search_matches_langflow() {
    for case in cases(&recording("keyword-search")) {
        let search = keyword_search::Search {
            column: str_of(case, "column", "").into(),
            keywords: case["keywords"]
                .as_array()
                .expect("keywords")
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect(),
            match_type: str_of(case, "match_type", "any").into(),
            case_sensitive: case["case_sensitive"] == true,
            limit: case["number_candidates"].as_i64().expect("limit"),
        };
        match (keyword_search::search(&rows(&case["rows_in"]), &search), case.get("rows")) {
            (Ok(found), Some(expected)) => {
                assert_eq!(Json::Array(found.into_iter().map(Json::Object).collect()), *expected, "{case}")
            }
            (Err(e), None) => assert_eq!(e, str_of(case, "error", ""), "{case}"),
            (ours, _) => panic!("{case}: ours {ours:?}"),
        }
    }
}
