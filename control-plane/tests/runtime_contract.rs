//! What the runtime hosts build on: the runtime change feed, artifacts and
//! usage totals; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::{Method, header};
use common::{RUNTIME_TOKEN, TestApp, flow};
use serde_json::{Value, json};

on_both_stores!(feed_needs_the_runtime_token_and_pages, artifacts_and_usage_totals,);

async fn feed_needs_the_runtime_token_and_pages(app: TestApp) {
    let m = app.market(json!({})).await;
    for _ in 0..3 {
        app.provisioned(&m).await;
    }
    app.get("/api/runtime/changes/", &m.operator).await.refused(401, "unauthorized");
    app.call(Method::GET, "/api/runtime/changes/", None, None).await.refused(401, "unauthorized");
    let page = app.get("/api/runtime/changes/?after=0&limit=2", RUNTIME_TOKEN).await.expect(200);
    assert_eq!(page["changes"].as_array().unwrap().len(), 2);
    let last = page["last"].as_i64().unwrap();
    assert_eq!(page["changes"][1]["seq"], last);
    let rest = app.get(&format!("/api/runtime/changes/?after={last}&limit=2"), RUNTIME_TOKEN).await.expect(200);
    assert_eq!(rest["changes"].as_array().unwrap().len(), 1);
    let end = rest["last"].as_i64().unwrap();
    let empty = app.feed(end).await;
    assert_eq!(empty, json!({"changes": [], "last": end}));
    for bad in ["limit=0", "limit=1001", "after=-1", "after=x", "since=1"] {
        app.get(&format!("/api/runtime/changes/?{bad}"), RUNTIME_TOKEN).await.refused(422, "invalid");
    }
}

fn record(key: &str, tenant: &str, agent: &str, started_at_ms: u64) -> Value {
    json!({"idempotency_key": key, "tenant": tenant, "agent": agent, "subscription": agent,
           "flow_version": "sha256:x", "fuel": 1000, "tokens_in": 3, "tokens_out": 5, "wall_micros": 40,
           "bytes_in": 10, "bytes_out": 20, "outcome": "completed", "started_at_ms": started_at_ms})
}

/// 2026-11-15T00:00:00Z and 2026-10-31T23:59:59.999Z.
const NOVEMBER: u64 = 1_794_700_800_000;
const OCTOBER: u64 = 1_793_491_199_999;

async fn artifacts_and_usage_totals(app: TestApp) {
    let m = app.market(json!({})).await;
    let (artifact, _) = sandflow_flow_compiler::compile(&flow("prompt-echo.json"), &Default::default()).unwrap();
    let digest = artifact.manifest.digest.clone();
    let answer = app.get(&format!("/api/runtime/artifacts/{digest}"), RUNTIME_TOKEN).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(answer.bytes, artifact.component);
    app.get("/api/runtime/artifacts/sha256:nope", RUNTIME_TOKEN).await.refused(404, "not_found");
    app.get(&format!("/api/runtime/artifacts/{digest}"), &m.seller).await.refused(401, "unauthorized");

    let batch = json!([
        record("a", "t1", "r1", NOVEMBER),
        record("b", "t1", "r1", NOVEMBER + 1),
        record("c", "t2", "r2", NOVEMBER),
        record("d", "t1", "r1", OCTOBER),
    ]);
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, batch).await.expect(200);
    let totals = app.get("/api/runtime/usage-totals/?month=2026-11", RUNTIME_TOKEN).await.expect(200);
    assert_eq!(
        totals,
        json!({"tenants": {"t1": {"runs": 2, "fuel": 2000, "tokens": 16}, "t2": {"runs": 1, "fuel": 1000, "tokens": 8}}})
    );
    let october = app.get("/api/runtime/usage-totals/?month=2026-10", RUNTIME_TOKEN).await.expect(200);
    assert_eq!(october["tenants"]["t1"]["runs"], 1);
    assert_eq!(
        app.get("/api/runtime/usage-totals/?month=2020-01", RUNTIME_TOKEN).await.expect(200),
        json!({"tenants": {}})
    );
    app.get("/api/runtime/usage-totals/?month=2026-13", RUNTIME_TOKEN).await.refused(422, "invalid");
    app.get("/api/runtime/usage-totals/", RUNTIME_TOKEN).await.refused(422, "invalid");
    app.get("/api/runtime/usage-totals/?month=2026-11", &m.operator).await.refused(401, "unauthorized");
}
