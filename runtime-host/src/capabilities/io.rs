//! Host-side I/O for capabilities. Guests run on blocking threads (a
//! `spawn_blocking` task of the server, or the CLI's own thread); a
//! capability that talks to the network drives its future to completion
//! there, with connections owned by one small I/O runtime of the process,
//! so pooled connections outlive whichever runtime started the run.

use std::future::Future;
use std::sync::OnceLock;

/// Runs `future` to completion from a blocking (non-async) thread: never
/// call it from an async task.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Runs `future` on the I/O runtime and waits for it from any async
/// context, so what it opens (database connections, their background
/// tasks) belongs to the I/O runtime and outlives the caller's runtime.
pub async fn run_on_io<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(future).await {
        Ok(output) => output,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sandflow-capability-io")
                .enable_all()
                .build()
                .expect("a one-thread tokio runtime can be built")
        })
        .handle()
}

/// The HTTP client every capability shares (one connection pool).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            // Capabilities follow no redirects: a redirect could leave the allow-list.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}
