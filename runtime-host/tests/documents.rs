//! PDF and DOCX through the File node, end to end: documents made by the
//! test are uploaded with Langflow's `POST /api/v1/files/upload/{flow}`
//! and read by the starter flows, checked on what reaches the test model
//! server and on the answers. Financial Report Parser hands a PDF report's
//! text to its agent (its answer needs the Agent's `structured_response`,
//! not built yet); Hybrid Search RAG splits an uploaded DOCX, ingests
//! the chunks into the run's document index and retrieves them for the
//! question. Hostile documents (a corrupt PDF, a PDF whose page stream
//! inflates to 256 MiB, a DOCX whose body does) end the run with an error
//! naming the file, while the host's memory stays far below what they
//! would expand to.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::api::DataPlane;
use sandflow_runtime_host::doc_index::{DocIndex, Scope, SearchRequest};
use sandflow_runtime_host::{CapabilityConfig, FileStore, FilesConfig, Limits, LlmConfig, Secrets};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::sync::Arc;

mod support;
use support::send;

const SECRET: &[u8] = b"documents-test-secret";

struct Plane {
    plane: Arc<DataPlane>,
    model: ModelServer,
    index: DocIndex,
    _dir: tempfile::TempDir,
}

/// A data plane with file storage (uploads up to 1 MiB), the model server
/// as provider `OpenAI`, a SQLite document index, and two agents of
/// tenant `acme`: `report` (Financial Report Parser) and `rag` (Hybrid
/// Search RAG).
async fn plane() -> Plane {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = FileStore::open(FilesConfig {
        root: dir.path().join("files"),
        max_file_bytes: 1 << 20,
        max_tenant_bytes: 1 << 30,
    })
    .expect("store opens");
    let model = ModelServer::start(Options::default()).await.expect("model server");
    let provider = format!("OpenAI=openai,{}/v1,gpt-test", model.url());
    let index_url = DocIndex::sqlite_url_in(dir.path());
    let index = DocIndex::open(&index_url).await.expect("index opens");
    let documents = {
        let url = index_url.clone();
        tokio::task::spawn_blocking(move || sandflow_runtime_host::open_documents_blocking(&url))
            .await
            .expect("joins")
            .expect("index opens for the runtime")
    };
    let capabilities = CapabilityConfig {
        files: Some(files),
        llm: LlmConfig { providers: vec![provider.parse().expect("provider")] },
        documents: Some(documents),
        ..CapabilityConfig::default()
    };
    let plane = support::data_plane(capabilities, SECRET);
    for (id, path) in [("report", "starter/financial-report-parser.json"), ("rag", "starter/hybrid-search-rag.json")] {
        support::provision(&plane, "acme", id, &support::shared_flow(path), Limits::default(), Secrets::default());
    }
    Plane { plane: Arc::new(plane), model, index, _dir: dir }
}

fn key() -> String {
    support::run_key("acme", SECRET)
}

/// Uploads `content` as `filename` for `agent`; returns its `file_path`.
async fn upload(plane: &Arc<DataPlane>, agent: &str, filename: &str, content: &[u8]) -> String {
    support::upload(plane, &key(), agent, filename, content).await
}

async fn run_flow(plane: &Arc<DataPlane>, agent: &str, input: &str, tweaks: Json) -> (StatusCode, Json) {
    let body = json!({"input_value": input, "output_type": "any", "tweaks": tweaks, "session_id": "s1"});
    let request = Request::post(format!("/api/v1/run/{agent}"))
        .header("content-type", "application/json")
        .header("x-api-key", key())
        .body(Body::from(body.to_string()))
        .expect("request");
    send(plane, request).await
}

fn answer(body: &Json) -> String {
    body["outputs"][0]["outputs"][0]["results"]["message"]["text"].as_str().unwrap_or_default().to_owned()
}

