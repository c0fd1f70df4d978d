//! A guard between the SQL driver and a database server, so one huge
//! value cannot make the host hold a gigabyte.
//!
//! sqlx reads each message of the server whole before the host sees any
//! of it, so the byte bound of a call ([`Bounds::max_bytes`]) applied only
//! after a row had arrived: `SELECT repeat('x', 1e9)` (or a `RAISE NOTICE`
//! of as much) had the host buffer a gigabyte per call, and a flow making
//! such calls from many runs at once could take the host's memory. Now
//! the driver connects to a Unix socket of the host's own, in a directory
//! only the host's user can enter, and a relay task copies bytes between
//! it and the real server. The relay reads the server's messages' headers
//! as they pass ([`Frames`]) and ends the connection at the header of any
//! message longer than the call may return, before its body is read; the
//! driver then fails, and [`Guard::explain`] says why.
//!
//! The relay holds at most one read buffer (64 KiB); the driver at most
//! one message under the cap. It works on the plain protocol, which is
//! all this build of sqlx speaks (it has no TLS).
//!
//! [`Bounds::max_bytes`]: super::rows::Bounds

use super::rows::{Bounds, SqlError};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// Bytes a message may hold beyond the values a call may return: a row's
/// column count and the length of each of PostgreSQL's 1,664 columns at
/// most, with room to spare.
const SLACK: u64 = 64 << 10;

/// How a server frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// PostgreSQL: a type byte, then a big-endian length that counts itself
    /// but not the type byte.
    Postgres,
    /// MySQL and MariaDB: packets of a little-endian 3-byte length and a
    /// sequence byte; a packet of 0xFFFFFF bytes goes on in the next.
    MySql,
}

impl Framing {
    fn header_len(self) -> usize {
        match self {
            Self::Postgres => 5,
            Self::MySql => 4,
        }
    }
}

/// Where the real server is.
#[derive(Debug, Clone)]
pub(super) enum Upstream {
    Tcp(String, u16),
    Unix(PathBuf),
}

/// Follows a server's messages through the bytes it sends and finds the
/// first one over the cap from its header alone.
#[derive(Debug)]
pub(super) struct Frames {
    framing: Framing,
    cap: u64,
    header: [u8; 5],
    have: usize,
    /// Bytes of the current message's body not yet seen.
    body_left: u64,
    /// MySQL: bytes of a message so far that spans several packets.
    continued: u64,
}

impl Frames {
    pub fn new(framing: Framing, cap: u64) -> Self {
        Self { framing, cap, header: [0; 5], have: 0, body_left: 0, continued: 0 }
    }

    /// Reads `bytes`, the next the server sent: `Err(size)` when a message
    /// is `size` bytes (so far), over the cap.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), u64> {
        let header_len = self.framing.header_len();
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len() as u64);
                self.body_left -= skip;
                bytes = &bytes[skip as usize..];
                continue;
            }
            let take = (header_len - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < header_len {
                break;
            }
            self.have = 0;
            let h = self.header;
            let (body, message) = match self.framing {
                Framing::Postgres => {
                    let body = u64::from(u32::from_be_bytes([h[1], h[2], h[3], h[4]])).saturating_sub(4);
                    (body, body)
                }
                Framing::MySql => {
                    let body = u64::from(u32::from_le_bytes([h[0], h[1], h[2], 0]));
                    let message = self.continued + body;
                    self.continued = if body == 0xFF_FFFF { message } else { 0 };
                    (body, message)
                }
            };
            if message > self.cap {
                return Err(message);
            }
            self.body_left = body;
        }
        Ok(())
    }
}

/// The relay of one connection: the socket the driver connects to, and
/// what the relay saw. Dropping it ends the relay and removes the socket.
pub(super) struct Guard {
    dir: PathBuf,
    socket: PathBuf,
    max_bytes: usize,
    /// The size of the message the relay cut the connection at; 0 if none.
    cut: Arc<AtomicU64>,
    relay: tokio::task::JoinHandle<()>,
}

impl Guard {
    /// Listens on `socket_name` in a new private directory and relays the
    /// first connection there to `upstream`, cutting it at any message over
    /// what `bounds` let a call return. Call it on a tokio runtime.
    pub fn start(upstream: Upstream, framing: Framing, socket_name: &str, bounds: &Bounds) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("sandflow-sql-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = dir.join(socket_name);
        let listener = match UnixListener::bind(&socket) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        let cut = Arc::new(AtomicU64::new(0));
        let frames = Frames::new(framing, bounds.max_bytes as u64 + SLACK);
        let relay = tokio::spawn(relay(listener, upstream, frames, cut.clone()));
        Ok(Self { dir, socket, max_bytes: bounds.max_bytes, cut, relay })
    }

