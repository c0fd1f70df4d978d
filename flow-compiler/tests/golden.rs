//! Golden tests: every shared Langflow export has its expected plan dump (or
//! diagnostics) in `tests/golden/<folder>/<name>.txt`. Regenerate with
//! `BLESS=1 cargo test -p sandflow-flow-compiler --test golden`.

use sandflow_flow_compiler::{CompileOptions, check, compile};
use std::path::{Path, PathBuf};

fn shared_flows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows")
}

/// Every export in `../shared/flows`, its folder and name.
fn flows() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for folder in ["", "starter", "legacy"] {
        let dir = shared_flows().join(folder);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        let label = if folder.is_empty() { "top" } else { folder };
        out.extend(entries.into_iter().map(|p| (label.to_owned(), p)));
    }
    out
}

fn expected_text(source: &[u8]) -> String {
    let (plan, diags) = check(source, &CompileOptions::default());
    let mut text = String::new();
    for d in diags.iter() {
        let at = d.node_id.as_deref().map(|n| format!(" [{n}]")).unwrap_or_default();
        text.push_str(&format!(
            "{:?} {}{at} at {}: {}\n  help: {}\n",
            d.severity, d.code, d.pointer, d.message, d.help
        ));
    }
    if let Some(plan) = plan {
        text.push_str(&plan.dump());
    }
    text
}

#[test]
fn golden_plans_and_diagnostics() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for (folder, path) in flows() {
        let source = std::fs::read(&path).expect("shared flow is readable");
        let actual = expected_text(&source);
        let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
        let golden =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(&folder).join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(golden.parent().expect("parent")).expect("create golden dir");
            std::fs::write(&golden, &actual).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(_) => failures.push(format!("{folder}/{name}: output differs from {}", golden.display())),
            Err(_) => failures.push(format!("{folder}/{name}: no golden file {}", golden.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es); re-run with BLESS=1 if intended:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_starter_flow_and_the_echo_flows_compile_to_valid_components() {
    for (folder, path) in flows().into_iter().filter(|(f, _)| f != "legacy") {
        let source = std::fs::read(&path).expect("shared flow is readable");
        let (artifact, diags) = compile(&source, &CompileOptions::default())
            .unwrap_or_else(|e| panic!("{folder}/{} does not compile: {e}", path.display()));
        assert!(!diags.has_errors());
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&artifact.component)
            .unwrap_or_else(|e| panic!("{}: invalid component: {e}", path.display()));
        assert!(artifact.manifest.digest.starts_with("sha256:"));
        assert!(!artifact.manifest.outputs.is_empty(), "{}: no output node", path.display());
        // Same input, same bytes.
        let (again, _) = compile(&source, &CompileOptions::default()).expect("compiles twice");
        assert_eq!(artifact.component, again.component, "{}: compile is not deterministic", path.display());
        // The plan travels inside the component and comes back unchanged.
        let read = sandflow_flow_compiler::Artifact::from_component(artifact.component.clone()).expect("reads back");
        assert_eq!(read.plan, artifact.plan);
        assert_eq!(read.manifest, artifact.manifest);
    }
}

#[test]
fn legacy_flows_compile_or_name_each_unsupported_type() {
    for (_, path) in flows().into_iter().filter(|(f, _)| f == "legacy") {
        let source = std::fs::read(&path).expect("shared flow is readable");
        let raw: serde_json::Value = serde_json::from_slice(&source).expect("shared flows are JSON");
        match compile(&source, &CompileOptions::default()) {
            Ok(_) => {}
            Err(sandflow_flow_compiler::CompileError::Invalid(diags)) => {
                // A Secret component is refused for what it does, not as unknown.
                let secret = diags.iter().any(|d| d.code == "secret-in-flow" && d.node_id.is_some());
                let unknown: Vec<_> = diags.iter().filter(|d| d.code == "unknown-component").collect();
                assert!(secret || !unknown.is_empty(), "{}: fails without naming a type: {diags:?}", path.display());
                for d in unknown {
                    assert!(d.node_id.is_some() && d.message.contains('`'), "{}: {d:?}", path.display());
                    assert!(d.help.contains("custom node"), "{}: {d:?}", path.display());
                }
                // Every component type of the export that is not in the catalog is named.
                let text = raw.to_string();
                for d in diags.iter().filter(|d| d.code == "unknown-component") {
                    let ty = d.message.split('`').nth(1).expect("type in backticks");
                    assert!(text.contains(ty), "{}: names a type not in the flow: {ty}", path.display());
                }
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}
