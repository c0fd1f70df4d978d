//! Compiled components cached on disk, keyed by the component's digest and
//! the engine's compatibility hash, so a restart does not recompile.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles `bytes`, or loads the machine code a previous compile left in `dir`.
pub fn compile(engine: &Engine, bytes: &[u8], dir: Option<&Path>) -> wasmtime::Result<Component> {
    let Some(dir) = dir else { return Component::new(engine, bytes) };
    let path = entry(engine, bytes, dir);
    if path.exists() {
        // SAFETY: files in the cache directory are written only by
        // `write_atomically` below from `Component::serialize` of this same
        // engine configuration (the key includes its compatibility hash), and
        // the directory belongs to the host, never to a tenant.
        #[expect(unsafe_code, reason = "loading our own precompiled machine code")]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = std::fs::remove_file(&path); // stale or torn: compile again
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Ok(serialized) = component.serialize() {
        let _ = write_atomically(&path, &serialized);
    }
    Ok(component)
}

fn entry(engine: &Engine, bytes: &[u8], dir: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hex::encode(Sha256::digest(bytes));
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
