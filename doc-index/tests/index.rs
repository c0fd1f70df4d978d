//! The document index on SQLite (a temporary file) and on PostgreSQL (a
//! fresh database per test, dropped afterwards): ranking, vector and
//! hybrid search, scope isolation under hostile query text, replacing and
//! deleting a document's chunks, ingestion without duplicates, limits.
//!
//! PostgreSQL is reached at `SANDFLOW_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`; a test fails if it is not
//! there, since both stores must be tested.

use sandflow_doc_index::{
    DocIndex, IndexError, MAX_TENANT_BYTES, NewChunk, QueryEmbedding, Ranking, Scope, SearchRequest,
};
use serde_json::json;
use sqlx::{Connection, Executor};
use std::future::Future;

async fn admin(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for these tests at {url} (set SANDFLOW_TEST_POSTGRES_URL): {e}")
    })
}

/// Runs `scenario` on a fresh index: SQLite, or PostgreSQL when `postgres`.
async fn with_index<F, Fut>(postgres: bool, scenario: F)
where
    F: FnOnce(DocIndex) -> Fut,
    Fut: Future<Output = ()>,
{
    if !postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = DocIndex::open(&DocIndex::sqlite_url_in(dir.path())).await.expect("open");
        scenario(index.clone()).await;
        index.close().await;
        return;
    }
    let admin_url = std::env::var("SANDFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("docs_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin(&admin_url).await;
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("no database in {admin_url}"),
    };
    let index = DocIndex::open(&url).await.expect("open");
    // Drop the database even when the scenario panics.
    let outcome = futures_like::catch(scenario(index.clone())).await;
    index.close().await;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.expect("drop database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `catch_unwind` for a future, without another dependency.
mod futures_like {
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct Catch<F>(Pin<Box<F>>);

    impl<F: Future> Future for Catch<F> {
        type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                Err(panic) => Poll::Ready(Err(panic)),
            }
        }
    }

    pub fn catch<F: Future>(future: F) -> Catch<F> {
        Catch(Box::pin(future))
    }
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $scenario() { super::with_index(false, super::$scenario).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $scenario() { super::with_index(true, super::$scenario).await; })*
        }
    };
}

on_both!(
    ranks_the_best_match_first,
    tenants_and_agents_never_see_each_other,
    hostile_query_text_is_only_words,
    reprocessing_replaces_and_deleting_removes,
    vector_and_hybrid_search,
    ingest_skips_what_the_collection_holds,
    collections_narrow_a_search,
    bad_chunks_are_refused,
    chunks_written_without_vectors_are_embedded_later,
    tenants_bytes_are_counted,
);

fn chunks(texts: &[&str]) -> Vec<NewChunk> {
    texts.iter().enumerate().map(|(i, t)| NewChunk { metadata: json!({"i": i}), ..NewChunk::text(*t) }).collect()
}

fn texts(hits: &[sandflow_doc_index::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.text.as_str()).collect()
}

async fn ranks_the_best_match_first(index: DocIndex) {
    let scope = Scope::new("t1", "a1");
    let doc = chunks(&[
        "Shipping takes two weeks by sea freight.",
        "Our refund policy: refunds are granted within 30 days of purchase, refund requests by email.",
        "A refund is possible for damaged goods.",
        "The office is closed on public holidays.",
    ]);
    assert_eq!(index.replace_document(&scope, "kb", "faq", &doc, None).await.expect("write"), 4);
    let hits = index.search(&scope, &SearchRequest::lexical("", "refund policy?", 5)).await.expect("search");
    assert_eq!(hits.len(), 2, "{hits:?}");
    // Stemming: `refunds` and `refund` match; more occurrences rank higher.
    assert!(hits[0].text.starts_with("Our refund policy"), "{hits:?}");
    assert!(hits[0].score > hits[1].score && hits.iter().all(|h| h.ranking == Ranking::Lexical));
    assert_eq!((hits[0].document.as_str(), hits[0].collection.as_str(), hits[0].ordinal), ("faq", "kb", 1));
    assert_eq!(hits[0].metadata, json!({"i": 1}));
    let one = index.search(&scope, &SearchRequest::lexical("", "refund", 1)).await.expect("search");
    assert_eq!(one.len(), 1);
    // No words and no embedding: the first chunks in document order.
    let first = index.search(&scope, &SearchRequest::lexical("", "", 2)).await.expect("search");
    assert_eq!(texts(&first), [doc[0].text.as_str(), doc[1].text.as_str()]);
    assert_eq!(first[0].ranking, Ranking::None);
}

