//! Capabilities this host does not offer yet answer every call with
//! `not-configured`, saying which capability is missing, so components that
//! import them still link and a flow that uses one fails with a clear error.

use crate::bindings::node::sandflow::host::types::{CapabilityError, ModelSettings};
use crate::bindings::node::sandflow::host::{embeddings, retrieval};
use crate::sandbox::RunState;

fn missing<T>(capability: &str) -> Result<T, CapabilityError> {
    Err(CapabilityError::NotConfigured(format!("the `{capability}` capability is not configured on this host")))
}

impl embeddings::Host for RunState {
    fn embed(&mut self, _: ModelSettings, _: Vec<String>) -> Result<Vec<Vec<f32>>, CapabilityError> {
        missing("embeddings")
    }
}

impl retrieval::Host for RunState {
    fn search(&mut self, _: retrieval::SearchRequest) -> Result<Vec<retrieval::Hit>, CapabilityError> {
        missing("retrieval")
    }

    fn ingest(
        &mut self,
        _: String,
        _: Vec<retrieval::Chunk>,
        _: Option<ModelSettings>,
    ) -> Result<u32, CapabilityError> {
        missing("retrieval")
    }
}
