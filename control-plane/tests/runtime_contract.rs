//! What the runtime hosts and buyers build on: the runtime change feed
//! after a whole order → done → config change → key revoke → terminate
//! sequence, agent configs, agent API keys (JWT claims, only the hash
//! stored), quotas, settings, artifacts, usage totals and analytics; on
//! SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::{Method, header};
use common::{KEY_SECRET, KID, Market, RUNTIME_TOKEN, TestApp, flow, test_config};
use sandflow_control_plane::AppState;
use sandflow_control_plane::config::Config;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

on_both_stores!(
    feed_follows_the_whole_journey,
    feed_needs_the_runtime_token_and_pages,
    agent_configs_are_validated,
    api_keys_are_jwts_stored_hashed,
    keys_show_when_they_were_last_used,
    api_key_roles_and_bodies,
    keys_need_a_signing_secret,
    quotas_reach_the_feed,
    platform_settings,
    artifacts_and_usage_totals,
    analytics_per_buyer_and_seller,
    plan_changes_reach_running_agents,
    a_reader_never_skips_a_change_of_concurrent_writers,
);

fn kinds(feed: &Value) -> Vec<String> {
    feed["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap().to_owned()).collect()
}

/// The provisioned resource and its config of an order.
async fn resource_and_config(app: &TestApp, m: &Market, order: &Value) -> (String, String) {
    let resource = order["resource_id"].as_str().unwrap().to_owned();
    let body = app.get(&format!("/api/resources/{resource}"), &m.buyer).await.expect(200);
    (resource, body["config_id"].as_str().unwrap().to_owned())
}

async fn new_key(app: &TestApp, token: &str, config: &str, body: Value) -> Value {
    app.post(&format!("/api/customer-agent-configs/{config}/api_keys"), token, body).await.expect(201)
}

async fn feed_follows_the_whole_journey(app: TestApp) {
    let m = app.market(json!({})).await;
    // A newer version whose export carries a Langflow flow id.
    let mut export: Value = serde_json::from_slice(&flow("prompt-echo.json")).unwrap();
    export["id"] = json!("flow-123");
    let v2 = app.post(&format!("/api/provider-agents/{}/import_flow", m.agent), &m.seller, export).await.expect(201);
    let digest = v2["digest"].as_str().unwrap().to_owned();
    // New orders get it once the operators have reviewed it.
    let offering = format!("/api/offerings/{}", m.offering);
    app.post(&format!("{offering}/pause"), &m.seller, json!({})).await.expect(200);
    app.post(&format!("{offering}/resume"), &m.seller, json!({})).await.expect(200);
    app.post(&format!("{offering}/approve"), &m.operator, json!({})).await.expect(200);
    let order = app.provisioned(&m).await;
    let (resource, config) = resource_and_config(&app, &m, &order).await;

    let feed = app.feed(0).await;
    let changes = feed["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{feed}");
    let seq = changes[0]["seq"].as_i64().unwrap();
    assert_eq!(feed["last"], seq);
    assert_eq!(
        changes[0],
        json!({"seq": seq, "kind": "agent.provisioned", "agent": {
            "id": resource, "tenant": m.consumer, "subscription": resource, "flow_id": "flow-123",
            "endpoint_name": "prompt-echo", "digest": digest,
            "limits": {"fuel": null, "memory_bytes": null, "deadline_ms": null},
            "persona": null, "rpm": 120, "widget_origins": [], "secrets": []}})
    );

    // A config change re-sends the agent with its persona.
    let persona = json!({"name": "Ada", "system_prompt": "Be brief.", "tone": "friendly"});
    app.patch(&format!("/api/customer-agent-configs/{config}"), &m.buyer, json!({"persona": persona}))
        .await
        .expect(200);
    // Two keys; one revoked by hand, the other by the termination.
    let first = new_key(&app, &m.buyer, &config, json!({"name": "server"})).await;
    let second = new_key(&app, &m.buyer, &config, json!({"name": "widget", "scopes": ["widget"]})).await;
    let first_id = first["id"].as_str().unwrap();
    app.delete(&format!("/api/agent-api-keys/{first_id}"), &m.buyer).await.expect(204);
    app.post(&format!("/api/resources/{resource}/terminate"), &m.buyer, json!({})).await.expect(200);
    // Nothing reaches the feed until the job ran.
    assert_eq!(kinds(&app.feed(seq).await), ["agent.provisioned", "key.revoked"]);
    app.run_jobs().await;

    let feed = app.feed(seq).await;
    assert_eq!(kinds(&feed), ["agent.provisioned", "key.revoked", "agent.deprovisioned", "key.revoked"]);
    let changes = feed["changes"].as_array().unwrap();
    assert_eq!(changes[0]["agent"]["persona"], persona);
    assert_eq!(changes[0]["agent"]["id"], resource.as_str());
    // With the key's expiry, so hosts forget the revocation once it passes.
    let first_exp = first["expires_at_ms"].as_i64().unwrap() / 1000;
    assert_eq!(
        changes[1],
        json!({"seq": changes[1]["seq"], "kind": "key.revoked", "key_id": first_id, "exp": first_exp})
    );
    assert_eq!(changes[2], json!({"seq": changes[2]["seq"], "kind": "agent.deprovisioned", "agent_id": resource}));
    assert_eq!(changes[3]["key_id"], second["id"]);
    assert_eq!(changes[3]["exp"], second["expires_at_ms"].as_i64().unwrap() / 1000);
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seq, "{seqs:?}");
    assert_eq!(feed["last"], *seqs.last().unwrap());
    // A terminated resource's config no longer changes, and sends nothing.
    app.patch(&format!("/api/customer-agent-configs/{config}"), &m.buyer, json!({"persona": null}))
        .await
        .refused(409, "invalid_transition");
    assert_eq!(app.count("runtime_change").await, 5);
    let revoked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_api_key WHERE revoked_at IS NOT NULL")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(revoked, 2);
}

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
    // Over the maximum is the maximum, not a refusal.
    let all = app.get("/api/runtime/changes/?limit=5000", RUNTIME_TOKEN).await.expect(200);
    assert_eq!(all["changes"].as_array().unwrap().len(), 3);
    for bad in ["limit=0", "limit=-1", "after=-1", "after=x", "since=1"] {
        app.get(&format!("/api/runtime/changes/?{bad}"), RUNTIME_TOKEN).await.refused(422, "invalid");
    }
}

