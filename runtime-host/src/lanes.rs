//! Run lanes: a few threads (one per core) that run sandboxes back to
//! back, first come first served, so a loaded host neither hands every
//! run to a thread of its own nor lets the OS time-slice dozens of them.
//!
//! A run keeps its lane only while it is short and busy. A run that waits
//! for a capability (a model, a web page, a database: every wait goes
//! through [`crate::capabilities::io::block_on`], and `http`'s `wait` and
//! the guest's timers release before they sleep) gives its lane up with
//! [`release`], and one that computes past its time slice (the sandbox's
//! epoch callback) with [`release_after`]. Either run goes on on its own
//! thread and another thread takes the lane, so the queue behind a slow
//! or hostile run keeps moving. Once the run ends, its thread takes a free
//! lane back, or waits as a spare for a while (the next release wakes a
//! spare instead of starting a thread), or ends.
//!
//! A lane holder whose queue runs dry yields its core a few times before
//! it sleeps ([`crate::idle`]), so on a busy host the next run rarely has
//! to wake it.
//!
//! The data plane runs every sandbox through [`RunLanes::run`]; threads
//! outside the lanes (the CLI, tests) hold no lane and [`release`] does
//! nothing there.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a thread that lost its lane waits as a spare before it ends.
const SPARE_FOR: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

/// The lanes of one data plane. Cheap to clone; the lanes' threads end
/// once the last clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct RunLanes {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Closes the lanes when the last [`RunLanes`] goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
        self.0.spare.notify_all();
    }
}

struct Shared {
    lanes: usize,
    state: Mutex<State>,
    /// Lane holders waiting for a job.
    work: Condvar,
    /// Spares waiting for a lane.
    spare: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads holding a lane, busy or waiting for a job.
    holding: usize,
    /// Lane holders waiting for a job.
    idle: usize,
    /// Spares waiting for a lane, and lanes handed to them not yet taken.
    spares: usize,
    handed: usize,
    /// No more jobs will come.
    closed: bool,
}

