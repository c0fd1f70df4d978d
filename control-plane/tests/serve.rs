//! `serve` on a real listener (port 0): it creates and migrates the SQLite
//! database in the data directory, answers HTTP, and stops on shutdown.

use sandflow_control_plane::{Config, serve};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

async fn http(address: std::net::SocketAddr, request: String) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test]
async fn serves_on_a_listener_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let config = Config { data_dir: data_dir.clone(), secure_cookies: false, ..Config::default() };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(config, listener, async {
        stopped.await.ok();
    }));

    let health = http(address, "GET /healthz HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n\r\n".into()).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = r#"{"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}"#;
    let register = format!(
        "POST /api/auth/register/ HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = http(address, register).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains(r#""is_staff":true"#), "{answer}");
    assert!(data_dir.join("control-plane.db").is_file());

    stop.send(()).expect("server still running");
    let result = tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops").expect("joins");
    result.expect("served without error");
}
