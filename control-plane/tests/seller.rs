//! The seller journey: provider status requested and decided, provider
//! agents, flow validation and import into immutable versions, stats from
//! the ledger; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::{Method, header};
use common::{RUNTIME_TOKEN, TestApp, flow};
use serde_json::json;

on_both_stores!(
    provider_request_approved,
    provider_request_rejected_then_asked_again,
    provider_agents_need_an_approved_provider,
    validate_flow_returns_diagnostics,
    import_flow_creates_immutable_versions,
    stats_come_from_the_ledger,
);

async fn provider_request_approved(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.organization(&seller, "Acme").await;
    let path = format!("/api/organizations/{org}/provider-request");
    let request = app.post(&path, &seller, json!({"note": "we sell agents"})).await.expect(201);
    assert_eq!(request["status"], "pending");
    let id = request["id"].as_str().unwrap();
    // Asking twice while pending is refused, and adds no row.
    app.post(&path, &seller, json!({})).await.refused(409, "invalid_transition");
    assert_eq!(app.count("provider_request").await, 1);
    // The seller cannot decide for themselves.
    app.post(&format!("/api/admin/provider-requests/{id}/approve"), &seller, json!({})).await.refused(403, "forbidden");

    let queue = app.get("/api/admin/provider-requests/?status=pending", &operator).await.expect(200);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    app.get("/api/admin/provider-requests/?status=maybe", &operator).await.refused(422, "invalid");
    let approved =
        app.post(&format!("/api/admin/provider-requests/{id}/approve"), &operator, json!({})).await.expect(200);
    assert_eq!(approved["status"], "approved");
    assert!(approved["decided_by"].is_string());
    let org_now = app.get(&format!("/api/organizations/{org}"), &seller).await.expect(200);
    assert_eq!(org_now["provider_status"], "approved");

    // Decided requests stay decided.
    app.post(&format!("/api/admin/provider-requests/{id}/approve"), &operator, json!({}))
        .await
        .refused(409, "invalid_transition");
    app.post(&format!("/api/admin/provider-requests/{id}/reject"), &operator, json!({"reason": "changed my mind"}))
        .await
        .refused(409, "invalid_transition");
    app.post(&path, &seller, json!({})).await.refused(409, "invalid_transition");
    app.post("/api/admin/provider-requests/nope/approve", &operator, json!({})).await.refused(404, "not_found");
    let latest = app.get(&path, &seller).await.expect(200);
    assert_eq!(latest["status"], "approved");
}

async fn provider_request_rejected_then_asked_again(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let org = app.organization(&seller, "Acme").await;
    let path = format!("/api/organizations/{org}/provider-request");
    app.get(&path, &seller).await.refused(404, "not_found");
    // An empty body is allowed (the note is optional).
    let request = app.call(Method::POST, &path, Some(&seller), None).await.expect(201);
    let id = request["id"].as_str().unwrap().to_owned();
    let reject = format!("/api/admin/provider-requests/{id}/reject");
    // A rejection must say why.
    app.post(&reject, &operator, json!({})).await.refused(422, "invalid");
    app.post(&reject, &operator, json!({"reason": "  "})).await.refused(422, "invalid");
    let rejected = app.post(&reject, &operator, json!({"reason": "tell us more about your agents"})).await.expect(200);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "tell us more about your agents");
    let org_now = app.get(&format!("/api/organizations/{org}"), &seller).await.expect(200);
    assert_eq!(org_now["provider_status"], "rejected");
    app.post(&reject, &operator, json!({"reason": "again"})).await.refused(409, "invalid_transition");
    app.post(&format!("/api/admin/provider-requests/{id}/approve"), &operator, json!({}))
        .await
        .refused(409, "invalid_transition");
    // A rejected organisation may ask again.
    let again = app.post(&path, &seller, json!({"note": "here is more"})).await.expect(201);
    assert_ne!(again["id"], rejected["id"]);
    assert_eq!(app.count("provider_request").await, 2);
}