async fn agent_configs_are_validated(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (_, config) = resource_and_config(&app, &m, &order).await;
    let path = format!("/api/customer-agent-configs/{config}");
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let stranger = app.signup("stranger@example.com").await;

    let initial = app.get(&path, &member).await.expect(200);
    assert_eq!(initial["persona"], Value::Null);
    assert_eq!(initial["branding"]["title"], "Echo Pro");
    assert_eq!(initial["widget"], json!({"allowed_origins": [], "greeting": null, "position": "bottom-right"}));
    assert_eq!(app.get("/api/customer-agent-configs/", &member).await.expect(200).as_array().unwrap().len(), 1);
    assert_eq!(app.get("/api/customer-agent-configs/", &stranger).await.expect(200), json!([]));
    app.get(&path, &stranger).await.refused(404, "not_found");
    app.get(&path, &m.seller).await.refused(404, "not_found");
    app.patch(&path, &member, json!({"widget": {"greeting": "hi"}})).await.refused(403, "forbidden");
    app.call(Method::PATCH, &path, None, Some(json!({}))).await.refused(401, "unauthorized");

    let changed = app
        .patch(
            &path,
            &m.buyer,
            json!({"branding": {"primary_color": "#FF8800", "logo_url": "https://cdn.shop.example/logo.svg",
                                "title": "Shop helper"},
                   "widget": {"allowed_origins": ["https://Shop.Example", "http://localhost:3000",
                                                  "https://shop.example"],
                              "greeting": "Hello!", "position": "bottom-left"}}),
        )
        .await
        .expect(200);
    assert_eq!(changed["branding"]["primary_color"], "#ff8800");
    assert_eq!(changed["widget"]["allowed_origins"], json!(["https://shop.example", "http://localhost:3000"]));
    assert_eq!(changed["widget"]["position"], "bottom-left");
    // The hosts hear of the origins, whose pages alone may use widget keys.
    let feed = app.feed(0).await;
    let last = feed["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "agent.provisioned");
    assert_eq!(last["agent"]["widget_origins"], json!(["https://shop.example", "http://localhost:3000"]));

    for (bad, needle) in [
        (json!({"branding": {"primary_color": "red"}}), "primary_color"),
        (json!({"branding": {"primary_color": "#12345"}}), "primary_color"),
        (json!({"branding": {"logo_url": "http://cdn.example/logo.png"}}), "logo_url"),
        (json!({"branding": {"logo_url": "javascript:alert(1)"}}), "logo_url"),
        (json!({"widget": {"allowed_origins": ["https://shop.example/path"]}}), "origin"),
        (json!({"widget": {"allowed_origins": ["*"]}}), "origin"),
        (json!({"widget": {"allowed_origins": ["http://shop.example"]}}), "https"),
        (json!({"widget": {"allowed_origins": "https://shop.example"}}), "sequence"),
        (json!({"widget": {"position": "top"}}), "bottom-right"),
        (json!({"persona": {"name": "Ada", "system_prompt": "x"}}), "tone"),
        (json!({"persona": {"name": "", "system_prompt": "x", "tone": "calm"}}), "persona.name"),
        (json!({"persona": {"name": "Ada", "system_prompt": "x", "tone": "calm", "age": 3}}), "age"),
        (json!({"theme": "dark"}), "theme"),
        (json!({"branding": {"title": 5}}), "expected a string"),
    ] {
        let detail = app.patch(&path, &m.buyer, bad.clone()).await.refused(422, "invalid");
        assert!(detail.contains(needle), "{bad}: {detail}");
    }
    // Nothing of the refused bodies was stored.
    assert_eq!(app.get(&path, &m.buyer).await.expect(200)["branding"]["primary_color"], "#ff8800");
}

async fn keys_show_when_they_were_last_used(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, config) = resource_and_config(&app, &m, &order).await;
    let used = new_key(&app, &m.buyer, &config, json!({"name": "used"})).await["id"].as_str().unwrap().to_owned();
    let idle = new_key(&app, &m.buyer, &config, json!({"name": "idle"})).await["id"].as_str().unwrap().to_owned();
    let run = |n: u32, key: &str, at: u64| {
        let mut r = record(&format!("run-{n}"), &m.consumer, &resource, at);
        r["key_id"] = json!(key);
        r
    };
    let last_used = |keys: Value| -> Vec<(String, Value)> {
        let mut keys: Vec<(String, Value)> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["name"].as_str().unwrap().to_owned(), k["last_used_at_ms"].clone()))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    };
    let path = format!("/api/customer-agent-configs/{config}/api_keys");

    // The latest run of a batch counts; a key the ledger does not know and
    // records without a key change nothing.
    let batch = json!([
        run(1, &used, 2_000),
        run(2, &used, 3_000),
        run(3, "key-of-elsewhere", 9_000),
        record("run-4", &m.consumer, &resource, 8_000)
    ]);
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, batch).await.expect(200);
    let keys = app.get(&path, &m.buyer).await.expect(200);
    assert_eq!(last_used(keys), [("idle".to_owned(), Value::Null), ("used".to_owned(), json!(3_000))]);

    // Batches arrive late and again: the time never moves back.
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!([run(5, &used, 1_000), run(1, &used, 2_000)]))
        .await
        .expect(200);
    assert_eq!(last_used(app.get(&path, &m.buyer).await.expect(200))[1].1, json!(3_000));
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!([run(6, &idle, 4_000)])).await.expect(200);
    assert_eq!(
        last_used(app.get(&path, &m.buyer).await.expect(200)),
        [("idle".to_owned(), json!(4_000)), ("used".to_owned(), json!(3_000))]
    );

    // An empty key id is a malformed record, refused with the whole batch.
    let detail =
        app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!([run(7, "", 5_000)])).await.refused(422, "invalid");
    assert!(detail.contains("key_id"), "{detail}");
}