fn chat_requests(model: &ModelServer) -> Vec<Json> {
    model.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

fn last_user_message(request: &Json) -> String {
    let messages = request["messages"].as_array().expect("messages");
    messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("").to_owned()
}

// ------------------------------------------------------------- documents

/// A PDF of one page per entry of `pages`, each a list of lines in
/// Helvetica, its content streams deflated.
fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut operations = vec![Operation::new("BT", vec![]), Operation::new("Tf", vec!["F1".into(), 12.into()])];
        operations.push(Operation::new("Td", vec![72.into(), 720.into()]));
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                operations.push(Operation::new("Td", vec![0.into(), (-16).into()]));
            }
            operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        }
        operations.push(Operation::new("ET", vec![]));
        let mut stream = Stream::new(dictionary! {}, Content { operations }.encode().expect("content"));
        stream.compress().expect("deflate");
        let content_id = doc.add_object(stream);
        kids.push(
            doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id }).into(),
        );
    }
    let count = i64::try_from(kids.len()).expect("pages");
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("saves");
    out
}

/// `expanded` bytes of spaces, deflated as a zlib stream, without ever
/// holding them in memory.
fn deflated_spaces(expanded: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    for _ in 0..expanded / block.len() {
        encoder.write_all(&block).expect("deflates");
    }
    encoder.finish().expect("deflated")
}

/// A one-page PDF whose content stream inflates to 256 MiB of spaces.
fn pdf_bomb() -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let stream = Stream::new(dictionary! { "Filter" => "FlateDecode" }, deflated_spaces(256 << 20));
    let content_id = doc.add_object(stream);
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("saves");
    out
}

/// A DOCX package whose body holds `paragraphs`.
fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String = paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>")).collect();
    package(&[("word/document.xml", document_xml(&body).as_bytes())])
}

fn document_xml(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document \
         xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    )
}

fn package(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", options).expect("entry");
    zip.write_all(b"<Types/>").expect("write");
    for (name, content) in parts {
        zip.start_file(*name, options).expect("entry");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("zip");
    out
}

/// A DOCX whose `word/document.xml` inflates to 256 MiB: one paragraph
/// followed by spaces, streamed into the archive.
fn docx_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(true);
    zip.start_file("word/document.xml", options).expect("entry");
    zip.write_all(document_xml("<w:p><w:r><w:t>bomb</w:t></w:r></w:p>").as_bytes()).expect("write");
    let block = vec![b' '; 1 << 20];
    for _ in 0..256 {
        zip.write_all(&block).expect("write");
    }
    zip.finish().expect("zip");
    out
}

/// The process's peak resident memory, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("kB") * 1024
}

// ------------------------------------------------------------- scenarios

