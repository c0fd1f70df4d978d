//! A streaming run's progress: its events as they happen, then its end.

use super::Execution;
use super::error::ApiError;
use crate::RunEvent;
use futures_util::Stream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// One step of a streaming run.
pub enum Step {
    /// Something the run reported while running.
    Event(RunEvent),
    /// The run is over.
    Finished(Box<Result<Execution, ApiError>>),
}

/// A running run's events, then its result. Dropping it (the client went
/// away) cancels a run that has not begun; one already running runs to its
/// end, and its usage record and quota are written as usual (on its lane;
/// the host's run metrics, counted as the task ends, miss it).
pub struct Progress {
    run_id: String,
    events: UnboundedReceiver<RunEvent>,
    run: JoinHandle<Result<Execution, ApiError>>,
}

impl Progress {
    pub(super) fn new(
        run_id: String,
        events: UnboundedReceiver<RunEvent>,
        run: JoinHandle<Result<Execution, ApiError>>,
    ) -> Self {
        Self { run_id, events, run }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The steps, in order. Every event comes before the end: the event
    /// sender lives in the run's sandbox, which is dropped when the run ends.
    pub fn steps(self) -> impl Stream<Item = Step> + Send {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut progress = state?;
            if let Some(event) = progress.events.recv().await {
                return Some((Step::Event(event), Some(progress)));
            }
            let result =
                (&mut progress.run).await.unwrap_or_else(|e| Err(ApiError::Internal(format!("run task failed: {e}"))));
            Some((Step::Finished(Box::new(result)), None))
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // The run's task, not the run: the lane skips a job whose task is
        // gone, and finishes (and records) one it has begun.
        self.run.abort();
    }
}
