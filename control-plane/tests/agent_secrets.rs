//! Agent secrets, the buyer's and the seller's: set, listed by name, never
//! shown, sealed in the database, named in the runtime feed and opened
//! only for the runtime hosts, a buyer's in the place of the seller's of
//! the same name; hostile names, values and rows; the cap; a control plane
//! without a sealing key; the end of the subscription; who may. On SQLite
//! and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::{Market, RUNTIME_TOKEN, TestApp, flow, test_config};
use sandflow_control_plane::AppState;
use sandflow_control_plane::config::Config;
use serde_json::{Value, json};

on_both_stores!(
    secrets_are_sealed_and_reach_only_the_runtime,
    hostile_names_values_and_rows,
    secrets_need_a_sealing_key,
    secrets_end_with_the_subscription,
    sellers_secrets_reach_every_buyer_and_yield_to_theirs,
    sellers_secrets_are_theirs_alone,
    buyers_see_which_variables_the_flow_reads,
);

/// The market's provisioned resource and its config's secrets path.
async fn provisioned(app: &TestApp, m: &Market) -> (String, String) {
    let order = app.provisioned(m).await;
    let resource = order["resource_id"].as_str().unwrap().to_owned();
    let path = format!("{}/secrets", provisioned_config(app, m, &resource).await);
    (resource, path)
}

/// The config path (`/api/customer-agent-configs/{id}`) of `resource`.
async fn provisioned_config(app: &TestApp, m: &Market, resource: &str) -> String {
    let body = app.get(&format!("/api/resources/{resource}"), &m.buyer).await.expect(200);
    format!("/api/customer-agent-configs/{}", body["config_id"].as_str().unwrap())
}

/// The last `agent.provisioned` of the feed.
async fn last_provisioned(app: &TestApp) -> Value {
    let feed = app.feed(0).await;
    let changes = feed["changes"].as_array().unwrap();
    changes.iter().rev().find(|c| c["kind"] == "agent.provisioned").unwrap().clone()
}

/// A secret as the runtime gets it.
fn secret(value: &str, hosts: &[&str]) -> Value {
    json!({"value": value, "hosts": hosts})
}

async fn opened(app: &TestApp, resource: &str) -> Value {
    app.get(&format!("/api/runtime/agents/{resource}/secrets"), RUNTIME_TOKEN).await.expect(200)
}

