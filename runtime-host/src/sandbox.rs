//! One run's sandbox: a fresh `Store` whose data is [`RunState`].

use crate::bindings::node as wit;
use crate::capabilities::log::{LogLine, RunLog};
use crate::capabilities::{RunCaps, RunContext};
use crate::engine::Runtime;
use crate::error::RunError;
use crate::flow::FlowRun;
use crate::limits::Limits;
use crate::node::NodeComponent;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The data of every sandbox's `Store`: limits, WASI (locked down) and the
/// capability contexts of this run.
pub struct RunState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    budget: Budget,
    pub(crate) log: RunLog,
    /// The capabilities' state for this run.
    pub(crate) caps: RunCaps,
    /// The standard library, instantiated on first use by a flow run.
    pub(crate) std_library: NodeComponent,
    /// The flow run in progress, if any.
    pub(crate) flow: Option<FlowRun>,
}

impl RunState {
    /// Ends the run on a limit the host enforces itself: the trap that
    /// follows is reported as this limit, like a refused memory growth.
    pub(crate) fn refuse(&mut self, limit: String) -> wasmtime::Error {
        let error = wasmtime::format_err!("{limit}");
        self.budget.refused.get_or_insert(limit);
        error
    }

    /// The digest of the flow this run runs; `None` for a lone node.
    pub(crate) fn flow_digest(&self) -> Option<&str> {
        self.flow.as_ref().map(|run| run.flow.digest.as_str())
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The linker every sandbox uses: WASI (so `wasm32-wasip2` guests link, with
/// nothing behind it) and the host capabilities.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<RunState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // Timers that end with the run, in place of wasmtime-wasi's.
    linker.allow_shadowing(true);
    crate::guest_clock::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    wit::sandflow::host::types::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
    {
        use wit::sandflow::host::{calendar, embeddings, files, http, llm, log, memory, retrieval, sql};
        log::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        llm::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        embeddings::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        retrieval::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        memory::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        http::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        sql::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        files::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        calendar::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
    }
    // `tools` calls back into node instances, so it needs the store itself.
    crate::flow::tools::add_to_linker(&mut linker)?;
    crate::flow::engine::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// WASI for a guest: no arguments, environment, files, sockets or name
/// lookups; stdout and stderr discarded; clocks frozen at zero and
/// randomness fixed, so a guest learns nothing from the host and runs
/// reproducibly. What a node needs from outside comes through capabilities.
fn locked_down_wasi() -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a; 32]))
        .insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5; 32]))
        .insecure_random_seed(0)
        .build()
}

struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Enforces [`Limits`] on memory, tables and instances, and remembers which
/// limit refused growth so the run's error can say so.
struct Budget {
    limits: Limits,
    memory_used: usize,
    refused: Option<String>,
}

impl ResourceLimiter for Budget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_used - current.min(self.memory_used) + desired;
        if total > self.limits.memory_bytes {
            self.refused =
                Some(format!("memory: {} bytes requested, the limit is {} bytes", total, self.limits.memory_bytes));
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            self.refused =
                Some(format!("table: {desired} elements requested, the limit is {}", self.limits.table_elements));
            return Ok(false);
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused.get_or_insert_with(|| format!("memory: growth refused by the engine ({error})"));
        Ok(())
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused.get_or_insert_with(|| format!("table: growth refused by the engine ({error})"));
        Ok(())
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.instances * 4
    }

    fn memories(&self) -> usize {
        self.limits.instances
    }
}

/// One run's sandbox. Dropping it frees everything the run created.
pub struct Sandbox {
    pub(crate) store: Store<RunState>,
    runtime: Runtime,
    limits: Limits,
    /// Whether a finished flow leaves its chat-history writes to the caller.
    pub(crate) defer_history_writes: bool,
    /// Keeps the epoch ticking while the sandbox lives.
    _alive: crate::epoch::Alive,
}

/// Epoch ticks a run computes on its lane before it gives the lane up.
const SLICE_TICKS: u64 = 2;

/// Epoch ticks between checkpoints of what a run off its lane has used.
const CHECKPOINT_TICKS: u64 = 100;

