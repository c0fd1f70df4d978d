//! The OpenAPI document against the router: every documented operation is
//! routed, every route is documented, and the document has the shape of
//! OpenAPI 3.1 (every operation with its security, parameters, bodies and
//! error responses, every `$ref` resolvable). The docs page loads nothing
//! from elsewhere.
#![expect(
    clippy::unwrap_used,
    reason = "scenarios are tests run through a helper, not #[test] fns, so clippy's test allowance misses them"
)]

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

on_both_stores!(documented_operations_are_routed_and_only_they);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    serde_json::to_value(sandflow_control_plane::http::openapi()).unwrap()
}

/// (path, method, operation) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{path}: unexpected key `{method}` in a path item");
            all.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    all
}

/// The path with a placeholder for each parameter.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(if rest[start..].starts_with("{version}") { "1" } else { "placeholder" });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn is_fallback(answer: &common::Answer) -> bool {
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    (answer.status == 404 && detail.starts_with("no route")) || answer.status == 405
}

async fn documented_operations_are_routed_and_only_they(app: TestApp) {
    let served = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "application/json");
    let doc = served.body;
    assert_eq!(doc, document(), "the served document is the generated one");
    let operations = operations(&doc);
    assert!(operations.len() >= 70, "only {} operations", operations.len());
    for (path, method, _) in &operations {
        let url = concrete(path);
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        // The documented method reaches a handler, with or without the
        // trailing slash…
        for url in [url.clone(), format!("{url}/")] {
            let answer = app.call(verb.clone(), &url, None, None).await;
            assert!(!is_fallback(&answer), "{method} {url} is documented but not routed: {}", answer.body);
        }
        // …and no undocumented method does.
        let item = &doc["paths"][path];
        for other in METHODS.iter().filter(|m| item.get(**m).is_none()) {
            let verb = Method::from_bytes(other.to_uppercase().as_bytes()).unwrap();
            let answer = app.call(verb, &url, None, None).await;
            assert_eq!(answer.status, 405, "{other} {url} is routed but not documented: {}", answer.body);
            assert_eq!(answer.body["code"], "method_not_allowed");
        }
    }
    // A path nobody documented is the fallback.
    let answer = app.call(Method::GET, "/api/undocumented", None, None).await;
    assert!(is_fallback(&answer));
}

/// Routes are only ever added through `routes!` (from the handlers'
/// `#[utoipa::path]`), which puts them in the document: axum cannot list a
/// router's routes, so this is what keeps an undocumented route out.
#[test]
fn routes_are_added_only_through_their_annotations() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut files = vec![format!("{src}/lib.rs")];
    for entry in std::fs::read_dir(format!("{src}/http")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.display().to_string());
        }
    }
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [".route(", ".route_service(", ".nest(", ".nest_service(", "axum::routing"] {
            assert!(
                !text.contains(forbidden),
                "{file} uses `{forbidden}`: register routes with `.routes(routes!(handler))` and \
                 `#[utoipa::path]`, so that they are in the OpenAPI document"
            );
        }
    }
}

#[test]
fn the_document_is_openapi_3_1_and_complete() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert!(!doc["info"]["title"].as_str().unwrap().is_empty());
    assert!(!doc["info"]["version"].as_str().unwrap().is_empty());
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes.keys().map(String::as_str).collect::<Vec<_>>(), ["bearer", "runtime_token", "session_cookie"]);
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["type"], "apiKey");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "sandflow_session");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["detail", "code"]), "{error}");

    let tags: BTreeSet<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let label = format!("{method} {path}");
        assert!(path.starts_with("/api/") || path == "/healthz", "{label}");
        assert!(!op["summary"].as_str().unwrap_or_default().is_empty(), "{label} has no summary");
        assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{label}: operationId repeats");
        let op_tags = op["tags"].as_array().unwrap();
        assert_eq!(op_tags.len(), 1, "{label}");
        assert!(tags.contains(op_tags[0].as_str().unwrap()), "{label}: tag not in the document's tags");

        // Security: anonymous, signed in, optional, or the runtime token.
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{label} has no security"));
        assert!(!security.is_empty(), "{label}");
        for requirement in security {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "{label}: unknown security scheme {scheme}");
            }
        }
        let anonymous = security.iter().any(|r| r.as_object().unwrap().is_empty());

        // Path parameters: exactly those in the template, required.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let in_template: BTreeSet<String> =
            path.split('{').skip(1).map(|s| s.split('}').next().unwrap().to_owned()).collect();
        let declared: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{label}");
                p["name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(in_template, declared, "{label}: path parameters");
        for param in &params {
            assert!(param["schema"].is_object(), "{label}: parameter without a schema");
        }

        // Responses: a success with its body, and the errors in our shape.
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('2')), "{label} has no success response");
        assert!(responses.contains_key("500"), "{label}");
        if !anonymous {
            assert!(responses.contains_key("401"), "{label} needs credentials but documents no 401");
        }
        if !in_template.is_empty() {
            assert!(responses.contains_key("404"), "{label}");
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{label} takes a body but documents no {status}");
            }
            // JSON everywhere but uploads (training documents), which are multipart forms.
            let content = &op["requestBody"]["content"];
            assert!(
                content["application/json"]["schema"].is_object()
                    || content["multipart/form-data"]["schema"].is_object(),
                "{label}: a body that is neither JSON nor a multipart form"
            );
        }
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(!response["description"].as_str().unwrap_or_default().is_empty(), "{label} {status}");
            if !status.starts_with('2') {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{label} {status}: not an ErrorBody");
            }
        }
    }
    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100);
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {reference}"));
        assert!(doc.pointer(pointer).is_some(), "{reference} does not resolve");
    }
}

/// An independent reader of OpenAPI 3.1 takes the document, and resolves
/// every operation's parameters, bodies, responses and their schemas.
#[test]
fn an_openapi_3_1_reader_takes_the_document() {
    let text = serde_json::to_string(&document()).unwrap();
    let spec = oas3::from_json(&text).unwrap();
    let version = spec.validate_version().unwrap();
    assert_eq!((version.major, version.minor), (3, 1));
    let doc = document();
    assert_eq!(spec.operations().count(), operations(&doc).len());
    for (path, method, operation) in spec.operations() {
        let label = format!("{method} {path}");
        operation.parameters(&spec).unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut media = Vec::new();
        if let Some(body) = operation.request_body(&spec).unwrap_or_else(|e| panic!("{label}: {e}")) {
            media.extend(body.content.into_iter().map(|(_, m)| m));
        }
        let responses = operation.responses(&spec);
        let documented = doc["paths"][&path][method.as_str().to_lowercase()]["responses"].as_object().unwrap().len();
        assert_eq!(responses.len(), documented, "{label}: a response did not resolve");
        media.extend(responses.into_iter().flat_map(|(_, r)| r.content.into_iter().map(|(_, m)| m)));
        for media in media {
            media.schema(&spec).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
    }
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).unwrap(),
        None => value,
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_docs_page_is_self_contained() {
    common::run(common::Backend::Sqlite, |app: TestApp| async move {
        let page = app.call(Method::GET, "/api/docs", None, None).await;
        assert_eq!(page.status, 200);
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let policy = page.headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
        let html = String::from_utf8(page.bytes).unwrap();
        assert!(html.contains("/api/openapi.json"));
        for outside in ["http://", "https://", "src=", "<link", "@import"] {
            assert!(!html.contains(outside), "the docs page refers to something outside it: `{outside}`");
        }
    })
    .await;
}