async fn api_keys_are_jwts_stored_hashed(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, config) = resource_and_config(&app, &m, &order).await;
    let created = new_key(&app, &m.buyer, &config, json!({"name": "server", "expires_in_days": 30})).await;
    let text = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["prefix"], &text[..12]);
    assert_eq!(created["scopes"], json!(["run"]));
    assert_eq!(created["revoked_at_ms"], Value::Null);
    assert_eq!(created["last_used_at_ms"], Value::Null);

    let header = jsonwebtoken::decode_header(&text).unwrap();
    assert_eq!((header.alg, header.kid.as_deref()), (jsonwebtoken::Algorithm::HS256, Some(KID)));
    let key = jsonwebtoken::DecodingKey::from_secret(KEY_SECRET.as_bytes());
    let claims =
        jsonwebtoken::decode::<Value>(&text, &key, &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256))
            .unwrap()
            .claims;
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(
        claims,
        json!({"sub": id, "tenant": m.consumer, "agents": [resource], "scopes": ["run"], "subscription": resource,
               "rpm": 120, "exp": exp})
    );
    let now = sandflow_control_plane::db::now_ms() / 1000;
    assert!((now + 30 * 86_400 - 5..=now + 30 * 86_400 + 5).contains(&i64::try_from(exp).unwrap()));
    assert!(
        jsonwebtoken::decode::<Value>(
            &text,
            &jsonwebtoken::DecodingKey::from_secret(b"wrong"),
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256)
        )
        .is_err()
    );

    // Only the SHA-256 and the prefix are stored; the text never is.
    let (hash, prefix): (String, String) = sqlx::query_as("SELECT key_hash, prefix FROM agent_api_key WHERE id = $1")
        .bind(&id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(hash, hex::encode(Sha256::digest(text.as_bytes())));
    assert_eq!(prefix, &text[..12]);
    let row: Vec<Option<String>> =
        sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>, Option<String>)>(
            "SELECT id, name, scopes, kid FROM agent_api_key",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap()
        .into_iter()
        .flat_map(|(a, b, c, d)| [a, b, c, d])
        .collect();
    assert!(row.iter().flatten().all(|v| !v.contains(&text)));
    // Listings never show the text.
    let listed = app.get(&format!("/api/customer-agent-configs/{config}/api_keys"), &m.buyer).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("key").is_none());
    assert_eq!(app.get("/api/agent-api-keys/", &m.buyer).await.expect(200)[0]["id"], id.as_str());

    // Regenerate: the old key is revoked, a new one like it is made.
    let fresh = app.post(&format!("/api/agent-api-keys/{id}/regenerate"), &m.buyer, json!({})).await.expect(201);
    assert_ne!(fresh["id"], id.as_str());
    assert_ne!(fresh["key"], text.as_str());
    assert_eq!((fresh["name"].as_str(), fresh["scopes"].clone()), (Some("server"), json!(["run"])));
    app.post(&format!("/api/agent-api-keys/{id}/regenerate"), &m.buyer, json!({}))
        .await
        .refused(409, "invalid_transition");
    app.delete(&format!("/api/agent-api-keys/{id}"), &m.buyer).await.refused(409, "invalid_transition");
    let keys = app.get("/api/agent-api-keys/", &m.buyer).await.expect(200);
    let revoked: Vec<bool> = keys.as_array().unwrap().iter().map(|k| k["revoked_at_ms"].is_i64()).collect();
    assert_eq!(revoked.iter().filter(|r| **r).count(), 1);
    let feed = app.feed(0).await;
    assert_eq!(kinds(&feed), ["agent.provisioned", "key.revoked"]);
    assert_eq!(feed["changes"][1]["key_id"], id.as_str());
}

