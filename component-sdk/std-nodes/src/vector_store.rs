//! Vector stores (`AstraDB`, `Chroma`): Langflow's vector store components
//! mapped onto the tenant's document index through the host's `retrieval`
//! capability. The store's `collection_name` is a collection of the
//! tenant's index; its connection settings (endpoint, token, directory)
//! are not used, since the host keeps every tenant's chunks itself.
//!
//! As Langflow's `LCVectorStoreComponent` does, a run first adds
//! `ingest_data` (Data, DataFrame rows or Messages; the text from
//! `content_field`, else `text`; every other column as metadata; rows the
//! collection holds are skipped), then searches when there is a query:
//! `search_query` plus AstraDB's `lexical_terms`, `number_of_results`
//! results, hybrid (vector and BM25 fused) when the host can embed, else
//! BM25. `Vector Search` or `Similarity` with an embedding model weighs
//! the same way: the host fuses both lists whenever it has words and a
//! vector. `search_results` and `dataframe` are the rows of Langflow's
//! `Data.from_document` (`text` and the metadata), as a DataFrame.

use crate::retrieved::{self, embedding_field, host_embedding};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, output, port, text_or, values};
use serde_json::Map;

/// Type name in the library.
pub const NAME: &str = "vector-store";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Vector Store".into(),
        description: "Ingests into and searches a collection of the tenant's documents.".into(),
        inputs: vec![
            port("collection_name", &[], false),
            port("search_query", &["Message"], false),
            port("lexical_terms", &["Message"], false),
            port("number_of_results", &[], false),
            port("ingest_data", &["Data", "DataFrame", "Message"], false),
            port("content_field", &[], false),
            port("embedding_model", &["Embeddings"], false),
            port("embedding", &["Embeddings"], false),
        ],
        outputs: vec![port("search_results", &["Data"], false), port("dataframe", &["DataFrame"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let collection = text_or(inv, "collection_name", "");
    let embedding = embedding_field(inv, "embedding_model").or_else(|| embedding_field(inv, "embedding"));
    let embedding = embedding.unwrap_or_else(host_embedding);
    let inputs: Vec<&sandflow_sdk::Value> = values(inv, "ingest_data").collect();
    if !inputs.is_empty() {
        let text_field = text_or(inv, "content_field", "text");
        let chunks = retrieved::chunks(retrieved::records(&inputs), &[text_field], &Map::new());
        if !chunks.is_empty() {
            retrieved::ingest(&collection, &chunks, Some(&embedding))?;
        }
    }
    let query = format!("{} {}", text_or(inv, "search_query", ""), text_or(inv, "lexical_terms", ""));
    let rows = if query.trim().is_empty() {
        Vec::new()
    } else {
        let limit = retrieved::count(inv, "number_of_results", 4);
        let hits = retrieved::search(&collection, query.trim(), limit, Some(embedding))?;
        hits.iter().map(retrieved::document_row).collect()
    };
    let table = retrieved::table(rows);
    Ok(vec![output("search_results", table.clone()), output("dataframe", table)])
}
