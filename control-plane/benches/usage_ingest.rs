//! Usage ingestion throughput: records per second into the ledger, on
//! SQLite (a temporary file) and PostgreSQL (a fresh database, skipped with
//! a message when unreachable), with 20% duplicates, in batches of 1,000 as
//! the runtime host sends them. Each store is measured three ways: through
//! the HTTP handler (`POST /api/runtime/usage/`, JSON parsing included) by
//! one sender, by four concurrent senders (several runtime hosts), and
//! through `usage::ingest` alone. After each run the ledger's rows are
//! counted: every key must be there exactly once.
//!
//! `cargo bench -p sandflow-control-plane --bench usage_ingest`; results go
//! to stderr. Without `--bench` (as `cargo test --all-targets` runs it) it
//! does one small SQLite pass as a smoke test; asked to `--list` (nextest),
//! it does nothing.

use axum::body::Body;
use axum::http::{Request, header};
use sandflow_control_plane::config::Secret;
use sandflow_control_plane::db::Db;
use sandflow_control_plane::usage::{UsageRecord, ingest};
use sandflow_control_plane::{AppState, Config, app};
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

const BATCH: usize = 1_000;
const TOKEN: &str = "bench-runtime-token";

fn main() {
    // Test runners that list targets (`--list`) get nothing and no work.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let records = if full { 200_000 } else { 2_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench_store("sqlite", &url, records).await;
        if !full {
            return;
        }
        let admin = std::env::var("SANDFLOW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        match sqlx::AnyConnection::connect(&admin).await {
            Err(e) => eprintln!("postgres: skipped, {admin} is unreachable: {e}"),
            Ok(mut conn) => {
                let name = format!("cp_bench_{}", uuid::Uuid::new_v4().simple());
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                bench_store("postgres", &format!("{base}/{name}"), records).await;
                conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.expect("drop database");
            }
        }
    });
}

/// `count` records whose every fifth repeats an earlier key (in this batch
/// or an earlier one): 20% duplicates.
fn records(prefix: &str, count: usize) -> (Vec<UsageRecord>, usize) {
    let mut unique = 0usize;
    let out = (0..count)
        .map(|i| {
            let key = if i % 5 == 4 {
                format!("{prefix}-{}", (i * 7_919) % unique)
            } else {
                unique += 1;
                format!("{prefix}-{}", unique - 1)
            };
            UsageRecord {
                idempotency_key: key,
                tenant: format!("tenant-{}", i % 97),
                agent: format!("agent-{}", i % 13),
                subscription: (i % 3 == 0).then(|| format!("sub-{}", i % 31)),
                flow_version: "sha256:4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09".into(),
                fuel: 120_000 + i as u64,
                tokens_in: (i % 500) as u64,
                tokens_out: (i % 700) as u64,
                wall_micros: 800 + (i % 1000) as u64,
                bytes_in: 27,
                bytes_out: 140,
                http_bytes: if i.is_multiple_of(4) { 18_000 } else { 0 },
                outcome: if i % 50 == 0 { "out_of_fuel".into() } else { "completed".into() },
                started_at_ms: 1_764_115_200_000 + i as u64,
                key_id: Some(format!("key-{}", i % 8)),
            }
        })
        .collect();
    (out, unique)
}

async fn bench_store(store: &str, url: &str, count: usize) {
    let db = Db::open(url).await.expect("open database");
    let config = Config { runtime_token: Some(Secret::new(TOKEN)), ..Config::default() };
    let router = app(AppState::new(db.clone(), config));

    for senders in [1, 4] {
        let prefix = format!("http{senders}");
        let (batch, unique) = records(&prefix, count);
        let bodies: Vec<Vec<u8>> = batch.chunks(BATCH).map(|c| serde_json::to_vec(c).expect("json")).collect();
        let started = Instant::now();
        // `senders` runtime hosts delivering at once, batches dealt round-robin.
        let mut tasks = Vec::new();
        for sender in 0..senders {
            let mine: Vec<Vec<u8>> = bodies.iter().skip(sender).step_by(senders).cloned().collect();
            let router = router.clone();
            tasks.push(tokio::spawn(async move {
                let mut accepted = 0;
                for body in mine {
                    accepted += post(&router, body).await;
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += task.await.expect("sender");
        }
        report(store, &format!("http, {senders} sender(s)"), count, started.elapsed());
        check(&db, &format!("{prefix}-%"), accepted, unique).await;
    }

    let (batch, unique) = records("ledger", count);
    let mut accepted = 0;
    let started = Instant::now();
    for chunk in batch.chunks(BATCH) {
        accepted += ingest(&db, chunk).await.expect("ingest").accepted;
    }
    report(store, "ledger", count, started.elapsed());
    check(&db, "ledger-%", accepted, unique).await;
    db.close().await;
}

async fn post(router: &axum::Router, body: Vec<u8>) -> u64 {
    let request = Request::post("/api/runtime/usage/")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let outcome: serde_json::Value = serde_json::from_slice(&bytes).expect("outcome");
    outcome["accepted"].as_u64().expect("accepted")
}

fn report(store: &str, path: &str, count: usize, elapsed: Duration) {
    let rate = count as f64 / elapsed.as_secs_f64();
    eprintln!(
        "usage_ingest/{store}/{path}: {count} records (20% duplicates) in {:.3} s = {rate:.0} records/s",
        elapsed.as_secs_f64()
    );
}

/// Nothing counted twice: the answers and the rows agree with the number
/// of distinct keys sent.
async fn check(db: &Db, pattern: &str, accepted: u64, unique: usize) {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_record WHERE idempotency_key LIKE $1")
        .bind(pattern)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(accepted, unique as u64, "accepted records must be the distinct keys");
    assert_eq!(rows, unique as i64, "each key must be stored once");
}
