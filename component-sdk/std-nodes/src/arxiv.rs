//! arXiv (`ArXivComponent`): searches arXiv's Atom API
//! (`http://export.arxiv.org/api/query`) as Langflow 1.13 does, through the
//! host's `http` capability (the operator allows `export.arxiv.org`). One
//! row per paper: `id`, `title`, `summary`, `published`, `updated`,
//! `authors`, `arxiv_url`, `pdf_url`, `comment`, `journal_ref`,
//! `primary_category`, `categories` (missing texts are `null`). A request
//! that fails answers one row `{"error": "Request error: …"}`.

use crate::markup::{self, Element};
use crate::web;
use sandflow_sdk::{Descriptor, Invocation, NodeError, Output, Table, Value, number, output, port, text_or};
use serde_json::{Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "arxiv";

const ATOM: &str = "http://www.w3.org/2005/Atom";
const ARXIV: &str = "http://arxiv.org/schemas/atom";
const TIMEOUT_SECONDS: f64 = 10.0;

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "arXiv".into(),
        description: "Search and retrieve papers from arXiv.org.".into(),
        inputs: vec![
            port("search_query", &["Message"], false),
            port("search_type", &[], false),
            port("max_results", &[], false),
        ],
        outputs: vec![port("dataframe", &["Table"], false)],
    }
}

/// Langflow's `build_query_url`.
pub fn query_url(search_query: &str, search_type: &str, max_results: i64) -> String {
    let query = match search_type {
        "all" => search_query.to_owned(),
        other => {
            let prefix = match other {
                "title" => "ti",
                "abstract" => "abs",
                "author" => "au",
                "cat" => "cat",
                _ => "",
            };
            format!("{prefix}:{search_query}")
        }
    };
    format!(
        "http://export.arxiv.org/api/query?search_query={}&max_results={}",
        web::quote(&query),
        web::quote(&max_results.to_string())
    )
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let url = query_url(
        &text_or(inv, "search_query", ""),
        &text_or(inv, "search_type", "all"),
        number(inv, "max_results").map_or(10, |n| n as i64),
    );
    let rows = match web::get(&url, &[], Some(TIMEOUT_SECONDS)) {
        Ok(response) if (200..300).contains(&response.status) => {
            parse(&String::from_utf8_lossy(&response.body)).map_err(NodeError::Failed)?
        }
        Ok(response) => vec![json!({"error": format!("Request error: HTTP Error {}", response.status)})],
        Err(error) => vec![json!({"error": format!("Request error: {}", web::describe(&error))})],
    };
    Ok(vec![output("dataframe", Value::Table(Table { rows: rows.iter().map(ToString::to_string).collect() }))])
}

/// Langflow's `parse_atom_response`: one object per `entry`.
pub fn parse(feed: &str) -> Result<Vec<Json>, String> {
    let root = markup::xml(feed).ok_or_else(|| "the arXiv answer is not an Atom feed".to_owned())?;
    let text = |entry: &Element, name: &str, ns: &str| -> Json {
        entry
            .child(name, Some(ns))
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty())
            .map_or(Json::Null, |t| Json::String(t.to_owned()))
    };
    let link = |entry: &Element, rel: &str| -> Json {
        entry
            .children_named("link", Some(ATOM))
            .find(|l| l.attr("rel") == Some(rel))
            .and_then(|l| l.attr("href"))
            .map_or(Json::Null, |h| Json::String(h.to_owned()))
    };
    Ok(root
        .children_named("entry", Some(ATOM))
        .map(|entry| {
            let authors: Vec<Json> = entry
                .children_named("author", Some(ATOM))
                .map(|a| a.child("name", Some(ATOM)).map_or(Json::Null, |n| Json::String(n.text.clone())))
                .collect();
            let categories: Vec<Json> = entry
                .children_named("category", Some(ATOM))
                .map(|c| c.attr("term").map_or(Json::Null, |t| Json::String(t.to_owned())))
                .collect();
            json!({
                "id": text(entry, "id", ATOM),
                "title": text(entry, "title", ATOM),
                "summary": text(entry, "summary", ATOM),
                "published": text(entry, "published", ATOM),
                "updated": text(entry, "updated", ATOM),
                "authors": authors,
                "arxiv_url": link(entry, "alternate"),
                "pdf_url": link(entry, "related"),
                "comment": text(entry, "comment", ARXIV),
                "journal_ref": text(entry, "journal_ref", ARXIV),
                "primary_category": entry
                    .child("primary_category", Some(ARXIV))
                    .and_then(|c| c.attr("term"))
                    .map_or(Json::Null, |t| Json::String(t.to_owned())),
                "categories": categories,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_langflows_query_url() {
        assert_eq!(
            query_url("quantum computing", "all", 3),
            "http://export.arxiv.org/api/query?search_query=quantum%20computing&max_results=3"
        );
        assert_eq!(
            query_url("Hinton", "author", 10),
            "http://export.arxiv.org/api/query?search_query=au%3AHinton&max_results=10"
        );
    }

    #[test]
    fn parses_atom_entries() {
        let feed = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query</title>
  <entry>
    <id>http://arxiv.org/abs/2401.00001v1</id>
    <updated>2024-01-01T00:00:00Z</updated>
    <published>2024-01-01T00:00:00Z</published>
    <title>Sandboxed
  Agents</title>
    <summary>  We study sandboxes.
</summary>
    <author><name>Ada Lovelace</name></author>
    <author><name>Alan Turing</name></author>
    <arxiv:comment>12 pages</arxiv:comment>
    <link href="http://arxiv.org/abs/2401.00001v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2401.00001v1" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.CR" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CR" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>"#;
        let papers = parse(feed).expect("parses");
        assert_eq!(papers.len(), 1);
        let p = &papers[0];
        assert_eq!(p["title"], "Sandboxed\n  Agents");
        assert_eq!(p["summary"], "We study sandboxes.");
        assert_eq!(p["authors"], json!(["Ada Lovelace", "Alan Turing"]));
        assert_eq!(p["pdf_url"], "http://arxiv.org/pdf/2401.00001v1");
        assert_eq!(p["comment"], "12 pages");
        assert_eq!(p["journal_ref"], Json::Null);
        assert_eq!(p["primary_category"], "cs.CR");
        assert_eq!(p["categories"], json!(["cs.CR", "cs.LG"]));
    }
}
