//! Directory (`Directory`): the tenant's stored files under a folder, read
//! as Langflow 1.13's Directory component reads a server directory
//! (`retrieve_file_paths` + `parse_text_file_to_data`): one record
//! (`file_path`, `text`) per file whose extension is among `types`, at
//! most `depth` folders deep, sorted by name.
//!
//! The folder is a prefix of the agent's storage (`""` or `.` for all of
//! it), never a host directory: an absolute path or `..` is refused as
//! Langflow refuses one that escapes its allowed root. Hidden files are
//! never stored, so `load_hidden` changes nothing; PDF and DOCX files are
//! read as the File node reads them (their text extracted by the host).

use crate::file::{LANGFLOW_TEXT_TYPES, load};
use sandflow_sdk::host::files;
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Table, Value, as_text, capability_message, flag, number, output, port,
    text_or, values,
};
use serde_json::Value as Json;

/// Type name in the library.
pub const NAME: &str = "directory";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Directory".into(),
        description: "Recursively load files from a directory.".into(),
        inputs: vec![
            port("path", &["Message"], false),
            port("types", &[], false),
            port("depth", &[], false),
            port("recursive", &[], false),
            port("silent_errors", &[], false),
        ],
        outputs: vec![port("dataframe", &["DataFrame"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let folder = folder(&text_or(inv, "path", "."))?;
    let mut types: Vec<String> = values(inv, "types")
        .filter_map(as_text)
        .map(|t| t.trim().trim_start_matches('.').to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        types = LANGFLOW_TEXT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    }
    let invalid: Vec<&String> = types.iter().filter(|t| !LANGFLOW_TEXT_TYPES.contains(&t.as_str())).collect();
    if !invalid.is_empty() {
        return Err(NodeError::InvalidInput(format!(
            "Invalid file types specified: {invalid:?}. Valid types are: {LANGFLOW_TEXT_TYPES:?}"
        )));
    }
    let depth = number(inv, "depth").map_or(0, |d| d.max(0.0) as usize);
    let recursive = flag(inv, "recursive", false);
    let silent = flag(inv, "silent_errors", false);
    let prefix = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    let names = files::list_names(&prefix)
        .map_err(|e| NodeError::Failed(format!("cannot list the files: {}", capability_message(&e))))?;
    let mut rows = Vec::new();
    for name in names {
        let relative = &name[prefix.len()..];
        let level = relative.split('/').count();
        // Langflow: with a depth, files up to that many levels down; without
        // one, the folder itself (or everything below it when recursive).
        let within = if depth > 0 { level <= depth } else { recursive || level == 1 };
        let ext = relative.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if !within || !types.iter().any(|t| t == ext) {
            continue;
        }
        match load(&name, "") {
            Ok(file) => rows.push(Json::Object(file.record()).to_string()),
            Err(error) if silent => sandflow_sdk::log(sandflow_sdk::Level::Warn, &error.to_string()),
            Err(error) => return Err(error),
        }
    }
    Ok(vec![output("dataframe", Value::Table(Table { rows }))])
}

/// The folder as a storage prefix, without `./` or a trailing `/`.
pub fn folder(path: &str) -> Result<String, NodeError> {
    let path = path.trim();
    if path.contains('\0') || path.starts_with('/') || path.contains('\\') || path.split('/').any(|p| p == "..") {
        return Err(NodeError::InvalidInput("Directory path escapes the allowed root.".into()));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::folder;

    #[test]
    fn folders_stay_inside_the_storage() {
        assert_eq!(folder(".").expect("root"), "");
        assert_eq!(folder("./docs/").expect("docs"), "docs");
        assert!(folder("/etc").is_err());
        assert!(folder("../other").is_err());
        assert!(folder("a/../../b").is_err());
    }
}