thread_local! {
    /// The lanes whose lane this thread holds, if any.
    static HELD: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// The thread's CPU time when it began its current job.
    static JOB_BEGAN: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// CPU time the current thread has used.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// Gives up the current thread's lane once its job has computed for
/// `slice` of CPU time, and says whether the thread now holds no lane.
///
/// CPU time, not time on the clock: on a loaded host a short run waits
/// for a core while other threads have it, and giving its lane up then
/// would add a thread that wants a core, not a core.
pub fn release_after(slice: Duration) -> bool {
    if HELD.with(|held| held.borrow().is_none()) {
        return true;
    }
    if thread_cpu_time().saturating_sub(JOB_BEGAN.get()) < slice {
        return false;
    }
    release();
    true
}

/// Gives up the current thread's lane, if it holds one, and makes sure
/// another thread takes it. The run on this thread goes on; call it
/// before a wait, or when a run has had its slice.
pub fn release() {
    if let Some(shared) = HELD.with(|held| held.borrow_mut().take()) {
        let mut state = shared.lock();
        state.holding -= 1;
        shared.fill(state);
    }
}

impl RunLanes {
    /// `lanes` threads that run jobs in turn (at least one).
    pub fn new(lanes: usize) -> Self {
        let shared = Arc::new(Shared {
            lanes: lanes.max(1),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            spare: Condvar::new(),
        });
        let state = shared.lock();
        shared.fill(state);
        Self { _owner: Arc::new(Owner(shared.clone())), shared }
    }

    /// One lane per core the process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// Queues `job` at once, behind the jobs queued before it; the future
    /// says how it went: `Err` with the panic's message if it panicked.
    ///
    /// A job whose future is dropped before its turn comes (the client
    /// went away) is not run at all; one already running runs to its end.
    pub fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, String>> + Send + 'static {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if done.is_closed() {
                return;
            }
            let _ = done.send(catch_unwind(AssertUnwindSafe(job)).map_err(|panic| panic_message(&*panic)));
        });
        {
            let mut state = self.shared.lock();
            state.jobs.push_back(job);
            if state.idle > 0 {
                self.shared.work.notify_one();
            }
            if state.holding < self.shared.lanes {
                // A lane thread could not be started before: try again.
                self.shared.fill(state);
            }
        }
        async move { result.await.unwrap_or_else(|_| Err("the run's lane thread ended".into())) }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings the lane holders back up to `lanes`: spares first, new
    /// threads when there are none.
    fn fill(self: &Arc<Self>, mut state: MutexGuard<'_, State>) {
        while state.holding < self.lanes && !(state.closed && state.jobs.is_empty()) {
            state.holding += 1;
            if state.spares > state.handed {
                state.handed += 1;
                self.spare.notify_one();
            } else {
                let shared = self.clone();
                let spawned = std::thread::Builder::new().name("sandflow-run".into()).spawn(move || shared.serve());
                if let Err(error) = spawned {
                    // The lanes we have go on; the next release tries again.
                    state.holding -= 1;
                    tracing::error!(%error, "cannot start a run lane thread");
                    break;
                }
            }
        }
    }

    /// A thread's life: hold a lane and run jobs; after a run that gave
    /// its lane up, take one back or wait as a spare, or end.
    fn serve(self: Arc<Self>) {
        HELD.with(|held| *held.borrow_mut() = Some(self.clone()));
        let _unwinding = ReleaseOnUnwind;
        loop {
            let job = {
                let mut state = self.lock();
                let mut yielded = false;
                loop {
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    if state.closed {
                        state.holding -= 1;
                        return;
                    }
                    if !yielded {
                        // Not counted idle meanwhile: a run queued now
                        // is found without waking this thread.
                        yielded = true;
                        drop(state);
                        crate::idle::poll_yielding(|| {
                            let state = self.lock();
                            (!state.jobs.is_empty() || state.closed).then_some(())
                        });
                        state = self.lock();
                        continue;
                    }
                    state.idle += 1;
                    state = self.work.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                    state.idle -= 1;
                }
            };
            JOB_BEGAN.set(thread_cpu_time());
            job();
            if HELD.with(|held| held.borrow().is_none()) && !self.take_lane_back() {
                return;
            }
        }
    }

    /// After a run that released its lane: a free lane at once, or one
    /// handed over while waiting as a spare. `false`: none came, end.
    fn take_lane_back(self: &Arc<Self>) -> bool {
        let mut state = self.lock();
        if state.holding < self.lanes {
            state.holding += 1;
        } else {
            state.spares += 1;
            let (mut waited, _) = self
                .spare
                .wait_timeout_while(state, SPARE_FOR, |s| s.handed == 0 && !s.closed)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            waited.spares -= 1;
            if waited.handed == 0 {
                // Timed out, or closed.
                return false;
            }
            // `fill` already counted this thread as holding.
            waited.handed -= 1;
        }
        HELD.with(|held| *held.borrow_mut() = Some(self.clone()));
        true
    }
}

/// Gives the thread's lane up if a panic no `catch_unwind` caught ends
/// the thread (one whose payload panics as it is dropped), so another
/// thread takes it: a lost thread must not be a lost lane.
struct ReleaseOnUnwind;

impl Drop for ReleaseOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            release();
        }
    }
}

