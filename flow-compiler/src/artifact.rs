//! The artifact: the flow component, its manifest and its digest.

use crate::catalog::{Capability, Role};
use crate::codegen;
use crate::ir::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// File name of the component inside an artifact directory.
pub const COMPONENT_FILE: &str = "flow.wasm";
/// File name of the manifest inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A compiled flow.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The WebAssembly component (world `sandflow:flow/flow`).
    pub component: Vec<u8>,
    /// What the component is and needs.
    pub manifest: Manifest,
    /// The plan the component carries.
    pub plan: Plan,
}

/// Describes a compiled flow for the control plane and the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Component size in bytes.
    pub size: usize,
    /// Version of the compiler that produced it.
    pub compiler_version: String,
    /// Plan format of the embedded plan.
    pub plan_format: u32,
    /// The flow's name.
    pub name: String,
    /// The slug the run API also accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    /// Nodes that take the run's input.
    pub inputs: Vec<NodeRef>,
    /// Nodes whose messages answer the run.
    pub outputs: Vec<NodeRef>,
    /// Host capabilities the flow uses.
    pub capabilities: Vec<Capability>,
    /// Node implementations linked at run time, sorted, without repeats.
    pub nodes: Vec<String>,
    /// The global variables its fields read (Langflow's "load from
    /// database"), sorted, without repeats: the agent secrets its runs look
    /// up, which its seller or buyer sets. Absent from manifests of
    /// compilers before it.
    #[serde(default)]
    pub variables: Vec<String>,
}

/// A node named in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRef {
    /// Node id in the flow.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Its part in the run.
    pub role: Role,
}

/// Errors reading an artifact back.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The bytes are not a valid flow component.
    #[error("{0}")]
    Invalid(String),
}

impl Artifact {
    /// Builds the artifact for a scheduled plan.
    pub fn build(plan: Plan) -> Result<Self, codegen::CodegenError> {
        let plan_json = serde_json::to_vec(&plan).expect("a plan always serializes");
        let component = codegen::component(&plan, &plan_json)?;
        let manifest = Manifest::describe(&plan, &component);
        Ok(Self { component, manifest, plan })
    }

    /// Writes `flow.wasm` and `manifest.json` into `dir`, creating it.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(COMPONENT_FILE), &self.component)?;
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("a manifest always serializes");
        std::fs::write(dir.join(MANIFEST_FILE), manifest)
    }

    /// Reads an artifact back from a directory or a `.wasm` file, checking
    /// that the component validates and carries a plan.
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        let file = if path.is_dir() { path.join(COMPONENT_FILE) } else { path.to_path_buf() };
        let component =
            std::fs::read(&file).map_err(|source| ArtifactError::Io { path: file.display().to_string(), source })?;
        Self::from_component(component)
    }

    /// Checks a component's bytes and recovers its plan and manifest.
    pub fn from_component(component: Vec<u8>) -> Result<Self, ArtifactError> {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&component)
            .map_err(|e| ArtifactError::Invalid(format!("not a valid WebAssembly component: {e}")))?;
        let section = codegen::plan_section(&component).ok_or_else(|| {
            ArtifactError::Invalid(format!("no `{}` section: not a Sandflow flow component", codegen::PLAN_SECTION))
        })?;
        let plan: Plan = serde_json::from_slice(section)
            .map_err(|e| ArtifactError::Invalid(format!("the embedded plan is unreadable: {e}")))?;
        let manifest = Manifest::describe(&plan, &component);
        Ok(Self { component, manifest, plan })
    }
}

impl Manifest {
    fn describe(plan: &Plan, component: &[u8]) -> Self {
        let node_ref = |i: usize| {
            let n = &plan.nodes[i];
            NodeRef { id: n.id.clone(), display_name: n.display_name.clone(), role: n.role }
        };
        let mut nodes: Vec<String> = plan.nodes.iter().map(|n| n.node.clone()).collect();
        nodes.sort();
        nodes.dedup();
        Self {
            digest: digest(component),
            size: component.len(),
            compiler_version: env!("CARGO_PKG_VERSION").to_owned(),
            plan_format: plan.format,
            name: plan.name.clone(),
            endpoint_name: plan.endpoint_name.clone(),
            inputs: plan.inputs().map(node_ref).collect(),
            outputs: plan.outputs().map(node_ref).collect(),
            capabilities: plan.capabilities(),
            nodes,
            variables: plan.variables(),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
