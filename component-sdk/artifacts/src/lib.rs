//! The guest components built for `wasm32-wasip2` by this crate's build
//! script: the standard node library (embedded in the host) and the example
//! and test nodes, by path and by bytes.
//!
//! ```
//! assert!(std::path::Path::new(sandflow_guest_artifacts::WORD_COUNT_NODE).exists());
//! ```

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
