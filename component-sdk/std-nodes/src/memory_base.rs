//! Memory Base (`MemoryBase`): Langflow's long-term memory retrieval over
//! the host's `retrieval` capability. The memory base is a collection of
//! the tenant's document index (empty: every document of the agent).
//!
//! `retrieve_data` searches with `search_query` (hybrid when the host can
//! embed, else BM25) and answers a DataFrame of `top_k` rows: `content`,
//! `_score` when there was a query, and the chunk's metadata when
//! `include_metadata` is on. With `filter_by_session` on (the default),
//! chunks recorded for another session (metadata `session_id`) are left
//! out; chunks that belong to no session (the agent's documents) stay.
//! Usually an agent's tool (`component_as_tool`), which the host runs with
//! the model's `search_query`.

use crate::retrieved::{self, host_embedding};
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, flag, output, port, text_or};
use serde_json::Value as Json;

/// Type name in the library.
pub const NAME: &str = "memory-base";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Memory Base".into(),
        description: "Retrieve long-term memory from a Memory Base attached to this workflow.".into(),
        inputs: vec![
            port("memory_base", &[], false),
            port("search_query", &["Message"], false),
            port("top_k", &[], false),
            port("include_metadata", &[], false),
            port("filter_by_session", &[], false),
        ],
        outputs: vec![port("retrieve_data", &["DataFrame"], false)],
    }
}

/// Whether a chunk's metadata lets `session` see it.
pub fn visible_in_session(metadata: &serde_json::Map<String, Json>, session: &str) -> bool {
    match metadata.get("session_id") {
        Some(Json::String(s)) => s == session,
        Some(Json::Null) | None => true,
        Some(other) => session.parse::<Json>().ok().as_ref() == Some(other),
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let query = text_or(inv, "search_query", "");
    let top_k = retrieved::count(inv, "top_k", 5);
    let by_session = flag(inv, "filter_by_session", true);
    if by_session && inv.session_id.trim().is_empty() {
        return Err(NodeError::InvalidInput(
            "a session id is required when `filter_by_session` is on: send one with the request, or turn the \
             filter off for cross-session retrieval"
                .into(),
        ));
    }
    // Fetch more when some may be filtered away.
    let fetch = if by_session { (top_k * 4).min(100) } else { top_k };
    let hits = retrieved::search(&text_or(inv, "memory_base", ""), &query, fetch, Some(host_embedding()))?;
    let include_metadata = flag(inv, "include_metadata", true);
    let scored = !query.trim().is_empty();
    let rows = hits
        .iter()
        .filter(|h| !by_session || visible_in_session(&retrieved::metadata(h), &inv.session_id))
        .take(top_k as usize)
        .map(|h| retrieved::knowledge_row(h, scored, include_metadata))
        .collect();
    Ok(vec![output("retrieve_data", retrieved::table(rows))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn other_sessions_stay_hidden() {
        let meta = |v: Json| v.as_object().cloned().unwrap_or_default();
        assert!(visible_in_session(&meta(json!({"session_id": "s1"})), "s1"));
        assert!(!visible_in_session(&meta(json!({"session_id": "s2"})), "s1"));
        assert!(visible_in_session(&meta(json!({"source": "manual.pdf"})), "s1"));
    }
}
