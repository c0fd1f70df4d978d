//! Bad requests get a 4xx in our error shape that says what to fix, and
//! change nothing; on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{MAX_BODY, PASSWORD, RUNTIME_TOKEN, TestApp};
use serde_json::json;

on_both_stores!(
    malformed_and_unknown_bodies,
    wrong_content_type,
    oversized_bodies,
    unknown_routes_and_methods,
    database_failures_are_not_echoed,
);

async fn malformed_and_unknown_bodies(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    let detail =
        app.post_bytes("/api/organizations/", &token, b"{\"name\": ".to_vec()).await.refused(400, "malformed_body");
    assert!(detail.contains("line 1"), "{detail}");
    let detail =
        app.post("/api/organizations/", &token, json!({"name": "Acme", "plan": "gold"})).await.refused(422, "invalid");
    assert!(detail.contains("unknown field `plan`"), "{detail}");
    let detail = app.post("/api/organizations/", &token, json!({})).await.refused(422, "invalid");
    assert!(detail.contains("missing field `name`"), "{detail}");
    app.post("/api/organizations/", &token, json!({"name": 7})).await.refused(422, "invalid");
    let detail = app.post("/api/organizations/", &token, json!(["Acme"])).await.refused(422, "invalid");
    assert!(detail.contains("a JSON object"), "{detail}");
    app.post("/api/organizations/", &token, json!("Acme")).await.refused(422, "invalid");
    let detail = app.get("/api/provider-agents/?owner=me", &token).await.refused(422, "invalid");
    assert!(detail.contains("owner"), "{detail}");
    let register = json!({"email": "bob@example.com", "password": PASSWORD, "name": "Bob", "is_staff": true});
    let detail = app.call(Method::POST, "/api/auth/register", None, Some(register)).await.refused(422, "invalid");
    assert!(detail.contains("is_staff"), "{detail}");
    app.call(Method::POST, "/api/auth/register", None, None).await.refused(415, "unsupported_media_type");
    assert_eq!(app.count("organization").await, 0);
    assert_eq!(app.count("user_account").await, 1);
}

async fn wrong_content_type(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    let form = Request::post("/api/organizations/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("name=Acme"))
        .unwrap();
    let detail = app.send(form).await.refused(415, "unsupported_media_type");
    assert!(detail.contains("application/json"), "{detail}");
    let text = Request::post("/api/runtime/usage/")
        .header(header::AUTHORIZATION, format!("Bearer {RUNTIME_TOKEN}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("[]"))
        .unwrap();
    app.send(text).await.refused(415, "unsupported_media_type");
    // A charset parameter is fine.
    let charset = Request::post("/api/organizations/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(r#"{"name": "Acme"}"#))
        .unwrap();
    app.send(charset).await.expect(201);
    assert_eq!(app.count("organization").await, 1);
}

async fn oversized_bodies(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_BODY + 1));
    app.post_bytes("/api/organizations/", &token, huge.into_bytes()).await.refused(413, "too_large");
    let flow = vec![b' '; MAX_BODY + 1];
    app.post_bytes("/api/provider-agents/validate_flow", &token, flow).await.refused(413, "too_large");
    let usage = format!("[{}]", "1,".repeat(MAX_BODY / 2));
    app.post_bytes("/api/runtime/usage/", RUNTIME_TOKEN, usage.into_bytes()).await.refused(413, "too_large");
    assert_eq!(app.count("organization").await, 0);
    assert_eq!(app.count("usage_record").await, 0);
}

async fn unknown_routes_and_methods(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    let detail = app.get("/api/nothing-here/", &token).await.refused(404, "not_found");
    assert!(detail.contains("/api/nothing-here"), "{detail}");
    app.call(Method::PUT, "/api/users/me", Some(&token), None).await.refused(405, "method_not_allowed");
    assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, 200);
}

/// A database failure is a 500 with a generic message: no driver text, no
/// SQL, no connection details reach the client.
async fn database_failures_are_not_echoed(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    app.db.close().await;
    let answer = app.get("/api/users/me", &token).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body, json!({"detail": "internal error", "code": "internal"}));
}
