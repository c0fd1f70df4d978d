//! Capabilities this host does not offer yet answer every call with
//! `not-configured`, saying which capability is missing, so components that
//! import them still link and a flow that uses one fails with a clear error.

use crate::bindings::node::sandflow::host::types::{CapabilityError, Table};
use crate::bindings::node::sandflow::host::{files, http, sql};
use crate::sandbox::RunState;

fn missing<T>(capability: &str) -> Result<T, CapabilityError> {
    Err(CapabilityError::NotConfigured(format!("the `{capability}` capability is not configured on this host")))
}

impl http::Host for RunState {
    fn fetch(&mut self, _: http::Request) -> Result<http::Response, CapabilityError> {
        missing("http")
    }

    fn web_search(&mut self, _: String, _: u32) -> Result<Vec<http::SearchResult>, CapabilityError> {
        missing("http")
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
