//! Paths of the guest components built for `wasm32-wasip2` by this crate's
//! build script: example and test nodes, used by tests across the workspace.
//!
//! ```
//! assert!(std::path::Path::new(sandflow_guest_artifacts::WORD_COUNT_NODE).exists());
//! ```

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