async fn tenants_and_agents_never_see_each_other(index: DocIndex) {
    let mine = Scope::new("tenant-a", "agent-1");
    let same_tenant_other_agent = Scope::new("tenant-a", "agent-2");
    let other_tenant = Scope::new("tenant-b", "agent-1");
    index.replace_document(&mine, "", "d", &chunks(&["alpha secret plan"]), None).await.expect("write");
    index.replace_document(&other_tenant, "", "d", &chunks(&["bravo secret plan"]), None).await.expect("write");
    for (scope, expected) in [(&mine, "alpha"), (&other_tenant, "bravo")] {
        for query in ["secret", "alpha bravo", "", r#"" OR 1=1 --"#] {
            let hits = index.search(scope, &SearchRequest::lexical("", query, 10)).await.expect("search");
            assert!(hits.iter().all(|h| h.text.starts_with(expected)), "{query}: {hits:?}");
        }
    }
    let none = index.search(&same_tenant_other_agent, &SearchRequest::lexical("", "secret", 10)).await.expect("search");
    assert!(none.is_empty(), "{none:?}");
    // A scope's vector search compares only its own chunks, too.
    let vector = [1.0f32, 0.0];
    let embedded = NewChunk { embedding: Some(vector.to_vec()), ..NewChunk::text("charlie") };
    index.replace_document(&other_tenant, "", "v", &[embedded], Some("m")).await.expect("write");
    let request = SearchRequest {
        embedding: Some(QueryEmbedding { model: "m", vector: &vector }),
        ..SearchRequest::lexical("", "", 10)
    };
    assert!(index.search(&mine, &request).await.expect("search").is_empty());
    // Deleting a document of the same name in another scope leaves this one alone.
    assert_eq!(index.delete_document(&same_tenant_other_agent, "d").await.expect("delete"), 0);
    assert_eq!(index.count(&mine, None).await.expect("count"), 1);
}

async fn hostile_query_text_is_only_words(index: DocIndex) {
    let scope = Scope::new("t", "a");
    let other = Scope::new("u", "a");
    index
        .replace_document(&scope, "", "d", &chunks(&["near the river bank", "the quick brown fox", "star wars"]), None)
        .await
        .expect("write");
    index.replace_document(&other, "", "d", &chunks(&["river of another tenant"]), None).await.expect("write");
    for query in [
        r#"" OR 1=1 --"#,
        "NEAR(",
        "NEAR(river bank)",
        "*",
        "\"",
        "'",
        "river'; DROP TABLE doc_chunk; --",
        "text:river",
        "river OR NOT fox",
        "^river",
        "(((",
        "!river & | <-> :*",
        "\0",
    ] {
        let hits = index.search(&scope, &SearchRequest::lexical("", query, 10)).await.expect(query);
        assert!(hits.iter().all(|h| !h.text.contains("another tenant")), "{query}: {hits:?}");
    }
    // Words inside hostile text are still searched for as words.
    let hits = index.search(&scope, &SearchRequest::lexical("", "NEAR(river", 10)).await.expect("search");
    assert_eq!(texts(&hits), ["near the river bank"]);
    let star = index.search(&scope, &SearchRequest::lexical("", "sta*", 10)).await.expect("search");
    assert!(star.is_empty(), "`*` is not a prefix wildcard: {star:?}");
    assert_eq!(index.count(&scope, None).await.expect("the table is still there"), 3);
}

async fn reprocessing_replaces_and_deleting_removes(index: DocIndex) {
    let scope = Scope::new("t", "a");
    index.replace_document(&scope, "", "doc-1", &chunks(&["old pricing", "old terms"]), None).await.expect("write");
    index.replace_document(&scope, "", "doc-2", &chunks(&["keep me"]), None).await.expect("write");
    index.replace_document(&scope, "", "doc-1", &chunks(&["new pricing"]), None).await.expect("rewrite");
    assert_eq!(index.count(&scope, Some("doc-1")).await.expect("count"), 1);
    let hits = index.search(&scope, &SearchRequest::lexical("", "pricing terms", 10)).await.expect("search");
    assert_eq!(texts(&hits), ["new pricing"]);
    assert_eq!(hits[0].ordinal, 0);
    assert_eq!(index.delete_document(&scope, "doc-1").await.expect("delete"), 1);
    assert!(index.search(&scope, &SearchRequest::lexical("", "pricing", 10)).await.expect("search").is_empty());
    assert_eq!(index.count(&scope, None).await.expect("count"), 1);
}

fn embedded(text: &str, vector: [f32; 3]) -> NewChunk {
    NewChunk { embedding: Some(vector.to_vec()), ..NewChunk::text(text) }
}

