//! The usage ledger: batches as the runtime host sends them, idempotent by
//! key, all or nothing; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::{RUNTIME_TOKEN, TestApp};
use sandflow_control_plane::usage::UsageRecord;
use serde_json::{Value, json};

on_both_stores!(
    runtime_batches_are_counted_once,
    only_the_runtime_may_post_usage,
    an_invalid_record_stores_nothing,
    large_batches_span_several_statements,
    concurrent_overlapping_batches_are_counted_once,
    awkward_text_is_stored_as_sent,
);

/// A batch exactly as `sandflow_runtime_host::usage::HttpSink` posts it:
/// a JSON array of `UsageRecord`s, field for field.
const RUNTIME_BATCH: &str = r#"[
  {"idempotency_key":"run-1","tenant":"tenant-a","agent":"agent-1","subscription":"sub-9",
   "flow_version":"sha256:0f1e","fuel":123456,"tokens_in":0,"tokens_out":0,"wall_micros":812,
   "bytes_in":27,"bytes_out":14,"outcome":"completed","started_at_ms":1764115200000},
  {"idempotency_key":"run-2","tenant":"tenant-a","agent":"agent-1","subscription":null,
   "flow_version":"sha256:0f1e","fuel":999,"tokens_in":10,"tokens_out":20,"wall_micros":5000,
   "bytes_in":3,"bytes_out":0,"http_bytes":18432,"outcome":"out_of_fuel","started_at_ms":1764115200001}
]"#;

async fn runtime_batches_are_counted_once(app: TestApp) {
    let records: Vec<UsageRecord> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    assert_eq!(records[0].subscription.as_deref(), Some("sub-9"));
    let first = app.post_bytes("/api/runtime/usage/", RUNTIME_TOKEN, RUNTIME_BATCH.into()).await.expect(200);
    assert_eq!(first, json!({"accepted": 2, "duplicates": 0}));
    // Delivery is at least once: the same batch again counts nothing.
    let again = app.post_bytes("/api/runtime/usage/", RUNTIME_TOKEN, RUNTIME_BATCH.into()).await.expect(200);
    assert_eq!(again, json!({"accepted": 0, "duplicates": 2}));
    // Repeats inside one batch count once too.
    let mut batch: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    batch[0]["idempotency_key"] = json!("run-3");
    batch[1]["idempotency_key"] = json!("run-3");
    let inner = app.post("/api/runtime/usage", RUNTIME_TOKEN, Value::Array(batch)).await.expect(200);
    assert_eq!(inner, json!({"accepted": 1, "duplicates": 1}));
    assert_eq!(app.count("usage_record").await, 3);
    // Values are stored as sent.
    let fuel: i64 = sqlx::query_scalar("SELECT fuel FROM usage_record WHERE idempotency_key = 'run-1'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(fuel, 123_456);
    // `http_bytes` is stored when sent and zero when left out (as runtime
    // hosts do for runs that made no requests).
    let http: Vec<i64> = sqlx::query_scalar(
        "SELECT http_bytes FROM usage_record WHERE idempotency_key IN ('run-1', 'run-2') ORDER BY idempotency_key",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(http, [0, 18_432]);
    // An empty batch is fine and does nothing.
    assert_eq!(app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!([])).await.expect(200)["accepted"], 0);
}

/// Text the PostgreSQL path sends inside array literals comes back exactly:
/// quotes, backslashes, braces, commas, spaces, the word NULL, non-ASCII.
async fn awkward_text_is_stored_as_sent(app: TestApp) {
    let awkward = [r#"quo"te"#, r"back\slash", "{a,b}", " spaced ", "NULL", "ünïcødé ✓", r#"\"},{""#];
    let mut batch: Vec<Value> = Vec::new();
    for (i, text) in awkward.iter().enumerate() {
        let mut record: Value = serde_json::from_str::<Vec<Value>>(RUNTIME_BATCH).unwrap()[0].clone();
        record["idempotency_key"] = json!(format!("{text}#{i}"));
        record["tenant"] = json!(text);
        record["subscription"] = if i % 2 == 0 { json!(text) } else { Value::Null };
        batch.push(record);
    }
    let answer = app.post("/api/runtime/usage/", RUNTIME_TOKEN, Value::Array(batch)).await.expect(200);
    assert_eq!(answer, json!({"accepted": awkward.len(), "duplicates": 0}));
    for (i, text) in awkward.iter().enumerate() {
        let (tenant, subscription): (String, Option<String>) =
            sqlx::query_as("SELECT tenant, subscription FROM usage_record WHERE idempotency_key = $1")
                .bind(format!("{text}#{i}"))
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(tenant, *text);
        assert_eq!(subscription.as_deref(), (i % 2 == 0).then_some(*text));
    }
}

async fn only_the_runtime_may_post_usage(app: TestApp) {
    let user = app.signup("ada@example.com").await;
    app.post_bytes("/api/runtime/usage/", &user, RUNTIME_BATCH.into()).await.refused(401, "unauthorized");
    app.post_bytes("/api/runtime/usage/", "", RUNTIME_BATCH.into()).await.refused(401, "unauthorized");
    app.call(Method::POST, "/api/runtime/usage/", None, Some(json!([]))).await.refused(401, "unauthorized");
    assert_eq!(app.count("usage_record").await, 0);
}

async fn an_invalid_record_stores_nothing(app: TestApp) {
    let mut batch: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    batch[1]["idempotency_key"] = json!("");
    let detail = app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!(batch)).await.refused(422, "invalid");
    assert!(detail.contains("record 1") && detail.contains("idempotency_key"), "{detail}");
    let mut batch: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    batch[1]["fuel"] = json!(u64::MAX);
    let detail = app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!(batch)).await.refused(422, "invalid");
    assert!(detail.contains("fuel"), "{detail}");
    let mut batch: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    batch[0]["surprise"] = json!(1);
    let detail = app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!(batch)).await.refused(422, "invalid");
    assert!(detail.contains("surprise"), "{detail}");
    let mut batch: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    batch[0]["fuel"] = json!(-1);
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!(batch)).await.refused(422, "invalid");
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!({"records": []})).await.refused(422, "invalid");
    // Records are objects, not positional arrays.
    let positional = json!([["k", "t", "a", null, "sha256:0", 1, 2, 3, 4, 5, 6, "completed", 7]]);
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, positional).await.refused(422, "invalid");
    assert_eq!(app.count("usage_record").await, 0);
}