/// Interrupts the guest every [`SLICE_TICKS`] epoch ticks until the run
/// has computed for that long and given its lane up (see
/// [`crate::lanes::release_after`]), then every [`CHECKPOINT_TICKS`] until
/// `deadline`, where it traps. From the lane on, the run is journaled
/// among the runs in progress with what it has used (when its usage is
/// recorded: `usage::InProgress`), so a host that dies meanwhile still
/// counts it.
fn slice_until_deadline(store: &mut Store<RunState>, deadline: Duration, tick: Duration, fuel: u64) {
    let ticks =
        move |d: Duration| u64::try_from(d.as_nanos().div_ceil(tick.as_nanos().max(1))).unwrap_or(u64::MAX).max(1);
    let slice = tick.saturating_mul(SLICE_TICKS as u32);
    let deadline_at = std::time::Instant::now() + deadline;
    let mut on_lane = true;
    store.set_epoch_deadline(ticks(deadline).min(SLICE_TICKS));
    store.epoch_deadline_callback(move |mut store| {
        let left = deadline_at.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        on_lane = on_lane && !crate::lanes::release_after(slice);
        if on_lane {
            return Ok(wasmtime::UpdateDeadline::Continue(ticks(left).min(SLICE_TICKS)));
        }
        // As of the guest's last call or return: compiled code keeps a
        // function's running count in a register and stores it only there.
        let used = fuel.saturating_sub(store.get_fuel().unwrap_or(fuel));
        let caps = &mut store.data_mut().caps;
        caps.fuel_used = used;
        caps.checkpoint();
        Ok(wasmtime::UpdateDeadline::Continue(ticks(left).min(CHECKPOINT_TICKS)))
    });
}

impl Sandbox {
    pub(crate) fn new(runtime: &Runtime, limits: Limits, epoch_tick: Duration, context: RunContext) -> Self {
        Self::with_library(runtime, limits, epoch_tick, runtime.std_library().clone(), context)
    }

    /// Asks a node component what it implements, before the runtime's
    /// library exists (the library describes itself this way at start-up).
    pub(crate) fn describe_with(runtime: &Runtime, node: &NodeComponent) -> Result<Vec<crate::Descriptor>, RunError> {
        let tick = Duration::from_millis(1);
        Self::with_library(runtime, Limits::default(), tick, node.clone(), RunContext::default()).describe(node)
    }

    fn with_library(
        runtime: &Runtime,
        limits: Limits,
        epoch_tick: Duration,
        std_library: NodeComponent,
        context: RunContext,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.resources);
        // Counted before the guest can run, so its deadline is ticking.
        let alive = runtime.sandbox_alive();
        let state = RunState {
            wasi: locked_down_wasi(),
            table,
            budget: Budget { limits, memory_used: 0, refused: None },
            log: RunLog::default(),
            caps: RunCaps::new(runtime.capabilities().clone(), context, limits.deadline),
            std_library,
            flow: None,
        };
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|s| &mut s.budget);
        if runtime.metering() {
            store.set_fuel(limits.fuel).expect("fuel is enabled on the engine");
            slice_until_deadline(&mut store, limits.deadline, epoch_tick, limits.fuel);
        }
        Self { store, runtime: runtime.clone(), limits, defer_history_writes: false, _alive: alive }
    }

    /// The runtime this sandbox belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Fuel used so far.
    pub fn fuel_consumed(&self) -> u64 {
        self.store.get_fuel().map_or(0, |left| self.limits.fuel - left)
    }

    /// Tokens the run's model calls used.
    pub fn tokens(&self) -> crate::TokenCount {
        self.store.data().caps.tokens
    }

    /// From now on, a flow that finishes leaves the chat-history messages it
    /// appended on their way into the store, for the caller to wait for
    /// with [`Sandbox::take_history_writes`] (the data plane waits on its
    /// async side instead of holding a thread). By default a flow finishes
    /// only once they are stored.
    pub fn defer_history_writes(&mut self) {
        self.defer_history_writes = true;
    }

    /// The chat-history messages the run appended that are not yet known to
    /// be stored.
    pub fn take_history_writes(&mut self) -> crate::capabilities::memory::PendingWrites {
        self.store.data_mut().caps.memory.pending.take()
    }

    /// Response body bytes the run's `http` calls received (host-side
    /// work fuel does not see).
    pub fn http_bytes(&self) -> u64 {
        self.store.data().caps.http_bytes
    }

    /// Lines the guest logged through the `log` capability.
    pub fn logs(&self) -> &[LogLine] {
        self.store.data().log.lines()
    }

    /// Log lines dropped because the run logged more than the log keeps.
    pub fn logs_dropped(&self) -> u64 {
        self.store.data().log.dropped()
    }

    /// Turns a wasmtime error from a call into the guest into a [`RunError`].
    pub(crate) fn classify(&self, error: wasmtime::Error) -> RunError {
        if let Some(refused) = &self.store.data().budget.refused {
            return RunError::Limit(refused.clone());
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => RunError::OutOfFuel(self.limits.fuel),
            Some(wasmtime::Trap::Interrupt) => RunError::Deadline(self.limits.deadline),
            // The trap's own words ("call stack exhausted", "wasm `unreachable`
            // instruction executed"), not the whole guest backtrace.
            Some(trap) => RunError::Trap(trap.to_string()),
            None => RunError::Trap(error.root_cause().to_string()),
        }
    }
}
