//! Arbitrary bytes as a Langflow upload: `check` and `compile` must never
//! panic, every diagnostic must say what is wrong, what to do and where, and
//! whatever `check` accepts must compile to a valid WebAssembly component.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandflow_flow_compiler::{CompileError, CompileOptions, check, compile};

fuzz_target!(|data: &[u8]| {
    let options = CompileOptions::default();
    let (plan, diags) = check(data, &options);
    for d in diags.iter() {
        assert!(!d.message.trim().is_empty(), "diagnostic without a message: {d:?}");
        assert!(!d.help.trim().is_empty(), "diagnostic without help: {d:?}");
        assert!(d.pointer.is_empty() || d.pointer.starts_with('/'), "pointer is not a JSON pointer: {d:?}");
    }
    assert_eq!(plan.is_some(), !diags.has_errors(), "a plan iff no errors: {diags:?}");
    if diags.has_errors() {
        return;
    }
    match compile(data, &options) {
        Ok((artifact, _)) => {
            if let Err(e) = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&artifact.component)
            {
                panic!("compile produced an invalid component: {e}");
            }
        }
        Err(CompileError::Invalid(again)) => panic!("check accepted the flow but compile rejected it: {again:?}"),
        Err(e @ CompileError::Codegen(_)) => panic!("check accepted the flow but code generation failed: {e}"),
    }
});