/// What a caught panic says.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the run panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    }

    #[test]
    fn jobs_run_in_order_on_one_lane() {
        let lanes = RunLanes::new(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        runtime().block_on(async {
            let runs: Vec<_> = (0..50)
                .map(|n| {
                    let seen = seen.clone();
                    // Queued in order: `run` enqueues when called.
                    let run = lanes.run(move || seen.lock().expect("lock").push(n));
                    tokio::spawn(run)
                })
                .collect();
            for run in runs {
                run.await.expect("task").expect("job");
            }
        });
        assert_eq!(*seen.lock().expect("lock"), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_released_lane_lets_the_queue_move_past_a_blocked_run() {
        let lanes = RunLanes::new(1);
        let (unblock, blocked) = mpsc::channel::<()>();
        runtime().block_on(async {
            let slow = tokio::spawn(lanes.run(move || {
                release();
                blocked.recv().expect("unblocked");
                "slow"
            }));
            // With the only lane released, a later job runs meanwhile.
            let quick = lanes.run(|| "quick").await.expect("runs");
            assert_eq!(quick, "quick");
            assert!(!slow.is_finished());
            unblock.send(()).expect("send");
            assert_eq!(slow.await.expect("task").expect("job"), "slow");
        });
        // The thread that released went back to waiting as a spare or holder:
        // never more than one holder.
        let state = lanes.shared.lock();
        assert!(state.holding <= 1, "{} holders", state.holding);
    }

    #[test]
    fn a_held_lane_keeps_later_jobs_waiting() {
        let lanes = RunLanes::new(1);
        let (unblock, blocked) = mpsc::channel::<()>();
        let started = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            let slow = tokio::spawn(lanes.run(move || blocked.recv().expect("unblocked")));
            let later = started.clone();
            let quick = tokio::spawn(lanes.run(move || later.fetch_add(1, Ordering::SeqCst)));
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(started.load(Ordering::SeqCst), 0, "the one lane is held");
            unblock.send(()).expect("send");
            slow.await.expect("task").expect("job");
            quick.await.expect("task").expect("job");
        });
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_job_whose_caller_left_before_its_turn_is_not_run() {
        let lanes = RunLanes::new(1);
        let (unblock, blocked) = mpsc::channel::<()>();
        let ran = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            let slow = tokio::spawn(lanes.run(move || blocked.recv().expect("unblocked")));
            let counted = ran.clone();
            // Queued behind the slow job, then given up (a client that left).
            drop(lanes.run(move || counted.fetch_add(1, Ordering::SeqCst)));
            unblock.send(()).expect("send");
            slow.await.expect("task").expect("job");
            let counted = ran.clone();
            assert_eq!(lanes.run(move || counted.fetch_add(10, Ordering::SeqCst)).await, Ok(0));
        });
        assert_eq!(ran.load(Ordering::SeqCst), 10, "only the job still awaited ran");
    }

    #[test]
    fn a_job_that_only_waited_keeps_its_lane() {
        let lanes = RunLanes::new(1);
        let kept = runtime().block_on(lanes.run(|| {
            // Time on the clock, hardly any on the CPU: as a run that waited
            // for a core while other threads had it.
            std::thread::sleep(Duration::from_millis(30));
            let released = release_after(Duration::from_millis(20));
            !released && HELD.with(|held| held.borrow().is_some())
        }));
        assert_eq!(kept, Ok(true));
    }

    #[test]
    fn a_job_that_computed_its_slice_gives_its_lane_up() {
        let lanes = RunLanes::new(1);
        let released = runtime().block_on(lanes.run(|| {
            let began = thread_cpu_time();
            while thread_cpu_time().saturating_sub(began) < Duration::from_millis(20) {
                std::hint::spin_loop();
            }
            release_after(Duration::from_millis(20)) && HELD.with(|held| held.borrow().is_none())
        }));
        assert_eq!(released, Ok(true));
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_lane_goes_on() {
        let lanes = RunLanes::new(1);
        runtime().block_on(async {
            let failed: Result<(), String> = lanes.run(|| panic!("guest bug")).await;
            assert_eq!(failed, Err("guest bug".into()));
            assert_eq!(lanes.run(|| 7).await, Ok(7));
        });
    }

    #[test]
    fn a_panic_that_escapes_the_job_costs_a_thread_not_the_lane() {
        /// A panic payload that panics again as it is dropped, after the
        /// job's `catch_unwind` has caught it.
        struct Explosive;
        impl Drop for Explosive {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("dropped");
                }
            }
        }
        let lanes = RunLanes::new(1);
        runtime().block_on(async {
            let lost: Result<(), String> = lanes.run(|| std::panic::panic_any(Explosive)).await;
            assert_eq!(lost, Err("the run's lane thread ended".into()));
            let next = tokio::time::timeout(Duration::from_secs(5), lanes.run(|| 7)).await;
            assert_eq!(next, Ok(Ok(7)), "another thread took the lane");
        });
    }

    #[test]
    fn the_threads_end_with_the_last_handle() {
        let lanes = RunLanes::new(2);
        let shared = lanes.shared.clone();
        runtime().block_on(async { assert_eq!(lanes.clone().run(|| 1).await, Ok(1)) });
        drop(lanes);
        for _ in 0..200 {
            if shared.lock().holding == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} lane threads still hold a lane", shared.lock().holding);
    }

    #[test]
    fn release_outside_a_lane_does_nothing() {
        release();
        assert!(HELD.with(|held| held.borrow().is_none()));
    }
}
