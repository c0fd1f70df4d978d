//! Compiles Langflow exports into Sandflow flow components.
//!
//! The pipeline is [`langflow`] (a tolerant model of the export) →
//! [`legacy`] (pre-1.0 components rewritten into today's) → [`lower`]
//! (components resolved against the [`catalog`]) → [`ir`] (the plan: a typed
//! graph) → [`schedule`] (Langflow's execution order, loops, branch guards) →
//! [`codegen`] (a WebAssembly component) → [`artifact`] (component, manifest,
//! sha256 digest). Every problem found on the way is a [`Diagnostic`] naming
//! the node, the field and the JSON pointer, and saying what to do; all of
//! them are reported at once.
//!
//! ```
//! use sandflow_flow_compiler::{compile, CompileOptions};
//!
//! let flow = br#"{"data": {"nodes": [
//!     {"id": "ChatInput-1", "data": {"type": "ChatInput", "node": {"template": {}}}},
//!     {"id": "ChatOutput-1", "data": {"type": "ChatOutput", "node": {"template": {}}}}
//!   ], "edges": [{"source": "ChatInput-1", "target": "ChatOutput-1",
//!     "data": {"sourceHandle": {"name": "message", "output_types": ["Message"]},
//!              "targetHandle": {"fieldName": "input_value", "inputTypes": ["Message"]}}}]}}"#;
//! # let flow = flow.as_slice();
//! // `input_value` is not in the template above, so this flow has an error:
//! let err = compile(flow, &CompileOptions::default()).unwrap_err();
//! assert!(err.to_string().contains("input_value"));
//! ```
#![deny(missing_docs)]

pub mod artifact;
pub mod catalog;
pub mod codegen;
pub mod diagnostic;
pub mod ir;
pub mod langflow;
pub mod legacy;
pub mod locate;
pub mod lower;
pub mod schedule;

pub use artifact::{Artifact, Manifest};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use ir::Plan;

use std::collections::BTreeMap;

/// What the compiler may link besides the standard node library.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Published custom nodes: Langflow component type → node reference
    /// (e.g. `custom:MyZipper@sha256:…`). A flow using a type that is neither
    /// in the catalog nor here does not compile.
    pub custom_nodes: BTreeMap<String, String>,
}

/// Why a flow did not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The flow has errors; all of them are listed (warnings too).
    #[error("the flow has {} error(s): {}", .0.error_count(), first_error(.0))]
    Invalid(Diagnostics),
    /// The compiler failed on a valid flow: a bug to report.
    #[error(transparent)]
    Codegen(#[from] codegen::CodegenError),
}

fn first_error(diags: &Diagnostics) -> String {
    diags.iter().find(|d| d.is_error()).map(|d| d.message.clone()).unwrap_or_default()
}

/// Parses, lowers and schedules a flow: everything but code generation.
/// Returns the plan when there are no errors, and every diagnostic.
pub fn check(source: &[u8], options: &CompileOptions) -> (Option<Plan>, Diagnostics) {
    let (flow, mut diags) = langflow::parse(source);
    let Some(mut flow) = flow else { return (None, diags) };
    legacy::modernize(&mut flow, &mut diags);
    let plan = lower::lower(&flow, options, &mut diags).map(|mut plan| {
        if !diags.has_errors() {
            schedule::schedule(&mut plan, &flow, &mut diags);
        }
        plan
    });
    let plan = plan.filter(|_| !diags.has_errors());
    (plan, diags)
}

/// Compiles a flow into an artifact. Warnings are in the returned
/// diagnostics; errors fail the compile with all of them.
pub fn compile(source: &[u8], options: &CompileOptions) -> Result<(Artifact, Diagnostics), CompileError> {
    let (plan, diags) = check(source, options);
    match plan {
        Some(plan) => Ok((Artifact::build(plan)?, diags)),
        None => Err(CompileError::Invalid(diags)),
    }
}
