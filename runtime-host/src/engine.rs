//! The process-wide engine, its epoch ticker and the node library.

use crate::capabilities::{CapabilityConfig, RunContext};
use crate::epoch::{Alive, EpochTicker};
use crate::error::LoadError;
use crate::flow::FlowComponent;
use crate::library::NodeLibrary;
use crate::limits::Limits;
use crate::node::NodeComponent;
use crate::sandbox::{RunState, Sandbox};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

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
    /// Where compiled machine code is cached across restarts; `None` compiles
    /// every component at load.
    pub cache_dir: Option<PathBuf>,
    /// Fuel and epoch deadlines. Off only to measure their cost: without
    /// them a guest can hold a core forever.
    pub metering: bool,
    /// Model providers, operator secrets and the other capabilities' settings.
    pub capabilities: CapabilityConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(1),
            cache_dir: None,
            metering: true,
            capabilities: CapabilityConfig::default(),
        }
    }
}

/// One per process: the engine, the linker with the host capabilities, the
/// node library and the epoch ticker thread. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<RunState>,
    config: RuntimeConfig,
    capabilities: Arc<CapabilityConfig>,
    library: OnceLock<NodeLibrary>,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine, starts the epoch ticker and loads the standard
    /// node library (from the disk cache when there is one).
    pub fn new(config: &RuntimeConfig) -> anyhow::Result<Self> {
        let engine = Engine::new(&wasmtime_config(config))?;
        let linker = crate::sandbox::linker(&engine)?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        let runtime = Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config: config.clone(),
                capabilities: Arc::new(config.capabilities.clone()),
                library: OnceLock::new(),
                ticker,
            }),
        };
        let std = NodeComponent::load(&runtime, sandflow_guest_artifacts::STD_NODES_WASM)?;
        // The library describes itself once: that is the list of types it runs.
        let std_types = Sandbox::describe_with(&runtime, &std)?.into_iter().map(|d| d.type_name).collect();
        let _ = runtime.inner.library.set(NodeLibrary { std, std_types, custom: HashMap::new() });
        Ok(runtime)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<RunState> {
        &self.inner.linker
    }

    pub(crate) fn library(&self) -> &NodeLibrary {
        self.inner.library.get().expect("the library is loaded in Runtime::new")
    }

    /// Whether the standard library runs node type `node` (a catalog
    /// node name such as `chat-input`).
    pub fn has_std_node(&self, node: &str) -> bool {
        self.library().std_types.contains(node)
    }

    pub(crate) fn std_library(&self) -> &NodeComponent {
        &self.library().std
    }

    /// Compiles a component, through the disk cache when configured.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        crate::cache::compile(&self.inner.engine, bytes, self.inner.config.cache_dir.as_deref())
            .map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    /// Compiles and pre-instantiates a node component.
    pub fn load_node(&self, bytes: &[u8]) -> Result<NodeComponent, LoadError> {
        NodeComponent::load(self, bytes)
    }

    /// Compiles a flow component and links it against the node library.
    pub fn load_flow(&self, bytes: &[u8]) -> Result<FlowComponent, LoadError> {
        FlowComponent::load(self, bytes)
    }

    /// Whether fuel and epoch deadlines are on.
    pub(crate) fn metering(&self) -> bool {
        self.inner.config.metering
    }

    /// Counts a sandbox alive (the epoch ticks while any is) until the
    /// guard is dropped.
    pub(crate) fn sandbox_alive(&self) -> Alive {
        self.inner.ticker.alive()
    }

    /// A fresh sandbox (one `Store`) for one run under `limits`, for no
    /// tenant in particular (no secrets, no streaming).
    pub fn sandbox(&self, limits: Limits) -> Sandbox {
        self.sandbox_for(limits, RunContext::default())
    }

    /// A fresh sandbox for one run under `limits`, with `context`'s tenant,
    /// secrets and event stream.
    pub fn sandbox_for(&self, limits: Limits, context: RunContext) -> Sandbox {
        Sandbox::new(self, limits, self.inner.config.epoch_tick, context)
    }

    pub(crate) fn capabilities(&self) -> &Arc<CapabilityConfig> {
        &self.inner.capabilities
    }
}

/// Bytes of each memory a reused slot resets by hand (the pages a run
/// wrote, found with `PAGEMAP_SCAN`) instead of giving back to the kernel.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;
/// Bytes of each table a reused slot resets with `memset`.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// Decommits gathered before they are flushed together.
const DECOMMIT_BATCH: usize = 32;

fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    // Fuel: counts guest instructions, so usage is metered and an infinite
    // loop runs out of budget instead of holding a core.
    c.consume_fuel(config.metering);
    // Epochs: wall-clock deadlines that also stop a guest blocked in cheap
    // instructions. The ticker thread bumps the epoch; each store sets its
    // deadline in ticks.
    c.epoch_interruption(config.metering);
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
    // Reusing a slot resets its memory and tables. By default that is an
    // `madvise` per slot, and in a multi-threaded process every `madvise`
    // (and every copy-on-write fault after it) sends TLB-shootdown
    // interrupts to the other cores. With `PAGEMAP_SCAN` (Linux 6.7+) the
    // pages a run wrote, up to 2 MiB, are found and reset by hand and stay
    // mapped; a Rust guest's stack, data and heap sit above 1 MiB, so a
    // prefix would not cover them. Tables keep a `memset` prefix, and the
    // remaining decommits are batched. echo.json at 64 connections:
    // 7,100 requests/s with neither, 16,000 with the 64 KiB prefix,
    // 27,600 with the scan (BENCHMARKS.md).
    pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
    pool.pagemap_scan(Enabled::Auto);
    pool.table_keep_resident(TABLE_KEEP_RESIDENT);
    pool.decommit_batch_size(DECOMMIT_BATCH);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}
