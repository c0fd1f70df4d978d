//! A guard between the SQL driver and a database server, so one huge
//! value cannot make the host hold a gigabyte.
//!
//! sqlx reads each message of the server whole before the host sees any
//! of it, so the byte bound of a call ([`Bounds::max_bytes`]) applied only
//! after a row had arrived: `SELECT repeat('x', 1e9)` (or a `RAISE NOTICE`
//! of as much) had the host buffer a gigabyte per call, and a flow making
//! such calls from many runs at once could take the host's memory. Now
//! the driver connects to a Unix socket of the host's own, in a directory
//! only the host's user can enter, and a relay copies bytes between it
//! and the real server. The relay reads the server's messages' headers as
//! they pass ([`Frames`]) and ends the connection at the header of any
//! message longer than the call may return (or malformed), before its
//! body is read; the driver then fails, and [`Guard::explain`] says why.
//! The relay runs inside the call's own future ([`Guard::run`]), on the
//! run's thread, not on the shared I/O runtime.
//!
//! The relay holds one read buffer (64 KiB); the driver one message under
//! the cap (MySQL's driver reserves up to twice a full 16 MiB packet for a
//! message that spans packets, which only a cap of 16 MiB or more lets
//! through).
//!
//! It reads the plain protocol, which is all this build of sqlx speaks:
//! the workspace gives sqlx no TLS feature, so it sends PostgreSQL no
//! `SSLRequest` (whose one-byte answer is not framed) and MySQL no TLS or
//! compression flag. Turning TLS on would need the guard to follow the
//! handshake first.
//!
//! [`Bounds::max_bytes`]: super::rows::Bounds

use super::rows::{Bounds, SqlError};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::pin::pin;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Upstream {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl Upstream {
    /// `host` as a URL gives it (an IPv6 address in brackets) and `port`.
    pub fn tcp(host: &str, port: u16) -> Self {
        Self::Tcp(host.trim_start_matches('[').trim_end_matches(']').to_owned(), port)
    }
}

/// Why the relay ended a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cut {
    /// A message of this many bytes (so far), over the cap.
    TooLarge(u64),
    /// A header no server sends (a PostgreSQL length under 4).
    Malformed,
    /// The server could not be reached.
    Unreachable(String),
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

    /// Reads `bytes`, the next the server sent: an error at the first
    /// header over the cap or malformed.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Cut> {
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
                    let length = u64::from(u32::from_be_bytes([h[1], h[2], h[3], h[4]]));
                    // The driver would take a shorter length on trust and panic.
                    let body = length.checked_sub(4).ok_or(Cut::Malformed)?;
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
                return Err(Cut::TooLarge(message));
            }
            self.body_left = body;
        }
        Ok(())
    }
}

/// The socket of one call's relay, and the relay to run beside the call.
pub(super) struct Guard {
    dir: SocketDir,
    socket: PathBuf,
    max_bytes: usize,
    relay: Relay,
}

/// The private directory the socket is in, removed when dropped.
struct SocketDir(PathBuf);

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the relay needs once it runs.
struct Relay {
    listener: UnixListener,
    upstream: Upstream,
    frames: Frames,
}