    /// The directory the socket is in (PostgreSQL's drivers take that).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The socket (MySQL's drivers take that).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `error` as the caller should see it: if the relay cut the
    /// connection, that is why the driver failed.
    pub fn explain(&self, error: SqlError) -> SqlError {
        match self.cut.load(Ordering::SeqCst) {
            0 => error,
            size => SqlError::Invalid(format!(
                "the database sent a message of {size} bytes or more (one row, or a notice), over the \
                 {} bytes of values one call may return; select less: a LIMIT, fewer columns, or a \
                 substr() of long text",
                self.max_bytes
            )),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.relay.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn relay(listener: UnixListener, upstream: Upstream, frames: Frames, cut: Arc<AtomicU64>) {
    let Ok((client, _)) = listener.accept().await else { return };
    drop(listener);
    let error = match &upstream {
        Upstream::Tcp(host, port) => match TcpStream::connect((host.as_str(), *port)).await {
            Ok(server) => {
                let _ = server.set_nodelay(true);
                return pump(client, server, frames, cut).await;
            }
            Err(error) => error,
        },
        Upstream::Unix(path) => match UnixStream::connect(path).await {
            Ok(server) => return pump(client, server, frames, cut).await,
            Err(error) => error,
        },
    };
    // Dropping the driver's end fails its connect.
    tracing::warn!(%error, "cannot reach the SQL database");
}

/// Copies both ways until either side ends or a message is over the cap.
async fn pump(
    client: UnixStream,
    server: impl AsyncRead + AsyncWrite + Send + 'static,
    mut frames: Frames,
    cut: Arc<AtomicU64>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = tokio::io::split(server);
    let up = tokio::io::copy(&mut from_client, &mut to_server);
    let down = async {
        let mut buffer = vec![0; 64 << 10];
        loop {
            let read = match from_server.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if let Err(size) = frames.feed(&buffer[..read]) {
                tracing::warn!(size, "a SQL server message is over the call's byte bound; connection ended");
                cut.store(size, Ordering::SeqCst);
                return;
            }
            if to_client.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        () = down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![kind];
        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    #[test]
    fn postgres_messages_under_the_cap_pass_in_any_split() {
        let mut bytes = postgres(b'T', &[0; 30]);
        bytes.extend(postgres(b'D', &[7; 100]));
        bytes.extend(postgres(b'C', b"SELECT 1\0"));
        for split in 1..bytes.len() {
            let mut frames = Frames::new(Framing::Postgres, 100);
            let (a, b) = bytes.split_at(split);
            assert_eq!(frames.feed(a).and_then(|()| frames.feed(b)), Ok(()), "split at {split}");
        }
    }

    #[test]
    fn a_postgres_message_over_the_cap_is_found_by_its_header() {
        let mut frames = Frames::new(Framing::Postgres, 100);
        assert_eq!(frames.feed(&postgres(b'T', &[0; 30])), Ok(()));
        // Only the header of a gigabyte row has come.
        let mut header = vec![b'D'];
        header.extend_from_slice(&(1_000_000_004u32).to_be_bytes());
        assert_eq!(frames.feed(&header[..3]), Ok(()));
        assert_eq!(frames.feed(&header[3..]), Err(1_000_000_000));
    }

    #[test]
    fn the_relay_cuts_the_connection_says_why_and_leaves_no_socket() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            // A server that answers anything with the header of a 1 GB row.
            let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listens");
            let port = server.local_addr().expect("address").port();
            tokio::spawn(async move {
                let (mut connection, _) = server.accept().await.expect("accepts");
                let mut hello = [0; 4];
                connection.read_exact(&mut hello).await.expect("reads");
                let mut reply = postgres(b'T', &[0; 10]);
                reply.extend(b"D");
                reply.extend(1_000_000_004u32.to_be_bytes());
                connection.write_all(&reply).await.expect("writes");
                let _ = connection.write_all(&[b'x'; 4096]).await;
                std::future::pending::<()>().await;
            });
            let bounds = Bounds { max_rows: 10, max_bytes: 1 << 20, time: std::time::Duration::from_secs(5) };
            let guard =
                Guard::start(Upstream::Tcp("127.0.0.1".into(), port), Framing::Postgres, "s", &bounds).expect("starts");
            let mut client = UnixStream::connect(guard.socket()).await.expect("connects");
            client.write_all(b"ping").await.expect("sends");
            let mut received = Vec::new();
            client.read_to_end(&mut received).await.expect("ends");
            assert!(received.is_empty(), "nothing of the reply reached the driver: {} bytes", received.len());
            let said = match guard.explain(SqlError::Failed("connection closed".into())) {
                SqlError::Invalid(said) => said,
                _ => panic!("the cut explains the failure"),
            };
            assert!(said.contains("1000000000 bytes or more") && said.contains("1048576"), "{said}");
            let dir = guard.dir().to_owned();
            assert!(dir.exists());
            drop(guard);
            assert!(!dir.exists(), "the socket's directory is removed");
        });
    }

    fn mysql(len: usize, sequence: u8) -> Vec<u8> {
        let mut packet = (len as u32).to_le_bytes()[..3].to_vec();
        packet.push(sequence);
        packet
    }

    #[test]
    fn a_mysql_message_over_the_cap_is_found_across_its_packets() {
        let cap = 0xFF_FFFF + 10;
        let mut frames = Frames::new(Framing::MySql, cap);
        // A packet of 50 bytes, then a message of one full packet and a short one.
        let mut bytes = mysql(50, 0);
        bytes.extend([1; 50]);
        assert_eq!(frames.feed(&bytes), Ok(()));
        assert_eq!(frames.feed(&mysql(0xFF_FFFF, 1)), Ok(()));
        assert_eq!(frames.feed(&vec![0; 0xFF_FFFF]), Ok(()));
        assert_eq!(frames.feed(&mysql(5, 2)), Ok(()), "16 MiB + 5 bytes is under the cap");
        assert_eq!(frames.feed(&[0; 5]), Ok(()));
        // The next message starts from nothing, and goes over at its second packet.
        assert_eq!(frames.feed(&mysql(0xFF_FFFF, 3)), Ok(()));
        assert_eq!(frames.feed(&vec![0; 0xFF_FFFF]), Ok(()));
        assert_eq!(frames.feed(&mysql(11, 4)), Err(0xFF_FFFF + 11));
    }
}
