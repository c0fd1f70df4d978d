//! Agent secrets end to end, on the real binary over HTTP: the seller of
//! Basic Prompting gives its agent their own model key as
//! `OPENAI_API_KEY`, and a buyer brings theirs in its place; the control
//! plane seals them, the runtime fetches them and the model server
//! receives the buyer's, else the seller's, else the operator's, without a
//! key showing in any answer or in the database file; they survive a
//! restart (the data directory's sealing key), and deleting them hands the
//! agent back in turn.

#[path = "support/api.rs"]
mod api;
#[expect(dead_code, reason = "shared by the end-to-end suites; this one starts a server without agents")]
mod support;

use api::{Api, Listing, Subscription, eventually, run};
use sandflow_model_server::{ModelServer, Options};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

const OPERATOR_KEY: &str = "sk-operator-e2e";
const SELLER_KEY: &str = "sk-seller-own-e2e";
const BUYER_KEY: &str = "sk-buyer-own-e2e";

/// The key of the model server's latest chat request after a run of
/// `text` answered.
async fn key_used(host: &support::Host, model: &ModelServer, sub: &Subscription, text: &str) -> Option<String> {
    let (status, answer) = run(&host.base, &sub.agent, &sub.key, text).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outputs"][0]["outputs"][0]["results"]["message"]["text"], format!("You said: {text}"));
    assert!(!answer.to_string().contains("sk-"), "no key in the answer: {answer}");
    model.requests().iter().rev().find(|r| r.path.ends_with("/chat/completions")).and_then(|r| r.api_key.clone())
}

#[tokio::test]
async fn the_buyers_else_the_sellers_own_model_key_reaches_the_model() {
    let model = ModelServer::start(Options::default()).await.expect("model server");
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", model.url());
    let data = tempfile::tempdir().expect("tempdir");
    let start = || {
        support::start_with_env(
            data.path(),
            "all",
            &[],
            &["--llm-provider", &provider],
            &[("OPENAI_API_KEY", OPERATOR_KEY)],
        )
    };
    let host = start();
    let api = Api::new(&host.base);
    let operator = api.sign_up("operator@example.com").await;
    let flow: Value =
        serde_json::from_slice(&std::fs::read(support::flows().join("starter/basic-prompting.json")).expect("flow"))
            .expect("JSON");
    let Listing { plan, seller, agent, .. } = api.seller_lists(&operator, flow).await;
    let buyer = api.sign_up("buyer@example.com").await;
    let org = api.organization(&buyer, "Buyer Inc").await;
    let sub = api.subscribe(&buyer, &org, &plan).await;

    // Until the buyer sets one, the operator's key is used.
    let first = eventually(Duration::from_secs(5), || async {
        (run(&host.base, &sub.agent, &sub.key, "warm up").await.0 == 200).then_some(())
    });
    first.await;
    assert_eq!(key_used(&host, &model, &sub, "one").await.as_deref(), Some(OPERATOR_KEY));

    // The seller's key, for every buyer of the agent.
    let sellers = format!("/api/provider-agents/{agent}/secrets");
    let set = api.put(&format!("{sellers}/OPENAI_API_KEY"), &seller, json!({"value": SELLER_KEY})).await;
    assert!(!set.to_string().contains(SELLER_KEY), "{set}");
    eventually(Duration::from_secs(5), || async {
        (key_used(&host, &model, &sub, "seller's").await.as_deref() == Some(SELLER_KEY)).then_some(())
    })
    .await;

    let secrets = format!("/api/customer-agent-configs/{}/secrets", sub.config);
    let set = api.put(&format!("{secrets}/OPENAI_API_KEY"), &buyer, json!({"value": BUYER_KEY})).await;
    assert!(!set.to_string().contains(BUYER_KEY), "{set}");
    // The runtime follows the feed: the buyer's key is used shortly.
    eventually(Duration::from_secs(5), || async {
        (key_used(&host, &model, &sub, "two").await.as_deref() == Some(BUYER_KEY)).then_some(())
    })
    .await;

    // Sealed: neither the database nor its journal holds the key; the
    // sealing key lives beside it, readable by its owner only.
    for entry in std::fs::read_dir(data.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("control-plane.db")) {
            let bytes = std::fs::read(&path).expect("database file");
            for key in [BUYER_KEY, SELLER_KEY] {
                let found = bytes.windows(key.len()).any(|w| w == key.as_bytes());
                assert!(!found, "{} holds a key in the clear", path.display());
            }
        }
    }
    let mode = std::fs::metadata(data.path().join("secrets-key")).expect("the sealing key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A restart opens it again with the data directory's key.
    drop(host);
    let host = start();
    let api = Api::new(&host.base);
    let again = eventually(Duration::from_secs(10), || async {
        (run(&host.base, &sub.agent, &sub.key, "warm up").await.0 == 200).then_some(())
    });
    again.await;
    assert_eq!(key_used(&host, &model, &sub, "three").await.as_deref(), Some(BUYER_KEY));

    // Deleted in turn: back to the seller's key, then the operator's.
    for (path, owner, next) in [(&secrets, &buyer, SELLER_KEY), (&sellers, &seller, OPERATOR_KEY)] {
        let path = format!("{path}/OPENAI_API_KEY");
        let (status, _) = api.call(reqwest::Method::DELETE, &path, Some(owner), None).await;
        assert_eq!(status, 204);
        eventually(Duration::from_secs(5), || async {
            (key_used(&host, &model, &sub, "four").await.as_deref() == Some(next)).then_some(())
        })
        .await;
    }
}
