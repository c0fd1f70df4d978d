//! The guest's `wasi:clocks/monotonic-clock`: frozen at zero like the wall
//! clock (a guest learns nothing of the host's time), with timers that
//! never outlast the run.
//!
//! wasmtime-wasi's own timers sleep for whatever the guest asks, up to
//! forever (`subscribe-duration(u64::MAX)`), inside a host call where the
//! epoch deadline cannot reach: one `std::thread::sleep` would hold its
//! thread, and its run lane, past the run's deadline. Here a timer ends at
//! the run's deadline at the latest, and subscribing gives the run's lane
//! up, since the guest is about to wait (see [`crate::lanes`]). Nodes that
//! need to wait between polls use the `http` capability's `wait`.

use crate::sandbox::RunState;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

/// Replaces wasmtime-wasi's monotonic clock in `linker` (which must allow
/// shadowing) with this one.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)
}

/// A timer that is ready at `until`.
struct Timer {
    until: tokio::time::Instant,
}

#[async_trait::async_trait]
impl Pollable for Timer {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.until).await;
    }
}

impl RunState {
    fn timer(&mut self, asked: std::time::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        crate::lanes::release();
        let left = self.caps.deadline.saturating_duration_since(std::time::Instant::now());
        let timer = self.table.push(Timer { until: tokio::time::Instant::now() + asked.min(left) })?;
        subscribe(&mut self.table, timer)
    }
}

impl monotonic_clock::Host for RunState {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(0)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1_000_000_000)
    }

    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        // The clock reads zero, so an instant is a duration from now.
        self.timer(std::time::Duration::from_nanos(when))
    }

    fn subscribe_duration(&mut self, duration: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.timer(std::time::Duration::from_nanos(duration))
    }
}