async fn api_key_roles_and_bodies(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, config) = resource_and_config(&app, &m, &order).await;
    let path = format!("/api/customer-agent-configs/{config}/api_keys");
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let stranger = app.signup("stranger@example.com").await;
    app.post(&path, &member, json!({"name": "x"})).await.refused(403, "forbidden");
    app.get(&path, &member).await.refused(403, "forbidden");
    app.post(&path, &stranger, json!({"name": "x"})).await.refused(404, "not_found");
    app.post(&path, &m.seller, json!({"name": "x"})).await.refused(404, "not_found");
    app.call(Method::POST, &path, None, Some(json!({"name": "x"}))).await.refused(401, "unauthorized");
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "scopes": ["admin"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": "run"}),
        json!({"name": "x", "expires_in_days": 0}),
        json!({"name": "x", "expires_in_days": 5000}),
        json!({"name": "x", "expires_in_days": -1}),
        json!({"name": "x", "secret": "mine"}),
    ] {
        app.post(&path, &m.buyer, bad.clone()).await.refused(422, "invalid");
    }
    let both = app.post(&path, &m.buyer, json!({"name": "both", "scopes": ["widget", "run", "widget"]})).await;
    assert_eq!(both.expect(201)["scopes"], json!(["run", "widget"]));
    let key = app.get("/api/agent-api-keys/", &m.buyer).await.expect(200)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/agent-api-keys/", &member).await.expect(200), json!([]));
    app.delete(&format!("/api/agent-api-keys/{key}"), &member).await.refused(403, "forbidden");
    app.delete(&format!("/api/agent-api-keys/{key}"), &stranger).await.refused(404, "not_found");
    app.post(&format!("/api/agent-api-keys/{key}/regenerate"), &stranger, json!({})).await.refused(404, "not_found");
    // No keys for a subscription that is ending.
    app.post(&format!("/api/resources/{resource}/terminate"), &m.buyer, json!({})).await.expect(200);
    app.post(&path, &m.buyer, json!({"name": "late"})).await.refused(409, "invalid_transition");
    assert_eq!(app.count("agent_api_key").await, 1);
}

