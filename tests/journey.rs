//! The marketplace end to end, on the real binary over HTTP: a seller
//! imports `prompt-echo.json` and lists it, the operator approves, a buyer
//! orders, configures a persona, gets a key and calls the agent through the
//! runtime; the usage reaches both sides' analytics, a revoked key stops
//! working within a second and a terminated subscription takes the agent
//! away. The buyer's training document is processed into the document
//! index under the buyer's organisation and agent. Once on the embedded
//! SQLite and once on PostgreSQL (the control plane's database and the
//! document index each a database of their own).

#[path = "support/api.rs"]
mod api;
#[path = "support/postgres.rs"]
mod postgres;
#[expect(dead_code, reason = "shared by the end-to-end suites; this one starts a server without agents")]
mod support;

use api::{Api, Listing, Subscription, User, eventually, id, run};
use sandflow_runtime_host::doc_index::{DocIndex, Scope, SearchRequest};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn marketplace_journey_on_sqlite() {
    journey(&[], None).await;
}

#[tokio::test]
async fn marketplace_journey_on_postgres() {
    let database = postgres::Database::create().await;
    let documents = postgres::Database::create().await;
    journey(&["--database-url", database.url(), "--documents-url", documents.url()], Some(documents.url())).await;
    database.drop().await;
    documents.drop().await;
}

/// `documents_url`: the index the server was told to use (else its data
/// directory's `documents.db`).
async fn journey(extra: &[&str], documents_url: Option<&str>) {
    let data = tempfile::tempdir().expect("tempdir");
    let host = support::start(data.path(), "all", &[], extra);
    let api = Api::new(&host.base);
    let operator = api.sign_up("operator@example.com").await;

    let flow: Value =
        serde_json::from_slice(&std::fs::read(support::flows().join("prompt-echo.json")).expect("flow")).expect("JSON");
    let Listing { plan, offering, .. } = api.seller_lists(&operator, flow).await;
    let buyer = api.sign_up("buyer@example.com").await;
    let buyer_org = api.organization(&buyer, "Buyer Inc").await;
    let catalog = api.get("/api/catalog/?q=echo", &buyer).await;
    assert!(catalog.to_string().contains(&offering), "the active offering is in the catalog: {catalog}");

    let Subscription { agent, config, key_id, key } = api.subscribe(&buyer, &buyer_org, &plan).await;
    api.patch(
        &format!("/api/customer-agent-configs/{config}"),
        &buyer,
        json!({"persona": {"name": "Echo", "system_prompt": "Repeat politely.", "tone": "friendly"}}),
    )
    .await;

    // The runtime follows the control plane: the agent answers shortly.
    let answer = eventually(Duration::from_secs(5), || async {
        let (status, body) = run(&host.base, &agent, &key, "hello from the buyer").await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(answer["outputs"][0]["outputs"][0]["results"]["message"]["text"], "You said: hello from the buyer");

    // A training document is processed into the index, under the buyer's
    // organisation and agent: the scope the runtime runs the agent in.
    let document = upload(&host.base, &buyer, &config, "refunds.md", "Refunds are granted within 30 days.").await;
    let ready = eventually(Duration::from_secs(10), || async {
        let document = api.get(&format!("/api/training-documents/{document}"), &buyer).await;
        (document["status"] != "uploaded" && document["status"] != "processing").then_some(document)
    })
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["chunk_count"], 1);
    assert_eq!((ready["organization_id"].as_str(), ready["resource_id"].as_str()), (Some(&*buyer_org), Some(&*agent)));
    let url = documents_url.map_or_else(|| DocIndex::sqlite_url_in(data.path()), str::to_owned);
    let index = DocIndex::open(&url).await.expect("the server's document index opens");
    let hits =
        index.search(&Scope::new(&buyer_org, &agent), &SearchRequest::lexical("", "refund", 5)).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["Refunds are granted within 30 days."]);
    assert_eq!(index.count(&Scope::new(&buyer_org, "another-agent"), None).await.expect("count"), 0);
    index.close().await;

    // Usage reaches the buyer's and the seller's analytics.
    let (period, _) = sandflow_runtime_host::api::clock::month();
    let usage = eventually(Duration::from_secs(5), || async {
        let usage = api.get(&format!("/api/analytics/usage/?organization={buyer_org}&period={period}"), &buyer).await;
        usage.to_string().contains("\"runs\":1").then_some(usage)
    })
    .await;
    assert!(usage.to_string().contains(&agent), "the buyer sees usage per subscription: {usage}");
    // The key's list entry says when it was last used.
    let keys = api.get(&format!("/api/customer-agent-configs/{config}/api_keys"), &buyer).await;
    let listed =
        keys.as_array().and_then(|k| k.iter().find(|k| k["id"] == key_id.as_str())).expect("the key is listed");
    assert!(listed["last_used_at_ms"].as_i64().is_some_and(|at| at > 0), "last use not shown: {listed}");

    // Revocation reaches the runtime within a second.
    let revoked_at = Instant::now();
    let (status, _) =
        api.call(reqwest::Method::DELETE, &format!("/api/agent-api-keys/{key_id}"), Some(&buyer), None).await;
    assert!(status == 200 || status == 204, "revoking answered {status}");
    eventually(Duration::from_secs(2), || async {
        (run(&host.base, &agent, &key, "again").await.0 == 401).then_some(())
    })
    .await;
    assert!(revoked_at.elapsed() < Duration::from_millis(1_500), "revocation took {:?}", revoked_at.elapsed());

    // Terminating the subscription takes the agent off the runtime.
    let fresh =
        api.post(&format!("/api/customer-agent-configs/{config}/api_keys"), &buyer, json!({"name": "late"}), 201).await;
    let fresh = fresh["key"].as_str().expect("key").to_owned();
    api.post(&format!("/api/resources/{agent}/terminate"), &buyer, json!({}), 200).await;
    eventually(Duration::from_secs(5), || async {
        let (status, _) = run(&host.base, &agent, &fresh, "gone?").await;
        (status == 404 || status == 401).then_some(())
    })
    .await;
}

/// Uploads `text` as the Markdown document `filename` for `config`; the
/// document's id.
async fn upload(base: &str, user: &User, config: &str, filename: &str, text: &str) -> String {
    let boundary = "journey-boundary-91c2";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"config_id\"\r\n\r\n{config}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: text/markdown\r\n\r\n{text}\r\n--{boundary}--\r\n"
    );
    let response = sandflow_runtime_host::http_client_builder()
        .build()
        .expect("an HTTP client")
        .post(format!("{base}/api/training-documents/"))
        .bearer_auth(&user.0)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status().as_u16(), 201, "the upload is accepted");
    let document: Value = response.json().await.expect("JSON");
    id(&document)
}
