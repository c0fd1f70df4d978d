//! Builds the guest components for `wasm32-wasip2` with a nested cargo (in
//! its own target directory, so it never waits on the outer build's lock)
//! and writes their paths as constants. The same pattern as wasmtime's
//! `test-programs/artifacts`.

use std::path::PathBuf;
use std::process::Command;

/// Guest packages to build: (package name, constant name).
const GUESTS: &[(&str, &str)] =
    &[("sandflow-std-nodes", "STD_NODES"), ("word-count-node", "WORD_COUNT_NODE"), ("hostile-node", "HOSTILE_NODE")];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Read when the script runs, not when it was compiled: a target
    // directory copied from another checkout reuses the compiled script
    // (the fingerprint is the same), which must build this checkout's guests.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.join("../..");
    for dir in [
        "wit",
        "component-sdk/src",
        "component-sdk/std-nodes",
        "component-sdk/Cargo.toml",
        "examples/nodes",
        "tests/guests",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    // One directory per outer target directory (`OUT_DIR` is
    // `<target>/<profile>/build/<package>-<hash>/out`), not per `OUT_DIR`:
    // `cargo clippy` and `cargo test` run this script with different hashes
    // and would otherwise build every guest twice.
    let target_dir = out_dir.ancestors().nth(4).map_or_else(|| out_dir.join("guests"), |t| t.join("wasm-guests"));
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // Small guests: no debug info in the shipped components.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // The outer build's flags are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` the outer build sets a wrapper; the guests are
        // linted by the outer run itself, not by this nested build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    for (package, _) in GUESTS {
        cargo.args(["--package", package]);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the guest components failed; is the target installed? `rustup target add wasm32-wasip2`"
    );
    let mut consts = String::new();
    for (package, name) in GUESTS {
        let file = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", package.replace('-', "_")));
        assert!(file.exists(), "{} was not built", file.display());
        let path = file.display().to_string();
        consts.push_str(&format!("/// Path of the `{package}` component.\npub const {name}: &str = {path:?};\n"));
        consts.push_str(&format!(
            "/// The `{package}` component.\npub static {name}_WASM: &[u8] = include_bytes!({path:?});\n"
        ));
    }
    std::fs::write(out_dir.join("artifacts.rs"), consts).expect("write artifacts.rs");
}