impl Guard {
    /// Listens on `socket_name` in a new private directory, to relay the
    /// first connection there to `upstream` while [`Guard::run`] runs,
    /// cutting it at any message over what `bounds` let a call return.
    /// Call it on a tokio runtime.
    pub fn start(upstream: Upstream, framing: Framing, socket_name: &str, bounds: &Bounds) -> std::io::Result<Self> {
        // A Unix socket's path has at most 107 bytes.
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() > 64 { PathBuf::from("/tmp") } else { base };
        let path = base.join(format!("sandflow-sql-{:016x}", rand_u64()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let dir = SocketDir(path);
        let socket = dir.0.join(socket_name);
        let listener = UnixListener::bind(&socket)?;
        let frames = Frames::new(framing, bounds.max_bytes as u64 + SLACK);
        Ok(Self { dir, socket, max_bytes: bounds.max_bytes, relay: Relay { listener, upstream, frames } })
    }

    /// The directory the socket is in (PostgreSQL's drivers take that).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The socket (MySQL's drivers take that).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs `call` (which connects to [`Guard::socket`]) with the relay
    /// beside it, and says why it failed if the relay ended its connection.
    pub async fn run<T>(self, call: impl Future<Output = Result<T, SqlError>>) -> Result<T, SqlError> {
        let Self { dir: _dir, max_bytes, relay, .. } = self;
        let mut call = pin!(call);
        let (result, cut) = tokio::select! {
            result = &mut call => (result, None),
            // Its end closes the driver's connection: the call ends soon.
            cut = relay.serve() => (call.await, cut),
        };
        result.map_err(|error| explain(error, cut, max_bytes))
    }
}

/// `error` as the caller should see it: if the relay ended the connection
/// (`cut`), that is why the driver failed.
fn explain(error: SqlError, cut: Option<Cut>, max_bytes: usize) -> SqlError {
    if !matches!(error, SqlError::Failed(_) | SqlError::Connect(_)) {
        return error; // The host's or the database's own reason.
    }
    match cut {
        None => error,
        Some(Cut::TooLarge(size)) => SqlError::Invalid(format!(
            "the database sent a message of {size} bytes or more (one row, or a notice), over the {max_bytes} \
             bytes of values one call may return; select less: a LIMIT, fewer columns, or a substr() of long text"
        )),
        Some(Cut::Malformed) => SqlError::Failed("the database sent a malformed message".into()),
        Some(Cut::Unreachable(error)) => SqlError::Connect(error),
    }
}

fn rand_u64() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

impl Relay {
    /// Relays the first connection until either side ends or a message
    /// is cut, and says why it ended the connection if it did.
    async fn serve(self) -> Option<Cut> {
        let Relay { listener, upstream, frames } = self;
        let (client, _) = listener.accept().await.ok()?;
        drop(listener);
        let outcome = match &upstream {
            Upstream::Tcp(host, port) => match TcpStream::connect((host.as_str(), *port)).await {
                Ok(server) => {
                    let _ = server.set_nodelay(true);
                    pump(client, server, frames).await
                }
                Err(error) => Err(Cut::Unreachable(error.to_string())),
            },
            Upstream::Unix(path) => match UnixStream::connect(path).await {
                Ok(server) => pump(client, server, frames).await,
                Err(error) => Err(Cut::Unreachable(error.to_string())),
            },
        };
        // Dropping the driver's end on return fails its call.
        let why = outcome.err()?;
        tracing::warn!(?why, "the SQL relay ended the connection");
        Some(why)
    }
}

/// Copies both ways until either side ends, or a message is cut.
async fn pump(client: UnixStream, server: impl AsyncRead + AsyncWrite, mut frames: Frames) -> Result<(), Cut> {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = tokio::io::split(server);
    let up = tokio::io::copy(&mut from_client, &mut to_server);
    let down = async {
        let mut buffer = vec![0; 64 << 10];
        loop {
            let read = match from_server.read(&mut buffer).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(read) => read,
            };
            frames.feed(&buffer[..read])?;
            if to_client.write_all(&buffer[..read]).await.is_err() {
                return Ok(());
            }
        }
    };
    tokio::select! {
        _ = up => Ok(()),
        outcome = down => outcome,
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
        assert_eq!(frames.feed(&header[3..]), Err(Cut::TooLarge(1_000_000_000)));
    }

    #[test]
    fn a_postgres_length_under_four_is_malformed() {
        let mut frames = Frames::new(Framing::Postgres, 100);
        assert_eq!(frames.feed(&[b'D', 0, 0, 0, 3]), Err(Cut::Malformed));
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        assert_eq!(Upstream::tcp("[::1]", 5432), Upstream::Tcp("::1".into(), 5432));
        assert_eq!(Upstream::tcp("db.internal", 3306), Upstream::Tcp("db.internal".into(), 3306));
    }

    fn bounds() -> Bounds {
        Bounds { max_rows: 10, max_bytes: 1 << 20, time: std::time::Duration::from_secs(5) }
    }

    /// What a driver would do: connect, send, read until the end; then fail
    /// as a driver whose connection ended does.
    async fn drive(socket: PathBuf) -> Result<Vec<u8>, SqlError> {
        let mut client = UnixStream::connect(socket).await.expect("connects");
        client.write_all(b"ping").await.expect("sends");
        let mut received = Vec::new();
        let _ = client.read_to_end(&mut received).await;
        Err(SqlError::Failed(format!("the connection ended after {} bytes", received.len())))
    }

    fn said(error: SqlError) -> String {
        match error {
            SqlError::Invalid(said) => format!("invalid: {said}"),
            SqlError::Connect(said) => format!("connect: {said}"),
            SqlError::Failed(said) => format!("failed: {said}"),
            SqlError::Refused { message, .. } => format!("refused: {message}"),
        }
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
            let guard =
                Guard::start(Upstream::tcp("127.0.0.1", port), Framing::Postgres, "s", &bounds()).expect("starts");
            let (dir, socket) = (guard.dir().to_owned(), guard.socket().to_owned());
            assert!(dir.exists());
            let said = said(guard.run(drive(socket)).await.expect_err("cut"));
            assert!(said.starts_with("invalid: ") && said.contains("1000000000 bytes or more"), "{said}");
            assert!(said.contains("1048576"), "{said}");
            assert!(!dir.exists(), "the socket's directory is removed");
        });
    }

    #[test]
    fn an_unreachable_server_is_a_connect_error() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
            let port = closed.local_addr().expect("address").port();
            drop(closed);
            let guard = Guard::start(Upstream::tcp("127.0.0.1", port), Framing::MySql, "s", &bounds()).expect("starts");
            let socket = guard.socket().to_owned();
            let said = said(guard.run(drive(socket)).await.expect_err("unreachable"));
            assert!(said.starts_with("connect: ") && said.to_lowercase().contains("refused"), "{said}");
        });
    }

    #[test]
    fn the_hosts_own_refusals_are_kept() {
        let refusal = SqlError::Invalid("the statement returns more than 10 rows".into());
        let said = said(explain(refusal, Some(Cut::TooLarge(1 << 30)), 1 << 20));
        assert!(said.contains("more than 10 rows"), "{said}");
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
        assert_eq!(frames.feed(&mysql(11, 4)), Err(Cut::TooLarge(0xFF_FFFF + 11)));
    }
}
