//! Training documents on SQLite and PostgreSQL (each with a document index
//! of its own): uploads of every format (a PDF and a DOCX made by the test), their
//! processing job into the index under the buyer's organisation and
//! resource (the runtime's tenant and agent), re-processing that replaces
//! chunks, deletion, and the refusals: too large, wrong type, not
//! multipart, corrupt PDF (failed with its reason), another organisation,
//! a member who is not an owner or admin.

mod common;

use axum::body::Body;
use axum::http::{Request, header};
use common::{Market, TestApp};
use sandflow_doc_index::{Scope, SearchRequest};
use serde_json::Value;

on_both_stores_with_documents!(
    every_format_is_processed_into_the_buyers_scope,
    reprocessing_replaces_and_deleting_removes,
    bad_uploads_are_refused,
    a_corrupt_pdf_fails_with_its_reason,
    only_the_buyers_organisation_sees_its_documents,
);

/// A DOCX package whose body holds `paragraphs` (XML-escaped already).
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let body: String = paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>")).collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document \
         xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let mut out = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("word/document.xml", options).expect("entry");
    zip.write_all(xml.as_bytes()).expect("write");
    zip.finish().expect("zip");
    out
}

/// A one-page PDF whose page shows `lines`, built with correct offsets.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for line in lines {
        let escaped = line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// One part of a multipart form.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    bytes: Vec<u8>,
}

fn field<'a>(name: &'a str, value: &str) -> Part<'a> {
    Part { name, filename: None, content_type: None, bytes: value.as_bytes().to_vec() }
}

fn file<'a>(filename: &'a str, content_type: &'a str, bytes: Vec<u8>) -> Part<'a> {
    Part { name: "file", filename: Some(filename), content_type: Some(content_type), bytes }
}

const BOUNDARY: &str = "sandflow-test-boundary-7f3a";

async fn upload(app: &TestApp, token: &str, parts: Vec<Part<'_>>) -> common::Answer {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"", part.name).as_bytes(),
        );
        if let Some(filename) = part.filename {
            body.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let request = Request::post("/api/training-documents/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from(body))
        .expect("request");
    app.send(request).await
}

/// A buyer with a provisioned subscription: the market and the buyer's
/// agent config (its id, organisation and resource).
async fn buyer(app: &TestApp) -> (Market, Value) {
    let market = app.market(serde_json::json!({})).await;
    app.provisioned(&market).await;
    let configs = app.get("/api/customer-agent-configs/", &market.buyer).await.expect(200);
    (market, configs[0].clone())
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("no `{key}` in {value}")).to_owned()
}

fn scope(config: &Value) -> Scope {
    Scope::new(text(config, "organization_id"), text(config, "resource_id"))
}

async fn search(app: &TestApp, scope: &Scope, query: &str) -> Vec<String> {
    let index = app.state.documents.as_ref().expect("the test app has an index");
    let hits = index.search(scope, &SearchRequest::lexical("", query, 20)).await.expect("search");
    hits.into_iter().map(|h| h.text).collect()
}