const REPORT_PAGE_1: &[&str] = &[
    "Northwind Traders Annual Report 2025",
    "Company: Northwind Traders",
    "Revenue: USD 12.4 million",
    "Gross Profit: USD 5.1 million",
];
const REPORT_PAGE_2: &[&str] =
    &["EBITDA: USD 2.9 million", "EBIT: USD 2.2 million", "Net Income: USD 1.7 million", "Net Margin: 13.7%"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn financial_report_parser_reads_an_uploaded_pdf() {
    let p = plane().await;
    let file_path = upload(&p.plane, "report", "northwind-2025.pdf", &pdf(&[REPORT_PAGE_1, REPORT_PAGE_2])).await;
    assert!(file_path.ends_with("_northwind-2025.pdf"), "{file_path}");
    let (status, body) = run_flow(&p.plane, "report", "", json!({"File-NGW2N": {"path": file_path}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The agent got the PDF's text, page after page, as its input.
    let sent = chat_requests(&p.model);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let text = last_user_message(&sent[0]);
    for line in REPORT_PAGE_1.iter().chain(REPORT_PAGE_2) {
        assert!(text.contains(line), "{line:?} missing from what reached the model: {text:?}");
    }
    let (first, second) = (text.find("Gross Profit").expect("page 1"), text.find("EBITDA").expect("page 2"));
    assert!(first < second && text[first..second].contains("\n\n"), "pages joined by a blank line: {text:?}");
    // The Agent's `structured_response`, with no tools: one model call, the
    // system prompt and the report, the output schema's seven fields
    // enforced in Langflow's `objects` envelope.
    let messages = sent[0]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "no history on the structured path: {messages:?}");
    assert!(messages[0]["content"].as_str().unwrap_or("").contains("financial report parser"));
    let schema = &sent[0]["response_format"]["json_schema"]["schema"];
    let record = &schema["properties"]["objects"]["items"];
    let mut fields: Vec<&str> =
        record["required"].as_array().expect("required").iter().filter_map(|f| f.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["COMPANY", "EBIT", "EBITDA", "GROSS_PROFIT", "NET_INCOME", "NET_MARGIN", "REVENUE"]);
    // The model picked each metric out of the report; the Parser's template
    // makes the table the flow answers.
    assert_eq!(
        body["outputs"][0]["outputs"][0]["results"]["message"]["text"],
        "## 📊 Northwind Traders\n\n| Metric | Value |\n|--------|-------|\n\
         | Revenue | USD 12.4 million |\n| Gross Profit | USD 5.1 million |\n| EBITDA | USD 2.9 million |\n\
         | Operating Income (EBIT) | USD 2.2 million |\n| Net Income | USD 1.7 million |\n| Net Margin | 13.7% |",
        "{body}"
    );
}

const MANUAL: &[&str] = &[
    "Aurora X2 espresso machine: descale every 200 cups with citric acid.",
    "The Aurora X2 steam wand needs a purge after each use.",
    "Returns of the Aurora X2 are accepted within 30 days.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_search_rag_ingests_an_uploaded_docx_and_retrieves_it() {
    let p = plane().await;
    let file_path = upload(&p.plane, "rag", "inventory.docx", &docx(MANUAL)).await;
    let question = "How often do I descale the Aurora X2?";
    let (status, body) = run_flow(&p.plane, "rag", question, json!({"File-hsri": {"path": file_path}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The document's paragraphs were split and ingested into acme's scope
    // of this agent, and nobody else's.
    let scope = Scope::new("acme", "rag");
    let hits = p.index.search(&scope, &SearchRequest::lexical("", "descale", 10)).await.expect("search");
    assert!(hits.iter().any(|h| h.text.contains("descale every 200 cups")), "{hits:?}");
    let foreign = p.index.search(&Scope::new("globex", "rag"), &SearchRequest::lexical("", "descale", 10)).await;
    assert!(foreign.expect("search").is_empty());

    // The agent turned the question into lexical terms (the test model
    // echoes it), and the hybrid search's chunks are the answer.
    let sent = chat_requests(&p.model);
    assert!(sent.iter().any(|r| last_user_message(r) == question), "{sent:?}");
    let answer = answer(&body);
    assert!(answer.contains("descale every 200 cups with citric acid"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_end_with_a_clear_error() {
    let p = plane().await;
    let mut corrupt = pdf(&[REPORT_PAGE_1]);
    corrupt.truncate(corrupt.len() / 3);
    corrupt.extend_from_slice(b"\xff\xfe garbage endobj");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("corrupt.pdf", corrupt, "the PDF could not be read"),
        ("not-really.pdf", b"%PDF-1.7\nthis is no PDF at all".to_vec(), "the PDF could not be read"),
        ("bomb.pdf", pdf_bomb(), "decompression bomb"),
        ("bomb.docx", docx_bomb(), "decompression bomb"),
        ("renamed.docx", b"plain text, not a package".to_vec(), "not a DOCX document"),
    ];
    for (name, content, why) in cases {
        assert!(content.len() < 1 << 20, "{name} fits the upload cap: {} bytes", content.len());
        let file_path = upload(&p.plane, "report", name, &content).await;
        let (status, body) = run_flow(&p.plane, "report", "", json!({"File-NGW2N": {"path": file_path}})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("cannot read '{file_path}'")) && detail.contains(why), "{name}: {detail}");
    }
    assert!(chat_requests(&p.model).is_empty(), "nothing reached the model");
    // Neither bomb was inflated: the process never held 256 MiB.
    let peak = peak_rss();
    assert!(peak < 200 << 20, "peak resident memory {} MiB", peak >> 20);
    // The host goes on serving.
    let file_path = upload(&p.plane, "report", "ok.pdf", &pdf(&[REPORT_PAGE_2])).await;
    let (status, body) = run_flow(&p.plane, "report", "", json!({"File-NGW2N": {"path": file_path}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