async fn secrets_are_sealed_and_reach_only_the_runtime(app: TestApp) {
    let m = app.market(json!({})).await;
    let (resource, path) = provisioned(&app, &m).await;
    assert_eq!(app.get(&path, &m.buyer).await.expect(200), json!([]));
    assert_eq!(opened(&app, &resource).await, json!({"secrets": {}}));

    let body = json!({"value": " tvly-first ", "hosts": ["API.Tavily.com", "api.tavily.com"]});
    let set = app.put(&format!("{path}/TAVILY_API_KEY"), &m.buyer, body).await.expect(200);
    assert_eq!(set["name"], "TAVILY_API_KEY");
    assert_eq!(set["hosts"], json!(["api.tavily.com"]));
    assert!(!set.to_string().contains("tvly"), "the value is not echoed: {set}");
    let listed = app.get(&path, &m.buyer).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "TAVILY_API_KEY");
    assert_eq!(listed[0]["hosts"], json!(["api.tavily.com"]));
    assert!(!listed.to_string().contains("tvly"), "{listed}");

    // Sealed in the database, bound to its agent and name.
    let sealed: String = sqlx::query_scalar("SELECT sealed FROM agent_secret WHERE resource_id = $1")
        .bind(&resource)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with("v1.s1.") && !sealed.contains("tvly"), "{sealed}");
    // The hosts hear of the name, not the value, and fetch the value.
    let change = last_provisioned(&app).await;
    assert_eq!(change["agent"]["id"], resource.as_str());
    assert_eq!(change["agent"]["secrets"], json!(["TAVILY_API_KEY"]));
    assert!(!app.feed(0).await.to_string().contains("tvly"), "no value in the feed");
    assert_eq!(
        opened(&app, &resource).await,
        json!({"secrets": {"TAVILY_API_KEY": secret("tvly-first", &["api.tavily.com"])}})
    );

    // Replacing keeps the first date and is heard of again.
    let feed_before = app.feed(0).await["last"].as_i64().unwrap();
    let body = json!({"value": "tvly-second", "hosts": ["api.tavily.com"]});
    let again = app.put(&format!("{path}/TAVILY_API_KEY"), &m.buyer, body).await.expect(200);
    assert_eq!(again["created_at_ms"], set["created_at_ms"]);
    assert!(app.feed(0).await["last"].as_i64().unwrap() > feed_before);
    app.put(&format!("{path}/AAI_KEY"), &m.buyer, json!({"value": "aai-1"})).await.expect(200);
    assert_eq!(
        opened(&app, &resource).await,
        json!({"secrets": {"AAI_KEY": secret("aai-1", &[]), "TAVILY_API_KEY": secret("tvly-second", &["api.tavily.com"])}})
    );
    assert_eq!(last_provisioned(&app).await["agent"]["secrets"], json!(["AAI_KEY", "TAVILY_API_KEY"]));

    // Who may: owners and admins of the buyer; the runtime only opens.
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    let admin = app.member(&m.buyer, &m.consumer, "boss@example.com", "admin").await;
    let stranger = app.signup("stranger@example.com").await;
    app.get(&path, &admin).await.expect(200);
    app.get(&path, &member).await.refused(403, "forbidden");
    app.put(&format!("{path}/X"), &member, json!({"value": "v"})).await.refused(403, "forbidden");
    app.delete(&format!("{path}/AAI_KEY"), &member).await.refused(403, "forbidden");
    for outsider in [&stranger, &m.seller] {
        app.get(&path, outsider).await.refused(404, "not_found");
        app.put(&format!("{path}/X"), outsider, json!({"value": "v"})).await.refused(404, "not_found");
    }
    app.get(&path, &m.operator).await.refused(403, "forbidden");
    app.call(Method::GET, &path, Some(RUNTIME_TOKEN), None).await.refused(401, "unauthorized");
    let opening = format!("/api/runtime/agents/{resource}/secrets");
    app.get(&opening, &m.buyer).await.refused(401, "unauthorized");
    app.call(Method::GET, &opening, None, None).await.refused(401, "unauthorized");
    app.get("/api/runtime/agents/no-such-agent/secrets", RUNTIME_TOKEN).await.refused(404, "not_found");

    // Deleting is heard of; deleting again says there is none.
    assert_eq!(app.delete(&format!("{path}/AAI_KEY"), &m.buyer).await.status.as_u16(), 204);
    let detail = app.delete(&format!("{path}/AAI_KEY"), &m.buyer).await.refused(404, "not_found");
    assert!(detail.contains("AAI_KEY"), "{detail}");
    assert_eq!(last_provisioned(&app).await["agent"]["secrets"], json!(["TAVILY_API_KEY"]));
    assert_eq!(
        opened(&app, &resource).await,
        json!({"secrets": {"TAVILY_API_KEY": secret("tvly-second", &["api.tavily.com"])}})
    );
}