async fn vector_and_hybrid_search(index: DocIndex) {
    let scope = Scope::new("t", "a");
    let doc = [
        embedded("cats purr", [1.0, 0.0, 0.0]),
        embedded("dogs bark at cats", [0.0, 1.0, 0.0]),
        embedded("fish swim", [0.6, 0.0, 0.8]),
    ];
    index.replace_document(&scope, "", "pets", &doc, Some("model-a")).await.expect("write");
    let query = [0.9f32, 0.0, 0.1];
    let vector = SearchRequest {
        embedding: Some(QueryEmbedding { model: "model-a", vector: &query }),
        ..SearchRequest::lexical("", "", 3)
    };
    let hits = index.search(&scope, &vector).await.expect("search");
    assert_eq!(texts(&hits), ["cats purr", "fish swim", "dogs bark at cats"]);
    assert!(hits[0].score > 0.9 && hits.iter().all(|h| h.ranking == Ranking::Vector));
    // Another model's embeddings are never compared with this query.
    let other_model = SearchRequest {
        embedding: Some(QueryEmbedding { model: "model-b", vector: &query }),
        ..SearchRequest::lexical("", "", 3)
    };
    assert!(index.search(&scope, &other_model).await.expect("search").is_empty());
    // Hybrid: "bark" only matches lexically, "cats purr" is first by vector;
    // the chunk both lists agree on ("dogs bark at cats" matches `cats` and
    // `bark`; "cats purr" matches `cats` and is nearest) wins.
    let hybrid = SearchRequest { query: "bark cats", ..vector };
    let hits = index.search(&scope, &hybrid).await.expect("search");
    assert!(hits.iter().all(|h| h.ranking == Ranking::Hybrid), "{hits:?}");
    assert_eq!(hits.len(), 3);
    assert!(texts(&hits)[..2].contains(&"cats purr") && texts(&hits)[..2].contains(&"dogs bark at cats"), "{hits:?}");
    assert_eq!(hits[2].text, "fish swim");
}

async fn ingest_skips_what_the_collection_holds(index: DocIndex) {
    let scope = Scope::new("t", "a");
    let batch = chunks(&["one", "two", "two"]);
    assert_eq!(index.ingest(&scope, "c", "src", &batch, None).await.expect("ingest"), 2);
    assert_eq!(index.ingest(&scope, "c", "src", &chunks(&["two", "three"]), None).await.expect("again"), 1);
    // Another collection keeps its own copy.
    assert_eq!(index.ingest(&scope, "d", "src", &chunks(&["one"]), None).await.expect("other"), 1);
    let all = index.search(&scope, &SearchRequest::lexical("c", "", 10)).await.expect("search");
    assert_eq!(texts(&all), ["one", "two", "three"]);
    assert_eq!(all.iter().map(|h| h.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
}

async fn collections_narrow_a_search(index: DocIndex) {
    let scope = Scope::new("t", "a");
    index.replace_document(&scope, "manuals", "m", &chunks(&["install the pump"]), None).await.expect("write");
    index.replace_document(&scope, "faq", "f", &chunks(&["pump warranty"]), None).await.expect("write");
    let manuals = index.search(&scope, &SearchRequest::lexical("manuals", "pump", 10)).await.expect("search");
    assert_eq!(texts(&manuals), ["install the pump"]);
    let all = index.search(&scope, &SearchRequest::lexical("", "pump", 10)).await.expect("search");
    assert_eq!(all.len(), 2);
}

async fn bad_chunks_are_refused(index: DocIndex) {
    let scope = Scope::new("t", "a");
    for bad in [NewChunk::text("  "), NewChunk::text("a\0b"), NewChunk::text("x".repeat(70_000))] {
        let error = index.replace_document(&scope, "", "d", &[bad], None).await.expect_err("refused");
        assert!(matches!(error, IndexError::Invalid(_)), "{error}");
    }
    let nan = NewChunk { embedding: Some(vec![f32::NAN]), ..NewChunk::text("nan") };
    assert!(matches!(index.ingest(&scope, "", "d", &[nan], Some("m")).await, Err(IndexError::Invalid(_))));
    assert_eq!(index.count(&scope, None).await.expect("count"), 0);
    assert!(matches!(DocIndex::open("mysql://x").await, Err(IndexError::UnsupportedUrl(_))));
}

async fn chunks_written_without_vectors_are_embedded_later(index: DocIndex) {
    let scope = Scope::new("t", "a");
    let other = Scope::new("u", "a");
    index.replace_document(&scope, "kb", "d", &chunks(&["alpha", "beta", "gamma"]), None).await.expect("write");
    index.replace_document(&other, "kb", "d", &chunks(&["delta"]), None).await.expect("write");
    let pending = index.unembedded(&scope, "", "m", 2).await.expect("pending");
    assert_eq!(pending.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["alpha", "beta"]);
    let vectors: Vec<(i64, Vec<f32>)> = pending
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, if i == 0 { vec![1.0, 0.0] } else { vec![0.0, 1.0] }))
        .collect();
    assert_eq!(index.set_embeddings(&scope, "m", &vectors).await.expect("stored"), 2);
    // Another scope's ids are not this scope's to embed.
    let foreign = index.unembedded(&other, "", "m", 10).await.expect("pending");
    assert_eq!(index.set_embeddings(&scope, "m", &[(foreign[0].0, vec![1.0, 0.0])]).await.expect("none"), 0);
    assert_eq!(index.unembedded(&scope, "kb", "m", 10).await.expect("pending").len(), 1);
    assert_eq!(index.unembedded(&scope, "kb", "other-model", 10).await.expect("pending").len(), 3);
    let query = [0.9f32, 0.1];
    let request = SearchRequest {
        embedding: Some(QueryEmbedding { model: "m", vector: &query }),
        ..SearchRequest::lexical("", "", 5)
    };
    assert_eq!(texts(&index.search(&scope, &request).await.expect("search")), ["alpha", "beta"]);
    // A chunk that failed to embed goes behind the others waiting.
    index.replace_document(&scope, "kb", "d2", &chunks(&["delta", "epsilon"]), None).await.expect("write");
    let waiting = |n| index.unembedded(&scope, "kb", "m", n);
    let first = waiting(1).await.expect("pending");
    assert_eq!(first[0].1, "gamma");
    index.postpone(&scope, &[first[0].0]).await.expect("postponed");
    let texts_of = |pending: Vec<(i64, String)>| pending.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
    assert_eq!(texts_of(waiting(3).await.expect("pending")), ["delta", "epsilon", "gamma"]);
    index.postpone(&other, &[first[0].0]).await.expect("another scope's id is left alone");
    assert_eq!(texts_of(waiting(1).await.expect("pending")), ["delta"]);
}