async fn every_format_is_processed_into_the_buyers_scope(app: TestApp) {
    let (market, config) = buyer(&app).await;
    let config_id = text(&config, "id");
    let uploads = [
        file("refunds.md", "text/markdown", b"# Refunds\n\nRefunds are granted within 30 days.\n".to_vec()),
        file("shipping.txt", "text/plain; charset=utf-8", b"Shipping to Europe takes five days.".to_vec()),
        file(
            "warranty.html",
            "text/html",
            b"<html><head><script>var hidden = 'nope';</script></head><body><h1>Warranty</h1>\
              <p>The warranty lasts two years &amp; covers parts.</p></body></html>"
                .to_vec(),
        ),
        file("manual.pdf", "application/pdf", pdf(&["The pump needs a 12 V supply.", "Clean the filter monthly."])),
        file(
            "descaling.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx(&["Descale the machine every 200 cups.", "Use citric acid &amp; warm water."]),
        ),
        // A generic type is read by the file's extension.
        file("faq.md", "application/octet-stream", b"Opening hours: nine to five.".to_vec()),
    ];
    let mut ids = Vec::new();
    for part in uploads {
        let document = upload(&app, &market.buyer, vec![field("config_id", &config_id), part]).await.expect(201);
        assert_eq!(document["status"], "uploaded", "{document}");
        assert_eq!(document["chunk_count"], 0);
        assert_eq!(document["organization_id"], config["organization_id"]);
        assert_eq!(document["resource_id"], config["resource_id"]);
        assert!(document.get("content").is_none(), "the bytes are never shown");
        ids.push(text(&document, "id"));
    }
    let ran = app.run_jobs().await;
    assert_eq!(ran.len(), 6, "{ran:?}");
    for id in &ids {
        let document = app.get(&format!("/api/training-documents/{id}"), &market.buyer).await.expect(200);
        assert_eq!(document["status"], "ready", "{document}");
        assert!(document["chunk_count"].as_i64() >= Some(1), "{document}");
        assert!(document["error"].is_null() && document["processed_at_ms"].is_i64());
    }
    let scope = scope(&config);
    assert_eq!(search(&app, &scope, "refunds").await, ["# Refunds\n\nRefunds are granted within 30 days."]);
    assert_eq!(search(&app, &scope, "shipping").await, ["Shipping to Europe takes five days."]);
    let warranty = search(&app, &scope, "warranty").await;
    assert_eq!(warranty, ["Warranty\n\nThe warranty lasts two years & covers parts."]);
    assert!(search(&app, &scope, "hidden nope").await.is_empty(), "scripts are not text");
    let pump = search(&app, &scope, "pump").await;
    assert_eq!(pump.len(), 1);
    assert!(
        pump[0].contains("The pump needs a 12 V supply.") && pump[0].contains("Clean the filter monthly."),
        "{pump:?}"
    );
    assert_eq!(search(&app, &scope, "opening hours").await.len(), 1);
    // DOCX: the body's paragraphs, a blank line apart.
    assert_eq!(
        search(&app, &scope, "descale").await,
        ["Descale the machine every 200 cups.\n\nUse citric acid & warm water."]
    );
    // Chunks carry their source and offsets.
    let index = app.state.documents.as_ref().expect("index");
    let hits = index.search(&scope, &SearchRequest::lexical("", "shipping", 1)).await.expect("search");
    assert_eq!(hits[0].document, ids[1]);
    assert_eq!(hits[0].metadata["filename"], "shipping.txt");
    assert_eq!((hits[0].metadata["start"].as_i64(), hits[0].metadata["end"].as_i64()), (Some(0), Some(35)));
    // Listed newest first; filtered by config and status.
    let listed = app.get(&format!("/api/training-documents/?config_id={config_id}"), &market.buyer).await.expect(200);
    assert_eq!(listed.as_array().map(Vec::len), Some(6));
    let ready = app.get("/api/training-documents/?status=ready", &market.buyer).await.expect(200);
    assert_eq!(ready.as_array().map(Vec::len), Some(6));
    let failed = app.get("/api/training-documents/?status=failed", &market.buyer).await.expect(200);
    assert_eq!(failed.as_array().map(Vec::len), Some(0));
}