async fn hostile_names_values_and_rows(app: TestApp) {
    let m = app.market(json!({})).await;
    let (resource, path) = provisioned(&app, &m).await;
    for (name, body, status, needle) in [
        ("1KEY", json!({"value": "v"}), 422, "must start with a letter"),
        ("A%20B", json!({"value": "v"}), 422, "must start with a letter"),
        ("A%0AB", json!({"value": "v"}), 422, "must start with a letter"),
        ("OK", json!({"value": "sk-1\r\nX-Evil: 1"}), 422, "control character"),
        ("OK", json!({"value": "sk-1\u{0}"}), 422, "control character"),
        ("OK", json!({"value": "   "}), 422, "empty"),
        ("OK", json!({"value": "k".repeat(16 * 1024 + 1)}), 422, "at most"),
        ("OK", json!({"value": 5}), 422, "expected a string"),
        ("OK", json!({"value": "v", "shown": true}), 422, "shown"),
        ("OK", json!({}), 422, "value"),
        ("OK", json!({"value": "v", "hosts": ["https://api.tavily.com/"]}), 422, "is not a host"),
        ("OK", json!({"value": "v", "hosts": vec!["a.example"; 17]}), 422, "at most 16"),
        ("OK", json!({"value": "v", "hosts": "api.tavily.com"}), 422, "expected a sequence"),
    ] {
        let answer = app.put(&format!("{path}/{name}"), &m.buyer, body).await;
        assert_eq!(answer.status.as_u16(), status, "{name}: {}", answer.body);
        let detail = answer.body["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.contains(needle), "{name}: {detail}");
        assert!(!detail.contains("sk-1"), "the value is not repeated: {detail}");
    }
    assert_eq!(app.count("agent_secret").await, 0, "nothing refused was stored");

    // A sealed row copied onto another name, whose hosts were widened in
    // the database, or whose hosts are no longer JSON, does not open; the
    // rest still arrive.
    app.put(&format!("{path}/REAL"), &m.buyer, json!({"value": "real-value"})).await.expect(200);
    let body = json!({"value": "narrow", "hosts": ["api.tavily.com"]});
    app.put(&format!("{path}/NARROW"), &m.buyer, body).await.expect(200);
    app.put(&format!("{path}/GARBLED"), &m.buyer, json!({"value": "garbled"})).await.expect(200);
    sqlx::query("UPDATE agent_secret SET hosts = 'not json' WHERE name = 'GARBLED'")
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO agent_secret (resource_id, name, sealed, hosts, created_at, updated_at) \
         SELECT resource_id, 'COPIED', sealed, hosts, created_at, updated_at FROM agent_secret WHERE name = 'REAL'",
    )
    .execute(app.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE agent_secret SET hosts = '[\"*\"]' WHERE name = 'NARROW'")
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(opened(&app, &resource).await, json!({"secrets": {"REAL": secret("real-value", &[])}}));

    // At most 64 per agent; an existing one can still be replaced.
    for i in 0..60 {
        app.put(&format!("{path}/K{i}"), &m.buyer, json!({"value": "v"})).await.expect(200);
    }
    let detail =
        app.put(&format!("{path}/ONE_TOO_MANY"), &m.buyer, json!({"value": "v"})).await.refused(422, "invalid");
    assert!(detail.contains("64"), "{detail}");
    app.put(&format!("{path}/REAL"), &m.buyer, json!({"value": "replaced"})).await.expect(200);
    assert_eq!(app.count("agent_secret").await, 64);
}

async fn secrets_need_a_sealing_key(app: TestApp) {
    let m = app.market(json!({})).await;
    let (resource, path) = provisioned(&app, &m).await;
    let unsealed = Config { secrets_keys: Vec::new(), ..test_config() };
    let other = TestApp {
        router: sandflow_control_plane::app(AppState::new(app.db.clone(), unsealed)),
        db: app.db.clone(),
        state: app.state.clone(),
    };
    let detail = other.put(&format!("{path}/K"), &m.buyer, json!({"value": "v"})).await.refused(503, "unavailable");
    assert!(detail.contains("--secrets-key"), "{detail}");
    assert_eq!(app.count("agent_secret").await, 0);

    // A host whose key is gone gets the values its key still opens: here none.
    app.put(&format!("{path}/K"), &m.buyer, json!({"value": "v"})).await.expect(200);
    let rotated = Config {
        secrets_keys: vec!["s2=0101010101010101010101010101010101010101010101010101010101010101".into()],
        ..test_config()
    };
    let other = TestApp { router: sandflow_control_plane::app(AppState::new(app.db.clone(), rotated)), ..other };
    assert_eq!(opened(&other, &resource).await, json!({"secrets": {}}));
    // The old key kept second still opens it.
    let both = Config {
        secrets_keys: vec![
            "s2=0101010101010101010101010101010101010101010101010101010101010101".into(),
            common::SECRETS_KEY.into(),
        ],
        ..test_config()
    };
    let other = TestApp { router: sandflow_control_plane::app(AppState::new(app.db.clone(), both)), ..other };
    assert_eq!(opened(&other, &resource).await, json!({"secrets": {"K": secret("v", &[])}}));
    // A malformed key (base64, not hex) holds up no host, and is not shown.
    let malformed =
        Config { secrets_keys: vec!["AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".into()], ..test_config() };
    let other = TestApp { router: sandflow_control_plane::app(AppState::new(app.db.clone(), malformed)), ..other };
    assert_eq!(opened(&other, &resource).await, json!({"secrets": {}}));
    let detail = other.put(&format!("{path}/K"), &m.buyer, json!({"value": "w"})).await.refused(503, "unavailable");
    assert!(!detail.contains("AQID"), "{detail}");
}

async fn secrets_end_with_the_subscription(app: TestApp) {
    let m = app.market(json!({})).await;
    let (resource, path) = provisioned(&app, &m).await;
    app.put(&format!("{path}/K"), &m.buyer, json!({"value": "v"})).await.expect(200);
    app.put(&format!("{path}/LEAKED"), &m.buyer, json!({"value": "v"})).await.expect(200);
    // A termination that failed leaves the agent on the hosts: no new
    // values, but a deletion reaches them.
    sqlx::query("UPDATE resource SET state = 'erred' WHERE id = $1")
        .bind(&resource)
        .execute(app.db.pool())
        .await
        .unwrap();
    app.put(&format!("{path}/K"), &m.buyer, json!({"value": "w"})).await.refused(409, "invalid_transition");
    assert_eq!(app.delete(&format!("{path}/LEAKED"), &m.buyer).await.status.as_u16(), 204);
    assert_eq!(last_provisioned(&app).await["agent"]["secrets"], json!(["K"]));
    app.post(&format!("/api/resources/{resource}/terminate"), &m.buyer, json!({})).await.expect(200);
    // Terminating: no new values.
    app.put(&format!("{path}/K"), &m.buyer, json!({"value": "w"})).await.refused(409, "invalid_transition");
    app.run_jobs().await;
    assert_eq!(app.count("agent_secret").await, 0, "the values go with the subscription");
    assert_eq!(app.get(&path, &m.buyer).await.expect(200), json!([]));
    app.put(&format!("{path}/K"), &m.buyer, json!({"value": "v"})).await.refused(409, "invalid_transition");
    app.delete(&format!("{path}/K"), &m.buyer).await.refused(404, "not_found");
    assert_eq!(app.feed(0).await["changes"].as_array().unwrap().last().unwrap()["kind"], "agent.deprovisioned");
}

/// The `agent.provisioned` changes after `after`, by agent.
async fn provisioned_since(app: &TestApp, after: i64) -> Vec<Value> {
    let feed = app.feed(after).await;
    feed["changes"].as_array().unwrap().iter().filter(|c| c["kind"] == "agent.provisioned").cloned().collect()
}

async fn sellers_secrets_reach_every_buyer_and_yield_to_theirs(app: TestApp) {
    let m = app.market(json!({})).await;
    let (first, path) = provisioned(&app, &m).await;
    let sellers = format!("/api/provider-agents/{}/secrets", m.agent);
    assert_eq!(app.get(&sellers, &m.seller).await.expect(200), json!([]));

    let before = app.feed(0).await["last"].as_i64().unwrap();
    let body = json!({"value": " tvly-seller ", "hosts": ["api.tavily.com"]});
    let set = app.put(&format!("{sellers}/TAVILY_API_KEY"), &m.seller, body).await.expect(200);
    assert_eq!((&set["name"], &set["hosts"]), (&json!("TAVILY_API_KEY"), &json!(["api.tavily.com"])));
    assert!(!set.to_string().contains("tvly"), "the value is not echoed: {set}");
    let listed = app.get(&sellers, &m.seller).await.expect(200);
    assert_eq!(listed[0]["name"], "TAVILY_API_KEY");
    assert!(!listed.to_string().contains("tvly"), "{listed}");
    let sealed: String = sqlx::query_scalar("SELECT sealed FROM seller_secret WHERE provider_agent_id = $1")
        .bind(&m.agent)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with("v1.s1.") && !sealed.contains("tvly"), "{sealed}");
    // The buyer's agent hears of it, and gets the seller's value.
    let heard = provisioned_since(&app, before).await;
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0]["agent"]["id"], first.as_str());
    assert_eq!(heard[0]["agent"]["secrets"], json!(["TAVILY_API_KEY"]));
    assert!(!app.feed(0).await.to_string().contains("tvly"), "no value in the feed");
    let seller_tavily = json!({"secrets": {"TAVILY_API_KEY": secret("tvly-seller", &["api.tavily.com"])}});
    assert_eq!(opened(&app, &first).await, seller_tavily);
    // Not among the buyer's own: they are the seller's to manage.
    assert_eq!(app.get(&path, &m.buyer).await.expect(200), json!([]));

    // A buyer who brings their own key uses it; deleting it hands the agent
    // back to the seller's.
    let body = json!({"value": "tvly-buyer", "hosts": ["api.tavily.com"]});
    app.put(&format!("{path}/TAVILY_API_KEY"), &m.buyer, body).await.expect(200);
    assert_eq!(last_provisioned(&app).await["agent"]["secrets"], json!(["TAVILY_API_KEY"]), "named once");
    assert_eq!(
        opened(&app, &first).await,
        json!({"secrets": {"TAVILY_API_KEY": secret("tvly-buyer", &["api.tavily.com"])}})
    );
    assert_eq!(app.delete(&format!("{path}/TAVILY_API_KEY"), &m.buyer).await.status.as_u16(), 204);
    assert_eq!(opened(&app, &first).await, seller_tavily);

    // A subscription provisioned later gets them from the start; a change
    // reaches every buyer's agent the hosts may serve: ok, or erred (a
    // termination that failed), not terminated.
    let (second, _) = provisioned(&app, &m).await;
    assert_eq!(last_provisioned(&app).await["agent"]["id"], second.as_str());
    assert_eq!(last_provisioned(&app).await["agent"]["secrets"], json!(["TAVILY_API_KEY"]));
    assert_eq!(opened(&app, &second).await, seller_tavily);
    let (third, _) = provisioned(&app, &m).await;
    app.post(&format!("/api/resources/{third}/terminate"), &m.buyer, json!({})).await.expect(200);
    app.run_jobs().await;
    let (fourth, _) = provisioned(&app, &m).await;
    for (resource, state) in [(&first, "erred"), (&fourth, "terminating")] {
        sqlx::query("UPDATE resource SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(resource)
            .execute(app.db.pool())
            .await
            .unwrap();
    }
    let before = app.feed(0).await["last"].as_i64().unwrap();
    app.put(&format!("{sellers}/SERP_KEY"), &m.seller, json!({"value": "serp-1"})).await.expect(200);
    let heard = provisioned_since(&app, before).await;
    let ids: Vec<&str> = heard.iter().map(|c| c["agent"]["id"].as_str().unwrap()).collect();
    let mut expected = vec![first.as_str(), second.as_str(), fourth.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(heard.iter().all(|c| c["agent"]["secrets"] == json!(["SERP_KEY", "TAVILY_API_KEY"])), "{heard:?}");
    // A terminated agent's secrets are no longer handed out.
    let gone = format!("/api/runtime/agents/{third}/secrets");
    app.get(&gone, RUNTIME_TOKEN).await.refused(404, "not_found");

    // Deleted: gone from every agent the hosts may serve.
    let before = app.feed(0).await["last"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("{sellers}/TAVILY_API_KEY"), &m.seller).await.status.as_u16(), 204);
    app.delete(&format!("{sellers}/TAVILY_API_KEY"), &m.seller).await.refused(404, "not_found");
    let heard = provisioned_since(&app, before).await;
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert!(heard.iter().all(|c| c["agent"]["secrets"] == json!(["SERP_KEY"])), "{heard:?}");
    assert_eq!(opened(&app, &second).await, json!({"secrets": {"SERP_KEY": secret("serp-1", &[])}}));
}