async fn keys_need_a_signing_secret(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (_, config) = resource_and_config(&app, &m, &order).await;
    let unsigned = Config { key_secrets: Vec::new(), ..test_config() };
    let other = TestApp {
        router: sandflow_control_plane::app(AppState::new(app.db.clone(), unsigned)),
        db: app.db.clone(),
        state: app.state.clone(),
    };
    let detail = other
        .post(&format!("/api/customer-agent-configs/{config}/api_keys"), &m.buyer, json!({"name": "x"}))
        .await
        .refused(503, "unavailable");
    assert!(detail.contains("--key-secret"), "{detail}");
    assert_eq!(app.count("agent_api_key").await, 0);
}

async fn quotas_reach_the_feed(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, _) = resource_and_config(&app, &m, &order).await;
    let after = app.feed(0).await["last"].as_i64().unwrap();
    let path = format!("/api/quotas/{}", m.consumer);
    let empty = app.get(&path, &m.operator).await.expect(200);
    assert_eq!(empty["runs_per_month"], Value::Null);
    app.get(&path, &m.buyer).await.refused(403, "forbidden");
    app.put(&path, &m.buyer, json!({})).await.refused(403, "forbidden");
    app.put("/api/quotas/nope", &m.operator, json!({})).await.refused(404, "not_found");
    app.put(&path, &m.operator, json!({"runs_per_month": -1})).await.refused(422, "invalid");
    app.put(&path, &m.operator, json!({"requests_per_minute": 0})).await.refused(422, "invalid");
    app.put(&path, &m.operator, json!({"runs": 5})).await.refused(422, "invalid");
    let quota = json!({"runs_per_month": 1000, "fuel_per_month": 5_000_000_000i64, "tokens_per_month": null,
                       "requests_per_minute": 60, "memory_bytes_per_run": 67_108_864, "deadline_ms": 30_000,
                       "fuel_per_run": 1_000_000_000});
    app.put(&path, &m.operator, quota.clone()).await.expect(200);
    assert_eq!(app.get(&path, &m.operator).await.expect(200), quota);

    let feed = app.feed(after).await;
    assert_eq!(kinds(&feed), ["quota.set", "agent.provisioned"]);
    let changes = feed["changes"].as_array().unwrap();
    assert_eq!(
        changes[0],
        json!({"seq": changes[0]["seq"], "kind": "quota.set", "tenant": m.consumer,
               "quota": {"runs": 1000, "fuel": 5_000_000_000i64, "tokens": null, "rpm": 60}})
    );
    assert_eq!(changes[1]["agent"]["id"], resource.as_str());
    assert_eq!(
        changes[1]["agent"]["limits"],
        json!({"fuel": 1_000_000_000, "memory_bytes": 67_108_864, "deadline_ms": 30_000})
    );
    // Without a Langflow id in the export, the flow id is the version's id.
    let version: String =
        sqlx::query_scalar("SELECT flow_version_id FROM resource").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(changes[1]["agent"]["flow_id"], version.as_str());
    // Replacing the quota clears what the body leaves out.
    let cleared = app.put(&path, &m.operator, json!({"runs_per_month": 5})).await.expect(200);
    assert_eq!(cleared["deadline_ms"], Value::Null);
    assert_eq!(
        app.feed(after).await["changes"][2]["quota"],
        json!({"runs": 5, "fuel": null, "tokens": null, "rpm": null})
    );
}