async fn provider_agents_need_an_approved_provider(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let member = app.signup("member@example.com").await;
    let pending = app.organization(&seller, "Not yet").await;
    app.post("/api/provider-agents/", &seller, json!({"organization": pending, "name": "Echo"}))
        .await
        .refused(403, "forbidden");
    let org = app.provider(&seller, &operator, "Acme").await;
    app.post(
        &format!("/api/organizations/{org}/members"),
        &seller,
        json!({"email": "member@example.com", "role": "member"}),
    )
    .await
    .expect(201);

    let agent = app
        .post(
            "/api/provider-agents/",
            &seller,
            json!({"organization": org, "name": "Echo", "description": "says it back"}),
        )
        .await
        .expect(201);
    let id = agent["id"].as_str().unwrap();
    assert_eq!(agent["latest_version"], serde_json::Value::Null);
    app.post("/api/provider-agents/", &seller, json!({"organization": org, "name": "Echo"}))
        .await
        .refused(409, "conflict");
    app.post("/api/provider-agents/", &member, json!({"organization": org, "name": "Mine"}))
        .await
        .refused(403, "forbidden");
    app.post("/api/provider-agents/", &seller, json!({"organization": org, "name": ""})).await.refused(422, "invalid");

    let listed = app.get("/api/provider-agents/", &member).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let listed = app.get(&format!("/api/provider-agents/?organization={org}"), &member).await.expect(200);
    assert_eq!(listed[0]["name"], "Echo");
    app.get(&format!("/api/provider-agents/{id}"), &member).await.expect(200);

    let path = format!("/api/provider-agents/{id}");
    app.call(Method::PATCH, &path, Some(&member), Some(json!({"name": "Renamed"}))).await.refused(403, "forbidden");
    let renamed = app.call(Method::PATCH, &path, Some(&seller), Some(json!({"name": "Renamed"}))).await.expect(200);
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["description"], "says it back");
    app.call(Method::DELETE, &path, Some(&member), None).await.refused(403, "forbidden");
    app.call(Method::DELETE, &path, Some(&seller), None).await.expect(204);
    app.get(&path, &seller).await.refused(404, "not_found");
}

