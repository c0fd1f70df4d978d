//! The epoch ticker: one thread that advances the engine's epoch every
//! tick, which is what wall-clock deadlines and run slices count in.
//!
//! Ticks only matter while a sandbox lives. Once none has lived for
//! [`LINGER`], the ticker sleeps until the next sandbox is made, so an idle
//! host does not wake a thread a thousand times a second (about 2% of a
//! core on the benchmark machine). A burst of runs keeps it ticking, and
//! a run that finds it asleep wakes it before its guest can start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// How long the ticker goes on after the last sandbox before it sleeps.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// The ticker thread of one engine. Stops (and is joined) when dropped.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// Sandboxes alive now.
    live: AtomicUsize,
    stop: AtomicBool,
}

/// A sandbox counted alive: the ticker ticks until every one is dropped.
pub(crate) struct Alive {
    shared: Arc<Shared>,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`.
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { live: AtomicUsize::new(0), stop: AtomicBool::new(false) });
        let thread = std::thread::Builder::new().name("sandflow-epoch".into()).spawn({
            let shared = shared.clone();
            move || shared.tick(&engine, tick)
        })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Counts a sandbox alive until the returned guard is dropped, waking
    /// the ticker first if it sleeps.
    pub fn alive(&self) -> Alive {
        if self.shared.live.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(thread) = &self.thread
        {
            // A park token, not a system call, unless the ticker sleeps.
            thread.thread().unpark();
        }
        Alive { shared: self.shared.clone() }
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn tick(&self, engine: &Engine, tick: Duration) {
        let mut idle_since: Option<Instant> = None;
        while !self.stop.load(Ordering::Acquire) {
            if self.live.load(Ordering::Acquire) > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                // `alive` unparks after counting, so a sandbox made from
                // here on finds this thread ticking again. A wake-up with
                // no sandbox alive (a token left from a sandbox made while
                // ticking, or one already gone) parks again at once.
                std::thread::park();
                continue;
            }
            std::thread::sleep(tick);
            engine.increment_epoch();
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Invocation, Limits, RunError, Runtime, RuntimeConfig};

    #[test]
    fn a_run_after_the_ticker_fell_asleep_still_meets_its_deadline() {
        let runtime = Runtime::new(&RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).expect("runtime");
        let hostile = runtime.load_node(&std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built"));
        let hostile = hostile.expect("loads");
        // No sandbox lives now: the ticker stops ticking and sleeps.
        std::thread::sleep(LINGER + Duration::from_millis(300));
        // A guest that loops for ever, with fuel for many seconds: only
        // the epoch deadline ends it within its 200 ms.
        let limits = Limits { fuel: 200_000_000_000, deadline: Duration::from_millis(200), ..Limits::default() };
        let spin = Invocation {
            component: "Spin".into(),
            node_id: "Spin-1".into(),
            display_name: "Spin".into(),
            session_id: "s".into(),
            fields: vec![],
            wanted: vec!["out".into()],
        };
        let started = Instant::now();
        let ended = runtime.sandbox(limits).run_node(&hostile, &spin).expect_err("never ends");
        assert!(matches!(ended, RunError::Deadline(_)), "{ended}");
        assert!(started.elapsed() < Duration::from_secs(2), "stopped near its deadline: {:?}", started.elapsed());
    }
}