async fn platform_settings(app: TestApp) {
    let operator = app.operator().await;
    let user = app.signup("ada@example.com").await;
    assert_eq!(app.get("/api/admin/settings", &operator).await.expect(200), json!({"commission_bps": 0}));
    app.get("/api/admin/settings", &user).await.refused(403, "forbidden");
    app.put("/api/admin/settings", &user, json!({"commission_bps": 1})).await.refused(403, "forbidden");
    app.call(Method::PUT, "/api/admin/settings", None, Some(json!({"commission_bps": 1})))
        .await
        .refused(401, "unauthorized");
    for bad in
        [json!({"commission_bps": 10_001}), json!({"commission_bps": -1}), json!({}), json!({"commission_bps": "5"})]
    {
        app.put("/api/admin/settings", &operator, bad).await.refused(422, "invalid");
    }
    app.put("/api/admin/settings", &operator, json!({"commission_bps": 1500})).await.expect(200);
    assert_eq!(app.get("/api/admin/settings/", &operator).await.expect(200), json!({"commission_bps": 1500}));
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
    // Records whose counters sum past i64::MAX (a host's bug) saturate the
    // totals, rather than failing them for every tenant and every host
    // that seeds its quotas from them.
    let huge = |key: &str| {
        let mut huge = record(key, "t3", "r3", NOVEMBER);
        for field in ["fuel", "tokens_in", "tokens_out", "wall_micros"] {
            huge[field] = json!(i64::MAX);
        }
        huge
    };
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, json!([huge("e"), huge("f")])).await.expect(200);
    let totals = app.get("/api/runtime/usage-totals/?month=2026-11", RUNTIME_TOKEN).await.expect(200);
    assert_eq!(totals["tenants"]["t3"], json!({"runs": 2, "fuel": i64::MAX, "tokens": i64::MAX}));
    assert_eq!(totals["tenants"]["t1"], json!({"runs": 2, "fuel": 2000, "tokens": 16}), "the others' stay exact");
    let platform = app.get("/api/analytics/usage/?period=2026-11", &m.operator).await.expect(200);
    assert_eq!(platform["platform"]["fuel"], i64::MAX);
    app.get("/api/runtime/usage-totals/?month=2026-13", RUNTIME_TOKEN).await.refused(422, "invalid");
    app.get("/api/runtime/usage-totals/", RUNTIME_TOKEN).await.refused(422, "invalid");
    app.get("/api/runtime/usage-totals/?month=2026-11", &m.operator).await.refused(401, "unauthorized");
}