async fn large_batches_span_several_statements(app: TestApp) {
    let template: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    let batch: Vec<Value> = (0..1_234)
        .map(|i| {
            let mut r = template[0].clone();
            r["idempotency_key"] = json!(format!("run-{}", i % 1_000));
            r
        })
        .collect();
    let answer = app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!(batch)).await.expect(200);
    assert_eq!(answer, json!({"accepted": 1_000, "duplicates": 234}));
    assert_eq!(app.count("usage_record").await, 1_000);
}

/// Several runtime hosts delivering at once, their batches sharing keys in
/// opposite orders (the shape that deadlocks when keys are locked in
/// arrival order): every batch succeeds and every key counts once.
async fn concurrent_overlapping_batches_are_counted_once(app: TestApp) {
    let template: Vec<Value> = serde_json::from_str(RUNTIME_BATCH).unwrap();
    let batch = |keys: Vec<usize>| {
        let records: Vec<Value> = keys
            .into_iter()
            .map(|k| {
                let mut r = template[0].clone();
                r["idempotency_key"] = json!(format!("key-{k:05}"));
                r
            })
            .collect();
        Value::Array(records)
    };
    let mut tasks = Vec::new();
    for sender in 0..8usize {
        let keys: Vec<usize> = if sender % 2 == 0 { (0..600).collect() } else { (0..600).rev().collect() };
        let body = batch(keys.into_iter().map(|k| (k + sender * 100) % 1_000).collect());
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.post("/api/runtime/usage/", RUNTIME_TOKEN, body).await.expect(200) }));
    }
    let mut accepted = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer["accepted"].as_u64().unwrap() + answer["duplicates"].as_u64().unwrap(), 600);
        accepted += answer["accepted"].as_u64().unwrap();
    }
    assert_eq!(accepted, 1_000);
    assert_eq!(app.count("usage_record").await, 1_000);
}
