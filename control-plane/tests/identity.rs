//! Registration, login, logout, sessions (bearer and cookie), organisations
//! and roles, on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{PASSWORD, TestApp};
use serde_json::json;

on_both_stores!(
    register_login_logout,
    wrong_password_and_unknown_account_look_the_same,
    bearer_and_cookie_sessions,
    first_account_is_the_operator,
    duplicate_email_is_a_conflict_naming_the_field,
    organisation_roles,
    foreign_organisation_is_refused,
    last_owner_stays,
    a_write_transaction_outlasts_a_commit_between_its_read_and_its_write,
);

async fn register_login_logout(app: TestApp) {
    let user = app.register("Ada@Example.com").await;
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password_hash").is_none());
    let login = app
        .call(Method::POST, "/api/auth/login", None, Some(json!({"email": "ada@example.com", "password": PASSWORD})))
        .await;
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    let body = login.expect(200);
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.starts_with(&format!("sandflow_session={token};")));
    // Only a hash of the token is stored.
    let stored: String =
        sqlx::query_scalar("SELECT token_hash FROM session_token").fetch_one(app.db.pool()).await.unwrap();
    assert_ne!(stored, token);

    let me = app.get("/api/users/me", token).await.expect(200);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["organizations"], json!([]));

    let out = app.call(Method::POST, "/api/auth/logout", Some(token), None).await;
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    out.expect(204);
    app.get("/api/users/me", token).await.refused(401, "unauthorized");
    assert_eq!(app.count("session_token").await, 0);
}

async fn wrong_password_and_unknown_account_look_the_same(app: TestApp) {
    app.register("ada@example.com").await;
    let wrong = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ada@example.com", "password": "not it at all"})),
        )
        .await
        .refused(401, "unauthorized");
    let unknown = app
        .call(Method::POST, "/api/auth/login", None, Some(json!({"email": "bob@example.com", "password": PASSWORD})))
        .await
        .refused(401, "unauthorized");
    assert_eq!(wrong, unknown);
    assert_eq!(app.count("session_token").await, 0);
    app.get("/api/users/me", "not-a-token").await.refused(401, "unauthorized");
    app.call(Method::GET, "/api/users/me", None, None).await.refused(401, "unauthorized");
}

async fn bearer_and_cookie_sessions(app: TestApp) {
    let token = app.signup("ada@example.com").await;
    let with_cookie =
        |cookie: String| Request::get("/api/users/me").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
    let me = app.send(with_cookie(format!("theme=dark; sandflow_session={token}"))).await.expect(200);
    assert_eq!(me["email"], "ada@example.com");
    app.send(with_cookie("sandflow_session=forged".into())).await.refused(401, "unauthorized");
    // A bad Authorization header is not rescued by a good cookie.
    let request = Request::get("/api/users/me")
        .header(header::AUTHORIZATION, "Basic YWRhOnB3")
        .header(header::COOKIE, format!("sandflow_session={token}"))
        .body(Body::empty())
        .unwrap();
    app.send(request).await.refused(401, "unauthorized");
    // A page of another site (a sibling subdomain is the same site to
    // `SameSite`) cannot change anything with the cookie; the console's
    // own pages and non-browser clients can.
    let create = |name: &str, headers: &[(&str, &str)]| {
        let mut request = Request::post("/api/organizations/")
            .header(header::COOKIE, format!("sandflow_session={token}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::from(serde_json::json!({ "name": name }).to_string())).unwrap()
    };
    for foreign in [
        &[("sec-fetch-site", "same-site"), ("origin", "https://evil.example.com")][..],
        &[("sec-fetch-site", "cross-site")],
        &[("host", "console.example.com"), ("origin", "https://evil.example.com")],
    ] {
        let detail = app.send(create("Forged", foreign)).await.refused(403, "forbidden");
        assert!(detail.contains("Bearer"), "{detail}");
    }
    app.send(create("Console", &[("sec-fetch-site", "same-origin")])).await.expect(201);
    let own_origin = [("host", "console.example.com"), ("origin", "https://console.example.com")];
    app.send(create("Older browser", &own_origin)).await.expect(201);
    app.send(create("Script", &[])).await.expect(201);
    assert_eq!(app.count("organization WHERE name = 'Forged'").await, 0);
    let cross_site_read = Request::get("/api/users/me")
        .header(header::COOKIE, format!("sandflow_session={token}"))
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    app.send(cross_site_read).await.expect(200);
    // Signing out with the cookie ends that session, not others.
    let other = app.login("ada@example.com").await;
    let logout = Request::post("/api/auth/logout")
        .header(header::COOKIE, format!("sandflow_session={token}"))
        .body(Body::empty())
        .unwrap();
    app.send(logout).await.expect(204);
    app.send(with_cookie(format!("sandflow_session={token}"))).await.refused(401, "unauthorized");
    app.get("/api/users/me", &other).await.expect(200);
}

async fn first_account_is_the_operator(app: TestApp) {
    let first = app.register("first@example.com").await;
    let second = app.register("second@example.com").await;
    assert_eq!(first["is_staff"], true);
    assert_eq!(second["is_staff"], false);
    let token = app.login("second@example.com").await;
    app.get("/api/admin/provider-requests/", &token).await.refused(403, "forbidden");
    let token = app.login("first@example.com").await;
    app.get("/api/admin/provider-requests/", &token).await.expect(200);
    // Bootstrapping promotes an existing account.
    sandflow_control_plane::bootstrap_operator(&app.db, "second@example.com", "a new password!").await.unwrap();
    let token = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "second@example.com", "password": "a new password!"})),
        )
        .await
        .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get("/api/users/me", &token).await.expect(200)["is_staff"], true);
}