async fn sellers_secrets_are_theirs_alone(app: TestApp) {
    let m = app.market(json!({})).await;
    let (resource, _) = provisioned(&app, &m).await;
    let sellers = format!("/api/provider-agents/{}/secrets", m.agent);
    app.put(&format!("{sellers}/KEY"), &m.seller, json!({"value": "seller-value"})).await.expect(200);

    // Owners and admins of the provider; never the buyer, an outsider or
    // an operator.
    let admin = app.member(&m.seller, &m.provider, "boss@example.com", "admin").await;
    let member = app.member(&m.seller, &m.provider, "clerk@example.com", "member").await;
    let stranger = app.signup("stranger@example.com").await;
    app.get(&sellers, &admin).await.expect(200);
    app.get(&sellers, &member).await.refused(403, "forbidden");
    app.put(&format!("{sellers}/X"), &member, json!({"value": "v"})).await.refused(403, "forbidden");
    app.delete(&format!("{sellers}/KEY"), &member).await.refused(403, "forbidden");
    for outsider in [&m.buyer, &stranger] {
        app.get(&sellers, outsider).await.refused(404, "not_found");
        app.put(&format!("{sellers}/KEY"), outsider, json!({"value": "v"})).await.refused(404, "not_found");
        app.delete(&format!("{sellers}/KEY"), outsider).await.refused(404, "not_found");
    }
    app.get(&sellers, &m.operator).await.refused(403, "forbidden");

    // Hostile input is refused as for a buyer's, and stores nothing.
    for (name, body, needle) in [
        ("1KEY", json!({"value": "v"}), "must start with a letter"),
        ("OK", json!({"value": "sk-1\r\nX-Evil: 1"}), "control character"),
        ("OK", json!({"value": "v", "hosts": ["https://evil.example/"]}), "is not a host"),
    ] {
        let detail = app.put(&format!("{sellers}/{name}"), &m.seller, body).await.refused(422, "invalid");
        assert!(detail.contains(needle) && !detail.contains("sk-1"), "{name}: {detail}");
    }
    assert_eq!(app.count("seller_secret").await, 1);

    // A seller's sealed row copied into the buyer's table under its own
    // name does not open there, and hides the seller's (a buyer's row
    // stands for the buyer's choice); nor does a buyer's copied into the
    // seller's table.
    let buyers = format!("{}/secrets", provisioned_config(&app, &m, &resource).await);
    app.put(&format!("{buyers}/MINE"), &m.buyer, json!({"value": "buyer-value"})).await.expect(200);
    sqlx::query(
        "INSERT INTO agent_secret (resource_id, name, sealed, hosts, created_at, updated_at) \
         SELECT $1, name, sealed, hosts, created_at, updated_at FROM seller_secret WHERE name = 'KEY'",
    )
    .bind(&resource)
    .execute(app.db.pool())
    .await
    .unwrap();
    assert_eq!(opened(&app, &resource).await, json!({"secrets": {"MINE": secret("buyer-value", &[])}}));
    sqlx::query("DELETE FROM agent_secret WHERE name = 'KEY'").execute(app.db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO seller_secret (provider_agent_id, name, sealed, hosts, created_at, updated_at) \
         SELECT $1, name, sealed, hosts, created_at, updated_at FROM agent_secret WHERE name = 'MINE'",
    )
    .bind(&m.agent)
    .execute(app.db.pool())
    .await
    .unwrap();
    sqlx::query("DELETE FROM agent_secret WHERE name = 'MINE'").execute(app.db.pool()).await.unwrap();
    assert_eq!(opened(&app, &resource).await, json!({"secrets": {"KEY": secret("seller-value", &[])}}));
    sqlx::query("DELETE FROM seller_secret WHERE name = 'MINE'").execute(app.db.pool()).await.unwrap();

    // Another seller's agent and its buyer: neither hears of, nor gets,
    // the other's secrets.
    let other_seller = app.signup("other-seller@example.com").await;
    let other_provider = app.provider(&other_seller, &m.operator, "Globex").await;
    let other_agent = app.agent(&other_seller, &other_provider, "Echo").await;
    let (offering, plan) = app.draft_offering(&other_seller, &other_provider, &other_agent, json!({})).await;
    app.activate(&other_seller, &m.operator, &offering).await;
    let other =
        Market { seller: other_seller, provider: other_provider, agent: other_agent, offering, plan, ..m.clone() };
    let (other_resource, _) = provisioned(&app, &other).await;
    let before = app.feed(0).await["last"].as_i64().unwrap();
    let others = format!("/api/provider-agents/{}/secrets", other.agent);
    app.put(&format!("{others}/KEY"), &other.seller, json!({"value": "globex-value"})).await.expect(200);
    let heard = provisioned_since(&app, before).await;
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0]["agent"]["id"], other_resource.as_str());
    assert_eq!(opened(&app, &resource).await, json!({"secrets": {"KEY": secret("seller-value", &[])}}));
    assert_eq!(opened(&app, &other_resource).await, json!({"secrets": {"KEY": secret("globex-value", &[])}}));
    app.get(&sellers, &other.seller).await.refused(404, "not_found");
    app.put(&format!("{sellers}/KEY"), &other.seller, json!({"value": "w"})).await.refused(404, "not_found");

    // A provider that is no longer approved sets nothing, but may still
    // delete what it set.
    sqlx::query("UPDATE organization SET provider_status = 'rejected' WHERE id = $1")
        .bind(&m.provider)
        .execute(app.db.pool())
        .await
        .unwrap();
    let detail = app.put(&format!("{sellers}/KEY"), &m.seller, json!({"value": "w"})).await.refused(403, "forbidden");
    assert!(detail.contains("approved"), "{detail}");
    assert_eq!(app.delete(&format!("{sellers}/KEY"), &m.seller).await.status.as_u16(), 204);
    sqlx::query("UPDATE organization SET provider_status = 'approved' WHERE id = $1")
        .bind(&m.provider)
        .execute(app.db.pool())
        .await
        .unwrap();

    // An agent with no flow version yet goes with its secrets.
    let draft = app.post("/api/provider-agents/", &m.seller, json!({"organization": m.provider, "name": "Draft"}));
    let draft = draft.await.expect(201)["id"].as_str().unwrap().to_owned();
    let path = format!("/api/provider-agents/{draft}/secrets/KEY");
    app.put(&path, &m.seller, json!({"value": "v"})).await.expect(200);
    assert_eq!(app.delete(&format!("/api/provider-agents/{draft}"), &m.seller).await.status.as_u16(), 204);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seller_secret WHERE provider_agent_id = $1")
        .bind(&draft)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Meeting Summary with its transcriber's key in global variable
