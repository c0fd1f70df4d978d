//! Host capabilities: the only ways out of the sandbox.

pub mod log;