async fn duplicate_email_is_a_conflict_naming_the_field(app: TestApp) {
    app.register("ada@example.com").await;
    let body = json!({"email": "ADA@example.com", "password": PASSWORD, "name": "Other Ada"});
    let detail = app.call(Method::POST, "/api/auth/register", None, Some(body)).await.refused(409, "conflict");
    assert!(detail.contains("email"), "{detail}");
    assert_eq!(app.count("user_account").await, 1);
    let short = json!({"email": "bob@example.com", "password": "short", "name": "Bob"});
    let detail = app.call(Method::POST, "/api/auth/register", None, Some(short)).await.refused(422, "invalid");
    assert!(detail.contains("password"), "{detail}");
    let bad = json!({"email": "bob", "password": PASSWORD, "name": "Bob"});
    app.call(Method::POST, "/api/auth/register", None, Some(bad)).await.refused(422, "invalid");
    assert_eq!(app.count("user_account").await, 1);
}

async fn organisation_roles(app: TestApp) {
    let owner = app.signup("owner@example.com").await;
    let admin = app.signup("admin@example.com").await;
    let member = app.signup("member@example.com").await;
    let org = app.organization(&owner, "Acme").await;
    let members = format!("/api/organizations/{org}/members");
    app.post(&members, &owner, json!({"email": "admin@example.com", "role": "admin"})).await.expect(201);
    app.post(&members, &admin, json!({"email": "member@example.com", "role": "member"})).await.expect(201);
    // Already a member: an invalid transition, not a second row.
    app.post(&members, &admin, json!({"email": "member@example.com", "role": "admin"}))
        .await
        .refused(409, "invalid_transition");
    let list = app.get(&members, &member).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 3);

    // A member reads but cannot manage.
    app.get(&format!("/api/organizations/{org}"), &member).await.expect(200);
    app.post(&members, &member, json!({"email": "owner@example.com", "role": "member"}))
        .await
        .refused(403, "forbidden");
    app.post(&format!("/api/organizations/{org}/provider-request"), &member, json!({})).await.refused(403, "forbidden");
    // An admin cannot make owners or touch them.
    let me = app.get("/api/users/me", &owner).await.expect(200);
    let owner_id = me["id"].as_str().unwrap();
    app.call(Method::PATCH, &format!("{members}/{owner_id}"), Some(&admin), Some(json!({"role": "member"})))
        .await
        .refused(403, "forbidden");
    let member_id = app.get("/api/users/me", &member).await.expect(200)["id"].as_str().unwrap().to_owned();
    app.call(Method::PATCH, &format!("{members}/{member_id}"), Some(&admin), Some(json!({"role": "owner"})))
        .await
        .refused(403, "forbidden");
    app.call(Method::PATCH, &format!("{members}/{member_id}"), Some(&admin), Some(json!({"role": "admin"})))
        .await
        .expect(200);
    app.call(Method::PATCH, &format!("{members}/{member_id}"), Some(&owner), Some(json!({"role": "superuser"})))
        .await
        .refused(422, "invalid");
    // Removing, and leaving.
    app.call(Method::DELETE, &format!("{members}/{member_id}"), Some(&admin), None).await.expect(204);
    app.get(&format!("/api/organizations/{org}"), &member).await.refused(404, "not_found");
    let me = app.get("/api/users/me", &admin).await.expect(200);
    assert_eq!(me["organizations"][0]["role"], "admin");
    let admin_id = me["id"].as_str().unwrap();
    app.call(Method::DELETE, &format!("{members}/{admin_id}"), Some(&admin), None).await.expect(204);
    assert_eq!(app.get("/api/organizations/", &admin).await.expect(200), json!([]));
}

