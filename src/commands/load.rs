//! Loading a flow for `run` and `serve`: a Langflow export (compiled on the
//! spot) or an artifact (directory or `.wasm`).

use anyhow::{Context as _, bail};
use sandflow_flow_compiler::{Artifact, CompileError, CompileOptions, compile};
use std::path::Path;

/// The flow component's bytes and its plan's endpoint name.
pub fn artifact(path: &Path) -> anyhow::Result<Artifact> {
    let is_export = path.extension().is_some_and(|e| e == "json");
    if !is_export {
        return Artifact::read(path).with_context(|| format!("cannot load the artifact {}", path.display()));
    }
    let source = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match compile(&source, &CompileOptions::default()) {
        Ok((artifact, _)) => Ok(artifact),
        Err(CompileError::Invalid(diags)) => {
            let text = std::str::from_utf8(&source).ok();
            eprint!("{}", diags.render(&path.display().to_string(), text));
            bail!("{} does not compile; `sandflow validate` lists what to fix", path.display())
        }
        Err(e) => Err(e.into()),
    }
}
