//! What the retrieval nodes (Knowledge, Memory Base, the vector stores)
//! share: searching the tenant's index through the host, turning hits into
//! Langflow's DataFrame rows, and turning a node's input into chunks.
//!
//! The host scopes every call to the run's tenant and agent; a node only
//! names a collection (Langflow's knowledge base, memory base or vector
//! store collection).

use sandflow_sdk::host::retrieval::{self, Chunk, Hit, SearchRequest};
use sandflow_sdk::{CapabilityError, Invocation, ModelSettings, NodeError, Value, capability_message, number};
use serde_json::{Map, Value as Json, json};

/// Settings that let the host choose its embedding model (used for
/// hybrid ranking when the host can embed; lexical otherwise).
pub fn host_embedding() -> ModelSettings {
    ModelSettings {
        provider: String::new(),
        model: String::new(),
        api_key_secret: None,
        temperature: None,
        max_tokens: None,
        base_url: None,
        extra: "{}".into(),
    }
}

/// The embedding model a node's field holds, if one is connected or chosen.
pub fn embedding_field(inv: &Invocation, name: &str) -> Option<ModelSettings> {
    match sandflow_sdk::value(inv, name)? {
        Value::EmbeddingModel(settings) | Value::LanguageModel(settings) => Some(settings.clone()),
        Value::Json(json) => {
            let choice: Json = serde_json::from_str(json).ok()?;
            let entry = choice.get(0).unwrap_or(&choice);
            let model = entry.get("name").and_then(Json::as_str).filter(|n| !n.is_empty())?;
            let provider = entry.get("provider").and_then(Json::as_str).unwrap_or_default();
            Some(ModelSettings { provider: provider.to_owned(), model: model.to_owned(), ..host_embedding() })
        }
        _ => None,
    }
}

/// A positive count field, or `default`.
pub fn count(inv: &Invocation, name: &str, default: u32) -> u32 {
    number(inv, name).filter(|n| *n >= 1.0).map_or(default, |n| n.min(1_000.0) as u32)
}

/// Searches the run's index.
pub fn search(
    collection: &str,
    query: &str,
    limit: u32,
    embedding: Option<ModelSettings>,
) -> Result<Vec<Hit>, NodeError> {
    let request = SearchRequest { collection: collection.trim().to_owned(), query: query.to_owned(), limit, embedding };
    retrieval::search(&request).map_err(failed)
}

/// A capability error as the node's error.
pub fn failed(error: CapabilityError) -> NodeError {
    NodeError::Failed(capability_message(&error))
}

/// A hit's metadata as a JSON object.
pub fn metadata(hit: &Hit) -> Map<String, Json> {
    match serde_json::from_str(&hit.metadata) {
        Ok(Json::Object(object)) => object,
        _ => Map::new(),
    }
}

/// Knowledge's and Memory Base's row: `content`, `_score` when there was
/// a query, then the chunk's metadata when asked for.
pub fn knowledge_row(hit: &Hit, scored: bool, include_metadata: bool) -> Map<String, Json> {
    let mut row = Map::new();
    row.insert("content".into(), json!(hit.text));
    if scored {
        row.insert("_score".into(), json!(hit.score));
    }
    if include_metadata {
        for (key, value) in metadata(hit) {
            row.entry(key).or_insert(value);
        }
        row.entry("document").or_insert_with(|| json!(hit.document));
    }
    row
}

/// A vector store's row, as Langflow's `Data.from_document`: `text`, then
/// the chunk's metadata.
pub fn document_row(hit: &Hit) -> Map<String, Json> {
    let mut row = Map::new();
    row.insert("text".into(), json!(hit.text));
    for (key, value) in metadata(hit) {
        row.entry(key).or_insert(value);
    }
    row.entry("document").or_insert_with(|| json!(hit.document));
    row
}

/// Rows as a DataFrame.
pub fn table(rows: Vec<Map<String, Json>>) -> Value {
    Value::Table(sandflow_sdk::Table { rows: rows.into_iter().map(|r| Json::Object(r).to_string()).collect() })
}

