//! The process-wide engine and its epoch ticker.

use crate::error::LoadError;
use crate::limits::Limits;
use crate::node::NodeComponent;
use crate::sandbox::{RunState, Sandbox};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How the engine is set up. The defaults suit a host serving many tenants.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Component instances alive at once across all sandboxes (pooling slots).
    pub max_instances: u32,
    /// Largest linear memory any guest may grow to, in bytes. Per-tenant caps
    /// ([`Limits::memory_bytes`]) are enforced below this.
    pub max_memory_bytes: usize,
    /// Epoch tick: the resolution of wall-clock deadlines.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { max_instances: 1000, max_memory_bytes: 256 << 20, epoch_tick: Duration::from_millis(1) }
    }
}

/// One per process: the engine, the linker with the host capabilities, and
/// the epoch ticker thread.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<RunState>,
    epoch_tick: Duration,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> anyhow::Result<Self> {
        let engine = Engine::new(&wasmtime_config(config))?;
        let linker = crate::sandbox::linker(&engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
            std::thread::Builder::new().name("sandflow-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?
        };
        Ok(Self {
            inner: Arc::new(Inner { engine, linker, epoch_tick: config.epoch_tick, ticker: Some(ticker), stop }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<RunState> {
        &self.inner.linker
    }

    /// Compiles and pre-instantiates a node component.
    pub fn load_node(&self, bytes: &[u8]) -> Result<NodeComponent, LoadError> {
        NodeComponent::load(self, bytes)
    }

    /// A fresh sandbox (one `Store`) for one run under `limits`.
    pub fn sandbox(&self, limits: Limits) -> Sandbox {
        Sandbox::new(self, limits, self.inner.epoch_tick)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    // Fuel: counts guest instructions, so usage is metered and an infinite
    // loop runs out of budget instead of holding a core.
    c.consume_fuel(true);
    // Epochs: wall-clock deadlines that also stop a guest blocked in cheap
    // instructions. The ticker thread bumps the epoch; each store sets its
    // deadline in ticks.
    c.epoch_interruption(true);
    c.cranelift_opt_level(OptLevel::Speed);
    // Instances come from preallocated slots, and memories start as
    // copy-on-write images of the module's data: instantiation is cheap.
    c.memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(config.max_instances);
    pool.total_core_instances(config.max_instances * 4);
    pool.total_memories(config.max_instances * 2);
    pool.total_tables(config.max_instances * 4);
    pool.max_memory_size(config.max_memory_bytes);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}