/// `ASSEMBLYAI_API_KEY` and its agent's model key in `OPENAI_API_KEY`, as a
/// seller exports it after choosing the variables in Langflow.
fn meeting_with_variables() -> Vec<u8> {
    let mut export: Value = serde_json::from_slice(&flow("starter/meeting-summary.json")).unwrap();
    for node in export["data"]["nodes"].as_array_mut().unwrap() {
        let variable = match node["data"]["type"].as_str() {
            Some("AssemblyAITranscriber") => "ASSEMBLYAI_API_KEY",
            Some("Agent") => "OPENAI_API_KEY",
            _ => continue,
        };
        let key = &mut node["data"]["node"]["template"]["api_key"];
        key["load_from_db"] = json!(true);
        key["value"] = json!(variable);
    }
    serde_json::to_vec(&export).unwrap()
}

async fn buyers_see_which_variables_the_flow_reads(app: TestApp) {
    let m = app.market_of(meeting_with_variables(), json!({})).await;
    // The seller sees them in the version's manifest.
    let version = app.get(&format!("/api/provider-agents/{}/versions/1", m.agent), &m.seller).await.expect(200);
    assert_eq!(version["manifest"]["variables"], json!(["ASSEMBLYAI_API_KEY", "OPENAI_API_KEY"]));
    let (_, path) = provisioned(&app, &m).await;
    let variables = path.replace("/secrets", "/variables");
    let none = json!([{"name": "ASSEMBLYAI_API_KEY", "set_by": null}, {"name": "OPENAI_API_KEY", "set_by": null}]);
    assert_eq!(app.get(&variables, &m.buyer).await.expect(200), none);

    // The seller pays for transcription; the buyer brings their model key,
    // and one the flow does not read is not listed.
    let sellers = format!("/api/provider-agents/{}/secrets", m.agent);
    app.put(&format!("{sellers}/ASSEMBLYAI_API_KEY"), &m.seller, json!({"value": "aai-seller"})).await.expect(200);
    app.put(&format!("{sellers}/OPENAI_API_KEY"), &m.seller, json!({"value": "sk-seller"})).await.expect(200);
    app.put(&format!("{path}/OPENAI_API_KEY"), &m.buyer, json!({"value": "sk-buyer"})).await.expect(200);
    app.put(&format!("{path}/UNUSED"), &m.buyer, json!({"value": "x"})).await.expect(200);
    let listed = app.get(&variables, &m.buyer).await.expect(200);
    assert_eq!(
        listed,
        json!([{"name": "ASSEMBLYAI_API_KEY", "set_by": "seller"}, {"name": "OPENAI_API_KEY", "set_by": "buyer"}])
    );
    assert!(!listed.to_string().contains("sk-") && !listed.to_string().contains("aai-"), "{listed}");

    // Who may: as for the buyer's secrets.
    let member = app.member(&m.buyer, &m.consumer, "clerk@example.com", "member").await;
    app.get(&variables, &member).await.refused(403, "forbidden");
    app.get(&variables, &m.seller).await.refused(404, "not_found");
}