async fn foreign_organisation_is_refused(app: TestApp) {
    let ada = app.signup("ada@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let acme = app.organization(&ada, "Acme").await;
    for path in [
        format!("/api/organizations/{acme}"),
        format!("/api/organizations/{acme}/members"),
        format!("/api/organizations/{acme}/provider-request"),
        format!("/api/provider-agents/?organization={acme}"),
    ] {
        app.get(&path, &bob).await.refused(404, "not_found");
    }
    app.post(&format!("/api/organizations/{acme}/members"), &bob, json!({"email": "bob@example.com", "role": "owner"}))
        .await
        .refused(404, "not_found");
    app.post(&format!("/api/organizations/{acme}/provider-request"), &bob, json!({})).await.refused(404, "not_found");
    app.post("/api/provider-agents/", &bob, json!({"organization": acme, "name": "Mine now"}))
        .await
        .refused(404, "not_found");
    let orgs = app.get("/api/organizations/", &bob).await.expect(200);
    assert_eq!(orgs, json!([]));
    assert_eq!(app.count("membership").await, 1);
}

async fn last_owner_stays(app: TestApp) {
    let owner = app.signup("owner@example.com").await;
    let org = app.organization(&owner, "Acme").await;
    let me = app.get("/api/users/me", &owner).await.expect(200);
    let id = me["id"].as_str().unwrap();
    let path = format!("/api/organizations/{org}/members/{id}");
    app.call(Method::PATCH, &path, Some(&owner), Some(json!({"role": "admin"})))
        .await
        .refused(409, "invalid_transition");
    app.call(Method::DELETE, &path, Some(&owner), None).await.refused(409, "invalid_transition");
    // The failed requests changed nothing.
    let members = app.get(&format!("/api/organizations/{org}/members"), &owner).await.expect(200);
    assert_eq!(members[0]["role"], "owner");
    let dup = app.post("/api/organizations/", &owner, json!({"name": "Acme"})).await.refused(409, "conflict");
    assert!(dup.contains("name"), "{dup}");
}

/// What made `last_owner_stays` flaky on SQLite: a handler's transaction
/// reads, another connection (a background job) commits, then the handler
/// writes. A deferred SQLite transaction fails there with `SQLITE_BUSY`
/// at once (a 500); `Db::begin` takes the write lock first, so the other
/// writer waits instead.
async fn a_write_transaction_outlasts_a_commit_between_its_read_and_its_write(app: TestApp) {
    let insert = |id: &str| {
        format!(
            "INSERT INTO category (id, name, slug, description, created_at, updated_at) VALUES ('{id}', '{id}', '{id}', '', 0, 0)"
        )
    };
    let mut tx = app.db.begin().await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM category").fetch_one(&mut *tx).await.unwrap();
    let pool = app.db.pool().clone();
    let other = insert("other");
    let other = tokio::spawn(async move { sqlx::query(&other).execute(&pool).await });
    // Time for the other connection to commit, were it let through.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    sqlx::query(&insert("mine")).execute(&mut *tx).await.expect("the transaction's own write goes through");
    tx.commit().await.unwrap();
    other.await.unwrap().expect("the other writer waited for the lock, then wrote");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM category").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(after, before + 2);
}