async fn reprocessing_replaces_and_deleting_removes(app: TestApp) {
    let (market, config) = buyer(&app).await;
    let config_id = text(&config, "id");
    let long: String = (0..12).map(|i| format!("Paragraph {i} about returns. {}\n\n", "word ".repeat(50))).collect();
    let document = upload(
        &app,
        &market.buyer,
        vec![
            field("config_id", &config_id),
            field("collection", "policies"),
            file("long.txt", "text/plain", long.into_bytes()),
        ],
    )
    .await
    .expect(201);
    assert_eq!(document["collection"], "policies");
    let id = text(&document, "id");
    app.run_jobs().await;
    let ready = app.get(&format!("/api/training-documents/{id}"), &market.buyer).await.expect(200);
    let chunks = ready["chunk_count"].as_i64().expect("count");
    assert!(chunks > 2, "{ready}");
    let scope = scope(&config);
    let index = app.state.documents.as_ref().expect("index");
    assert_eq!(index.count(&scope, Some(&id)).await.expect("count"), chunks);
    let queued = app.post(&format!("/api/training-documents/{id}/process"), &market.buyer, serde_json::json!({})).await;
    assert_eq!(queued.expect(202)["status"], "uploaded");
    app.run_jobs().await;
    // The same chunks again, not twice as many.
    assert_eq!(index.count(&scope, Some(&id)).await.expect("count"), chunks);
    let again = app.get(&format!("/api/training-documents/{id}"), &market.buyer).await.expect(200);
    assert_eq!((again["status"].as_str(), again["chunk_count"].as_i64()), (Some("ready"), Some(chunks)));
    // In the collection the upload named.
    let hits = index.search(&scope, &SearchRequest::lexical("policies", "returns", 1)).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert!(index.search(&scope, &SearchRequest::lexical("other", "returns", 1)).await.expect("search").is_empty());
    app.delete(&format!("/api/training-documents/{id}"), &market.buyer).await.expect(204);
    assert_eq!(index.count(&scope, None).await.expect("count"), 0);
    app.get(&format!("/api/training-documents/{id}"), &market.buyer).await.refused(404, "not_found");
    // Re-processing a deleted document is a 404; its queued job finds nothing to do.
    app.post(&format!("/api/training-documents/{id}/process"), &market.buyer, serde_json::json!({}))
        .await
        .refused(404, "not_found");
}

async fn bad_uploads_are_refused(app: TestApp) {
    let (market, config) = buyer(&app).await;
    let config_id = text(&config, "id");
    let big = vec![b'a'; common::MAX_DOCUMENT + 1];
    let detail = upload(&app, &market.buyer, vec![field("config_id", &config_id), file("big.txt", "text/plain", big)])
        .await
        .refused(413, "too_large");
    assert!(detail.contains("--max-document-bytes"), "{detail}");
    let detail =
        upload(&app, &market.buyer, vec![field("config_id", &config_id), file("x.png", "image/png", vec![0x89, b'P'])])
            .await
            .refused(415, "unsupported_media_type");
    assert!(detail.contains("PDF") && detail.contains("DOCX") && detail.contains("Markdown"), "{detail}");
    upload(
        &app,
        &market.buyer,
        vec![field("config_id", &config_id), file("x.zip", "application/octet-stream", vec![1])],
    )
    .await
    .refused(415, "unsupported_media_type");
    let json = app.post("/api/training-documents/", &market.buyer, serde_json::json!({"file": "x"})).await;
    json.refused(415, "unsupported_media_type");
    upload(&app, &market.buyer, vec![file("a.txt", "text/plain", b"hello".to_vec())]).await.refused(422, "invalid");
    upload(&app, &market.buyer, vec![field("config_id", &config_id)]).await.refused(422, "invalid");
    upload(&app, &market.buyer, vec![field("config_id", &config_id), file("e.txt", "text/plain", Vec::new())])
        .await
        .refused(422, "invalid");
    upload(&app, &market.buyer, vec![field("config_id", &config_id), file("l.txt", "text/plain", vec![0xff, 0xfe, 0])])
        .await
        .refused(422, "invalid");
    let unknown = vec![field("config_id", &config_id), field("owner", "x"), file("a.txt", "text/plain", b"a".to_vec())];
    upload(&app, &market.buyer, unknown).await.refused(422, "invalid");
    upload(&app, &market.buyer, vec![field("config_id", "no-such-config"), file("a.txt", "text/plain", b"a".to_vec())])
        .await
        .refused(404, "not_found");
    let twice =
        vec![field("config_id", &config_id), field("config_id", "other"), file("a.txt", "text/plain", b"a".to_vec())];
    upload(&app, &market.buyer, twice).await.refused(422, "invalid");
    assert_eq!(app.count("training_document").await, 0);
    assert_eq!(app.count("job WHERE kind = 'process_document'").await, 0);
}