async fn tenants_bytes_are_counted(index: DocIndex) {
    let (scope, other_agent) = (Scope::new("t", "a"), Scope::new("t", "b"));
    index.replace_document(&scope, "", "d", &chunks(&["four", "sixsix"]), None).await.expect("write");
    index.ingest(&other_agent, "", "e", &[embedded("three", [1.0, 0.0, 0.0])], Some("m")).await.expect("ingest");
    assert_eq!(index.tenant_bytes("t").await.expect("bytes"), 4 + 6 + 5 + 12, "texts and vectors, over agents");
    let pending = index.unembedded(&scope, "", "m", 10).await.expect("pending");
    let vectors: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, _)| (*id, vec![1.0, 0.0])).collect();
    index.set_embeddings(&scope, "m", &vectors).await.expect("stored");
    assert_eq!(index.tenant_bytes("t").await.expect("bytes"), 27 + 2 * 8, "vectors added later count");
    index.replace_document(&scope, "", "d", &chunks(&["x"]), None).await.expect("write");
    assert_eq!(index.tenant_bytes("t").await.expect("bytes"), 1 + 5 + 12, "replaced chunks count no more");
    index.delete_document(&other_agent, "e").await.expect("delete");
    assert_eq!(index.tenant_bytes("t").await.expect("bytes"), 1);
    assert_eq!(index.tenant_bytes("u").await.expect("bytes"), 0, "another tenant holds nothing");
}

/// A tenant's chunks stop at [`MAX_TENANT_BYTES`]: its counter is set near
/// the quota here (filling a gigabyte would take the test's time).
#[tokio::test]
async fn a_tenant_stops_at_its_byte_quota() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = DocIndex::sqlite_url_in(dir.path());
    let index = DocIndex::open(&url).await.expect("open");
    let scope = Scope::new("t", "a");
    index.replace_document(&scope, "", "d", &chunks(&["seed"]), None).await.expect("write");
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query("UPDATE doc_tenant_bytes SET bytes = $1 WHERE tenant = 't'")
        .bind(MAX_TENANT_BYTES - 6)
        .execute(&mut conn)
        .await
        .expect("near the quota");
    let error = index.ingest(&Scope::new("t", "other"), "", "e", &chunks(&["sevenxx"]), None).await.expect_err("full");
    assert!(matches!(&error, IndexError::Full(m) if m.contains("delete documents first")), "{error}");
    index.ingest(&scope, "", "e", &chunks(&["six666"]), None).await.expect("fits exactly");
    index.ingest(&Scope::new("u", "a"), "", "e", &chunks(&["another tenant's"]), None).await.expect("not counted");
    index.close().await;
}
