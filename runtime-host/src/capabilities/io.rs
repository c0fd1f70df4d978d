//! Host-side I/O for capabilities. Guests run on plain threads (a run
//! lane of the server, see [`crate::lanes`], or the CLI's own thread); a
//! capability that talks to the network drives its future to completion
//! there, with connections owned by one small I/O runtime of the process,
//! so pooled connections outlive whichever runtime started the run.

use std::future::Future;
use std::sync::OnceLock;

/// Runs `future` to completion from a blocking (non-async) thread: never
/// call it from an async task.
///
/// A run that waits here gives its lane up first (see [`crate::lanes`]):
/// the runs queued behind it go on while it waits.
pub fn block_on<F: Future>(future: F) -> F::Output {
    crate::lanes::release();
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

/// Runs `action` on the I/O runtime once `time` has passed, unless the
/// returned [`Timer`] is dropped first.
pub fn after(time: std::time::Duration, action: impl FnOnce() + Send + 'static) -> Timer {
    Timer(runtime().spawn(async move {
        tokio::time::sleep(time).await;
        action();
    }))
}

/// An [`after`] still to come: dropping it cancels the action.
pub struct Timer(tokio::task::JoinHandle<()>);

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
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

/// A client builder with TLS ready: rustls with the *ring* crypto provider
/// (installed for the process on first use) and the platform's root
/// certificates, so model providers, web pages and a remote control plane
/// are reachable over `https`. Every HTTP client of the host starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Another part of the process may have installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// The HTTP client every capability shares (one connection pool).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        client_builder()
            // Capabilities follow no redirects: a redirect could leave the allow-list.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `https` is spoken: a plain-text server fails the TLS handshake (a
    /// connect error), where a client without TLS would refuse the scheme.
    #[test]
    fn https_goes_through_a_tls_handshake() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut socket, _) = listener.accept().expect("accept");
            let mut hello = [0u8; 5];
            let _ = socket.read(&mut hello);
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            hello
        });
        let client = client_builder().build().expect("a TLS client builds");
        let error = block_on(client.get(format!("https://{address}/")).send()).expect_err("not TLS");
        assert!(error.is_connect(), "{error:?}");
        let hello = server.join().expect("server");
        assert_eq!(hello[0], 0x16, "the client opened with a TLS handshake record");
    }
}
