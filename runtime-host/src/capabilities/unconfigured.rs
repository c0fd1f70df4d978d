//! Capabilities this host does not offer yet answer every call with
//! `not-configured`, saying which capability is missing, so components that
//! import them still link and a flow that uses one fails with a clear error.

use crate::bindings::node::sandflow::host::types::{CapabilityError, ModelSettings, Table};
use crate::bindings::node::sandflow::host::{embeddings, files, retrieval, sql};
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

impl sql::Host for RunState {
    fn query(&mut self, _: String, _: String) -> Result<Table, CapabilityError> {
        missing("sql")
    }
}

impl files::Host for RunState {
    fn read(&mut self, _: String) -> Result<files::File, CapabilityError> {
        missing("files")
    }

    fn list_names(&mut self, _: String) -> Result<Vec<String>, CapabilityError> {
        missing("files")
    }

    fn write(&mut self, _: files::File) -> Result<String, CapabilityError> {
        missing("files")
    }
}
