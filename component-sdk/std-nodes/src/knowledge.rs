//! Knowledge (`Knowledge`): Langflow's unified knowledge base component
//! over the host's `retrieval` capability. The knowledge base is a
//! collection of the tenant's document index (empty: every document of
//! the agent, its training documents included).
//!
//! `Retrieve` mode searches with `search_query` (hybrid when the host can
//! embed, else BM25) and answers a DataFrame of `top_k` rows:
//! `content`, `_score` when there was a query, and the chunk's metadata
//! when `include_metadata` is on (`include_embeddings` is ignored: vectors
//! stay on the host). `Ingest` mode writes `input_df`'s rows (the text of
//! the `vectorize` columns of `column_config`, every other column as
//! metadata, plus `metadata_json`) into the knowledge base, skipping rows
//! whose text it already holds (`allow_duplicates` is not offered), and answers the knowledge
//! base's info as Data. Both outputs answer with the selected mode's
//! result, as Langflow's do.

use crate::retrieved::{self, host_embedding};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Value, data, flag, output, port, text_or, values};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "knowledge";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Knowledge".into(),
        description: "Ingest into or retrieve from a knowledge base.".into(),
        inputs: vec![
            port("knowledge_base", &[], false),
            port("mode", &[], false),
            port("search_query", &["Message"], false),
            port("top_k", &[], false),
            port("include_metadata", &[], false),
            port("include_embeddings", &[], false),
            port("input_df", &["Message", "Data", "JSON", "DataFrame", "Table"], false),
            port("column_config", &[], false),
            port("metadata_json", &[], false),
        ],
        outputs: vec![port("retrieve_data", &["DataFrame"], false), port("dataframe_output", &["Data"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let result = if text_or(inv, "mode", "Ingest").contains("Retrieve") { retrieve(inv)? } else { ingest(inv)? };
    Ok(vec![output("retrieve_data", result.clone()), output("dataframe_output", result)])
}

fn retrieve(inv: &Invocation) -> Result<Value, NodeError> {
    let query = text_or(inv, "search_query", "");
    let hits = retrieved::search(
        &text_or(inv, "knowledge_base", ""),
        &query,
        retrieved::count(inv, "top_k", 5),
        Some(host_embedding()),
    )?;
    let include_metadata = flag(inv, "include_metadata", true);
    let scored = !query.trim().is_empty();
    Ok(retrieved::table(hits.iter().map(|h| retrieved::knowledge_row(h, scored, include_metadata)).collect()))
}

/// The columns whose text is indexed: those `column_config` marks
/// `vectorize`, else `text`.
pub fn text_columns(config: Option<&Value>) -> Vec<String> {
    let rows: Vec<Json> = match config {
        Some(Value::Json(text)) => {
            serde_json::from_str::<Json>(text).ok().and_then(|j| j.as_array().cloned()).unwrap_or_default()
        }
        Some(Value::Table(table)) => table.rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect(),
        _ => Vec::new(),
    };
    let truthy = |v: Option<&Json>| match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        _ => false,
    };
    let columns: Vec<String> = rows
        .iter()
        .filter(|r| truthy(r.get("vectorize")))
        .filter_map(|r| r.get("column_name").and_then(Json::as_str).map(str::to_owned))
        .collect();
    if columns.is_empty() { vec!["text".to_owned()] } else { columns }
}

fn ingest(inv: &Invocation) -> Result<Value, NodeError> {
    let knowledge_base = text_or(inv, "knowledge_base", "");
    let inputs: Vec<&Value> = values(inv, "input_df").collect();
    let records = retrieved::records(&inputs);
    let rows = records.len();
    let extra: Map<String, Json> = match serde_json::from_str(&text_or(inv, "metadata_json", "{}")) {
        Ok(Json::Object(object)) => object,
        _ => Map::new(),
    };
    let columns = text_columns(sandflow_sdk::value(inv, "column_config"));
    let chunks = retrieved::chunks(records, &columns, &extra);
    let added = retrieved::ingest(&knowledge_base, &chunks, Some(&host_embedding()))?;
    Ok(data(
        &json!({
            "kb_name": knowledge_base,
            "rows": rows,
            "chunks": chunks.len(),
            "added": added,
            "column_metadata": {"vectorized_columns": columns},
        }),
        "kb_name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_config_picks_the_indexed_text() {
        let config = Value::Json(
            r#"[{"column_name":"body","vectorize":true},{"column_name":"title","vectorize":"true"},{"column_name":"id","vectorize":false}]"#
                .into(),
        );
        assert_eq!(text_columns(Some(&config)), ["body", "title"]);
        assert_eq!(text_columns(None), ["text"]);
        assert_eq!(text_columns(Some(&Value::Json("[]".into()))), ["text"]);
    }
}