async fn validate_flow_returns_diagnostics(app: TestApp) {
    let seller = app.signup("seller@example.com").await;
    let ok = app.post_bytes("/api/provider-agents/validate_flow/", &seller, flow("prompt-echo.json")).await.expect(200);
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["error_count"], 0);
    assert!(ok["diagnostics"].is_array());

    // Not JSON at all: the compiler's own diagnostic, in our error shape.
    let broken =
        app.post_bytes("/api/provider-agents/validate_flow", &seller, b"{\"data\": {\"nodes\": [".to_vec()).await;
    let body = broken.expect(422);
    assert_eq!(body["code"], "invalid_flow");
    let diagnostics = body["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty());
    assert_eq!(diagnostics[0]["severity"], "error");
    assert!(diagnostics[0]["help"].as_str().is_some());

    // Valid JSON, invalid flow: every problem, each with where it is.
    let mut flow: serde_json::Value = serde_json::from_slice(&flow("prompt-echo.json")).unwrap();
    flow["data"]["nodes"][0]["data"]["type"] = json!("NoSuchComponent");
    let body = app.post("/api/provider-agents/validate_flow", &seller, flow).await.expect(422);
    let unknown = body["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "unknown-component");
    let unknown = unknown.unwrap_or_else(|| panic!("{body}"));
    assert!(unknown["pointer"].as_str().unwrap().starts_with("/data/nodes/0"));
    assert!(unknown["message"].as_str().unwrap().contains("NoSuchComponent"));

    // Signed-in users only.
    app.call(Method::POST, "/api/provider-agents/validate_flow", None, Some(json!({})))
        .await
        .refused(401, "unauthorized");
}

async fn import_flow_creates_immutable_versions(app: TestApp) {
    let operator = app.operator().await;
    let seller = app.signup("seller@example.com").await;
    let stranger = app.signup("stranger@example.com").await;
    let org = app.provider(&seller, &operator, "Acme").await;
    let agent =
        app.post("/api/provider-agents/", &seller, json!({"organization": org, "name": "Echo"})).await.expect(201);
    let id = agent["id"].as_str().unwrap();
    let import = format!("/api/provider-agents/{id}/import_flow/");

    let v1 = app.post_bytes(&import, &seller, flow("prompt-echo.json")).await.expect(201);
    assert_eq!(v1["version"], 1);
    let digest = v1["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(v1["manifest"]["digest"], digest.as_str());

    // The same flow again is the same version, not a copy.
    let again = app.post_bytes(&import, &seller, flow("prompt-echo.json")).await.expect(200);
    assert_eq!(again["version"], 1);
    // A different flow is a new version; the first one is untouched.
    let v2 = app.post_bytes(&import, &seller, flow("echo.json")).await.expect(201);
    assert_eq!(v2["version"], 2);
    assert_ne!(v2["digest"], digest.as_str());
    let first = app.get(&format!("/api/provider-agents/{id}/versions/1"), &seller).await.expect(200);
    assert_eq!(first["digest"], digest.as_str());
    let listed = app.get(&format!("/api/provider-agents/{id}/versions"), &seller).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(app.get(&format!("/api/provider-agents/{id}"), &seller).await.expect(200)["latest_version"], 2);

    // The stored component is the compiler's, byte for byte.
    let wasm = app.get(&format!("/api/provider-agents/{id}/versions/1/artifact"), &seller).await;
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.headers[header::CONTENT_TYPE], "application/wasm");
    let (artifact, _) = sandflow_flow_compiler::compile(&flow("prompt-echo.json"), &Default::default()).unwrap();
    assert_eq!(wasm.bytes, artifact.component);
    assert_eq!(artifact.manifest.digest, digest);

    // A flow with errors stores nothing and says why.
    let body = app.post_bytes(&import, &seller, b"[1, 2]".to_vec()).await.expect(422);
    assert_eq!(body["code"], "invalid_flow");
    assert_eq!(app.count("flow_version").await, 2);
    // Strangers cannot import or read; versions cannot be deleted away.
    app.post_bytes(&import, &stranger, flow("echo.json")).await.refused(404, "not_found");
    app.get(&format!("/api/provider-agents/{id}/versions"), &stranger).await.refused(404, "not_found");
    app.call(Method::DELETE, &format!("/api/provider-agents/{id}"), Some(&seller), None)
        .await
        .refused(409, "invalid_transition");
    app.get(&format!("/api/provider-agents/{id}/versions/9"), &seller).await.refused(404, "not_found");
    assert_eq!(app.count("flow_version").await, 2);
}

async fn stats_come_from_the_ledger(app: TestApp) {
    let m = app.market(json!({})).await;
    let id = &m.agent;
    let (artifact, _) = sandflow_flow_compiler::compile(&flow("prompt-echo.json"), &Default::default()).unwrap();
    let digest = artifact.manifest.digest;
    let empty = app.get(&format!("/api/provider-agents/{id}/stats"), &m.seller).await.expect(200);
    assert_eq!(empty["runs"], 0);
    assert_eq!(empty["last_run_at_ms"], serde_json::Value::Null);
    let order = app.provisioned(&m).await;
    let resource = order["resource_id"].as_str().unwrap();
    // Another seller sells the very same export: same digest, other buyers.
    let rival = app.signup("rival@example.com").await;
    let rival_org = app.provider(&rival, &m.operator, "Rival").await;
    let rival_agent = app.agent(&rival, &rival_org, "Echo too").await;

    let record = |key: &str, tenant: &str, resource: &str, outcome: &str, flow: &str| {
        json!({"idempotency_key": key, "tenant": tenant, "agent": resource, "subscription": resource,
               "flow_version": flow, "fuel": 1000, "tokens_in": 3, "tokens_out": 5, "wall_micros": 40,
               "bytes_in": 10, "bytes_out": 20, "outcome": outcome, "started_at_ms": 1_700_000_000_000u64})
    };
    let batch = json!([
        record("r1", "t1", resource, "completed", &digest),
        record("r2", "t2", resource, "completed", &digest),
        record("r3", "t1", resource, "out_of_fuel", &digest),
        record("r1", "t1", resource, "completed", &digest),
        record("other", "t1", resource, "completed", "sha256:someone-else"),
        record("rivals", "t9", "a-resource-of-the-rival", "completed", &digest),
    ]);
    let answer = app.post("/api/runtime/usage/", RUNTIME_TOKEN, batch).await.expect(200);
    assert_eq!(answer, json!({"accepted": 5, "duplicates": 1}));

    let stats = app.get(&format!("/api/provider-agents/{id}/stats"), &m.seller).await.expect(200);
    assert_eq!(stats["runs"], 3, "{stats}");
    assert_eq!(stats["completed"], 2);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["tenants"], 2);
    assert_eq!(stats["fuel"], 3000);
    assert_eq!(stats["tokens_out"], 15);
    assert_eq!(stats["last_run_at_ms"], 1_700_000_000_000u64);
    assert_eq!(stats["by_version"][0]["flow_version"], digest.as_str());
    assert_eq!(stats["by_version"][0]["runs"], 3);
    assert_eq!(stats["by_version"].as_array().unwrap().len(), 1);
    // Neither seller sees the other's buyers.
    let theirs = app.get(&format!("/api/provider-agents/{rival_agent}/stats"), &rival).await.expect(200);
    assert_eq!(theirs["runs"], 0, "{theirs}");
    let stranger = app.signup("stranger@example.com").await;
    app.get(&format!("/api/provider-agents/{id}/stats"), &stranger).await.refused(404, "not_found");
}