/// The records a field holds (a DataFrame's rows, a Data, a Message, text,
/// JSON objects or lists of them), each as a JSON object.
pub fn records(values: &[&Value]) -> Vec<Map<String, Json>> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::Table(table) => {
                out.extend(table.rows.iter().filter_map(|r| serde_json::from_str::<Json>(r).ok()).filter_map(object));
            }
            Value::Data(data) => {
                if let Some(mut row) = serde_json::from_str::<Json>(&data.data).ok().and_then(object) {
                    // The text lives under the Data's text key.
                    if data.text_key != "text"
                        && let Some(text) = row.get(&data.text_key).cloned()
                    {
                        row.entry("text").or_insert(text);
                    }
                    out.push(row);
                }
            }
            Value::Message(message) => {
                let mut row = Map::new();
                row.insert("text".into(), json!(message.text));
                out.push(row);
            }
            Value::Text(text) if !text.trim().is_empty() => {
                let mut row = Map::new();
                row.insert("text".into(), json!(text));
                out.push(row);
            }
            Value::Json(text) => match serde_json::from_str::<Json>(text) {
                Ok(Json::Array(items)) => out.extend(items.into_iter().filter_map(object)),
                Ok(item) => out.extend(object(item)),
                Err(_) => {}
            },
            _ => {}
        }
    }
    out
}

fn object(value: Json) -> Option<Map<String, Json>> {
    match value {
        Json::Object(object) => Some(object),
        _ => None,
    }
}

/// Chunks from records: the text is the `text_columns` joined by a space
/// (each that the record has), the metadata every other scalar column.
pub fn chunks(records: Vec<Map<String, Json>>, text_columns: &[String], extra: &Map<String, Json>) -> Vec<Chunk> {
    records
        .into_iter()
        .filter_map(|record| {
            let text = text_columns
                .iter()
                .filter_map(|c| record.get(c))
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .filter(|t| !t.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            if text.trim().is_empty() {
                return None;
            }
            let mut metadata: Map<String, Json> =
                record.into_iter().filter(|(k, v)| !text_columns.contains(k) && !v.is_null()).collect();
            for (key, value) in extra {
                metadata.entry(key.clone()).or_insert_with(|| value.clone());
            }
            Some(Chunk { text, metadata: Json::Object(metadata).to_string() })
        })
        .collect()
}

/// Adds chunks to `collection` of the run's index (embedded when
/// `embedding` is given); returns how many were new.
pub fn ingest(collection: &str, chunks: &[Chunk], embedding: Option<&ModelSettings>) -> Result<u32, NodeError> {
    let mut added = 0;
    // The host takes at most 1,000 chunks a call.
    for batch in chunks.chunks(500) {
        added += retrieval::ingest(collection, batch, embedding).map_err(failed)?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandflow_sdk::{Data, Table};

    fn hit(text: &str, metadata: &str) -> Hit {
        Hit { document: "doc".into(), text: text.into(), score: 0.5, metadata: metadata.into() }
    }

    #[test]
    fn rows_look_like_langflow_s() {
        let h = hit("refunds in 30 days", r#"{"source":"faq.md","content":"not this"}"#);
        let row = Json::Object(knowledge_row(&h, true, true));
        assert_eq!(row, json!({"content": "refunds in 30 days", "_score": 0.5, "source": "faq.md", "document": "doc"}));
        assert_eq!(Json::Object(knowledge_row(&h, false, false)), json!({"content": "refunds in 30 days"}));
        assert_eq!(
            Json::Object(document_row(&h)),
            json!({"text": "refunds in 30 days", "source": "faq.md", "content": "not this", "document": "doc"})
        );
    }

    #[test]
    fn records_become_chunks() {
        let table = Value::Table(Table { rows: vec![r#"{"text":"a","page":1}"#.into(), r#"{"text":"  "}"#.into()] });
        let data =
            Value::Data(Data { text_key: "body".into(), data: r#"{"body":"b"}"#.into(), default_value: String::new() });
        let list = Value::Json(r#"[{"text":"c"}, 3]"#.into());
        let rows = records(&[&table, &data, &list]);
        assert_eq!(rows.len(), 4);
        let extra: Map<String, Json> = [("kb".to_owned(), json!("x"))].into_iter().collect();
        let chunks = chunks(rows, &["text".to_owned()], &extra);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(serde_json::from_str::<Json>(&chunks[0].metadata).ok(), Some(json!({"page": 1, "kb": "x"})));
        assert_eq!(serde_json::from_str::<Json>(&chunks[1].metadata).ok(), Some(json!({"body": "b", "kb": "x"})));
    }
}