async fn a_corrupt_pdf_fails_with_its_reason(app: TestApp) {
    let (market, config) = buyer(&app).await;
    let config_id = text(&config, "id");
    let mut corrupt = pdf(&["never seen"]);
    corrupt.truncate(corrupt.len() / 2);
    corrupt.extend_from_slice(b"\x00\xff garbage");
    let samples = [("corrupt.pdf", corrupt), ("fake.pdf", b"this is not a PDF at all".to_vec())];
    for (name, bytes) in samples {
        let document =
            upload(&app, &market.buyer, vec![field("config_id", &config_id), file(name, "application/pdf", bytes)])
                .await
                .expect(201);
        let id = text(&document, "id");
        let ran = app.run_jobs().await;
        assert_eq!(ran.len(), 1);
        // The job is done: the document failed, trying again would not help.
        assert_eq!(ran[0].outcome, sandflow_control_plane::jobs::Outcome::Done);
        let failed = app.get(&format!("/api/training-documents/{id}"), &market.buyer).await.expect(200);
        assert_eq!(failed["status"], "failed", "{failed}");
        let error = failed["error"].as_str().expect("an error");
        assert!(error.contains("PDF"), "{error}");
        assert_eq!(failed["chunk_count"], 0);
    }
    assert!(search(&app, &scope(&config), "never seen").await.is_empty());
    // The server is still up and processes the next document.
    let good = upload(
        &app,
        &market.buyer,
        vec![field("config_id", &config_id), file("ok.pdf", "application/pdf", pdf(&["Still working."]))],
    )
    .await
    .expect(201);
    app.run_jobs().await;
    let ready = app.get(&format!("/api/training-documents/{}", text(&good, "id")), &market.buyer).await.expect(200);
    assert_eq!(ready["status"], "ready", "{ready}");
}

async fn only_the_buyers_organisation_sees_its_documents(app: TestApp) {
    let (market, config) = buyer(&app).await;
    let config_id = text(&config, "id");
    let document = upload(
        &app,
        &market.buyer,
        vec![field("config_id", &config_id), file("secret.md", "text/markdown", b"Our margin is 42%.".to_vec())],
    )
    .await
    .expect(201);
    let id = text(&document, "id");
    let path = format!("/api/training-documents/{id}");
    // Another organisation's owner, and the seller who sold the agent.
    let stranger = app.signup("stranger@example.com").await;
    app.organization(&stranger, "Other Shop").await;
    for outsider in [&stranger, &market.seller] {
        app.get(&path, outsider).await.refused(404, "not_found");
        app.delete(&path, outsider).await.refused(404, "not_found");
        app.post(&format!("{path}/process"), outsider, serde_json::json!({})).await.refused(404, "not_found");
        let listed = app.get("/api/training-documents/", outsider).await.expect(200);
        assert_eq!(listed.as_array().map(Vec::len), Some(0));
        let part = file("x.md", "text/markdown", b"planted".to_vec());
        upload(&app, outsider, vec![field("config_id", &config_id), part]).await.refused(404, "not_found");
        // Refused before the file is read: an oversized one is not even
        // measured against the limit.
        let big = file("big.txt", "text/plain", vec![b'a'; common::MAX_DOCUMENT + 1]);
        upload(&app, outsider, vec![field("config_id", &config_id), big]).await.refused(404, "not_found");
    }
    // A plain member reads but does not change.
    let member = app.member(&market.buyer, &market.consumer, "clerk@example.com", "member").await;
    assert_eq!(app.get(&path, &member).await.expect(200)["id"], id.as_str());
    app.delete(&path, &member).await.refused(403, "forbidden");
    app.post(&format!("{path}/process"), &member, serde_json::json!({})).await.refused(403, "forbidden");
    let part = file("y.md", "text/markdown", b"planted".to_vec());
    upload(&app, &member, vec![field("config_id", &config_id), part]).await.refused(403, "forbidden");
    // Anonymous callers are not signed in.
    let anonymous = app.call(axum::http::Method::GET, &path, None, None).await;
    anonymous.refused(401, "unauthorized");
    assert_eq!(app.count("training_document").await, 1);
}