async fn analytics_per_buyer_and_seller(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, _) = resource_and_config(&app, &m, &order).await;
    let batch = json!([
        record("a", &m.consumer, &resource, NOVEMBER),
        record("b", &m.consumer, &resource, NOVEMBER + 5),
        record("c", &m.consumer, &resource, OCTOBER),
        record("d", "someone-else", "not-a-resource", NOVEMBER),
    ]);
    app.post("/api/runtime/usage/", RUNTIME_TOKEN, batch).await.expect(200);

    let buyer = app.get(&format!("/api/analytics/usage/?organization={}&period=2026-11", m.consumer), &m.buyer).await;
    let buyer = buyer.expect(200);
    assert_eq!(
        buyer["as_buyer"],
        json!([{"resource_id": resource, "offering_id": m.offering, "runs": 2, "fuel": 2000, "tokens_in": 6,
                "tokens_out": 10}])
    );
    assert_eq!(buyer["as_seller"], json!([]));
    let seller = app.get(&format!("/api/analytics/usage/?organization={}&period=2026-11", m.provider), &m.seller).await;
    let seller = seller.expect(200);
    assert_eq!(seller["as_seller"][0]["offering_id"], m.offering.as_str());
    assert_eq!(seller["as_seller"][0]["runs"], 2);
    assert_eq!(seller["as_buyer"], json!([]));
    let platform = app.get("/api/analytics/usage/?period=2026-11", &m.operator).await.expect(200);
    assert_eq!(platform["platform"]["runs"], 3);

    let stranger = app.signup("stranger@example.com").await;
    app.get(&format!("/api/analytics/usage/?organization={}&period=2026-11", m.consumer), &stranger)
        .await
        .refused(404, "not_found");
    app.get("/api/analytics/usage/?period=2026-11", &m.buyer).await.refused(422, "invalid");
    app.get(&format!("/api/analytics/usage/?organization={}&period=11-2026", m.consumer), &m.buyer)
        .await
        .refused(422, "invalid");
    app.call(Method::GET, "/api/analytics/usage/?period=2026-11", None, None).await.refused(401, "unauthorized");
}

async fn plan_changes_reach_running_agents(app: TestApp) {
    let m = app.market(json!({})).await;
    let order = app.provisioned(&m).await;
    let (resource, _) = resource_and_config(&app, &m, &order).await;
    let after = app.feed(0).await["last"].as_i64().unwrap();
    app.post(&format!("/api/offerings/{}/pause", m.offering), &m.seller, json!({})).await.expect(200);
    app.patch(&format!("/api/plans/{}", m.plan), &m.seller, json!({"requests_per_minute": 30})).await.expect(200);
    let feed = app.feed(after).await;
    assert_eq!(kinds(&feed), ["agent.provisioned"]);
    assert_eq!(feed["changes"][0]["agent"]["id"], resource.as_str());
    assert_eq!(feed["changes"][0]["agent"]["rpm"], 30);
    // A terminated subscription is not re-sent.
    app.post(&format!("/api/resources/{resource}/terminate"), &m.buyer, json!({})).await.expect(200);
    app.run_jobs().await;
    let last = app.feed(0).await["last"].as_i64().unwrap();
    app.patch(&format!("/api/plans/{}", m.plan), &m.seller, json!({"requests_per_minute": null})).await.expect(200);
    assert_eq!(app.feed(last).await["changes"], json!([]));
}

/// Writers commit concurrently while a runtime host pages through the feed
/// with `after`: it must see every change (a `seq` handed out before a
/// later one but committed after it would be skipped for good).
async fn a_reader_never_skips_a_change_of_concurrent_writers(app: TestApp) {
    let operator = app.operator().await;
    let mut orgs = Vec::new();
    for i in 0..6 {
        orgs.push(app.organization(&operator, &format!("Tenant {i}")).await);
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (app, done) = (app.clone(), done.clone());
        tokio::spawn(async move {
            let (mut last, mut seen) = (0i64, Vec::new());
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = app.get(&format!("/api/runtime/changes/?after={last}&limit=1000"), RUNTIME_TOKEN).await;
                let page = page.expect(200);
                seen.extend(page["changes"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()));
                last = page["last"].as_i64().unwrap();
                if finished {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = orgs
        .into_iter()
        .map(|org| {
            let (app, operator) = (app.clone(), operator.clone());
            tokio::spawn(async move {
                for runs in 0..5 {
                    app.put(&format!("/api/quotas/{org}"), &operator, json!({"runs_per_month": runs}))
                        .await
                        .expect(200);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let all: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM runtime_change ORDER BY seq").fetch_all(app.db.pool()).await.unwrap();
    assert_eq!(all.len(), 30);
    assert_eq!(seen, all);
}
