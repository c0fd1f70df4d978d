//! Keyword Search (`DataFrameKeywordSearch`, the Langflow Assistant's
//! custom component): the rows of a DataFrame whose `column` contains the
//! keywords: `any` of them, `all` of them, or ranked by `coverage` (the
//! share of keywords found, in a `_score` column, best first), at most
//! `number_candidates` rows. Cells are compared as pandas'
//! `fillna("").astype(str)` shows them; without `case_sensitive` both
//! sides are lower-cased.
//!
//! Departure: rows with equal scores keep their order (pandas' default
//! sort is stable only up to 16 rows).

use crate::parser::{pandas_rows, text_field};
use crate::pyfmt::{Py, str_of};
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Table, Value, as_text, flag, number, output, port, value, values,
};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "dataframe-keyword-search";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Keyword Search".into(),
        description: "Search for keywords in a DataFrame column using any/all/coverage matching".into(),
        inputs: vec![
            port("dataframe", &["DataFrame"], false),
            port("column", &["Message"], false),
            port("keywords", &["Message"], false),
            port("match_type", &[], false),
            port("case_sensitive", &[], false),
            port("number_candidates", &[], false),
        ],
        outputs: vec![port("result", &["DataFrame"], false)],
    }
}

/// The search's settings.
#[derive(Debug, Clone)]
pub struct Search {
    /// Column searched.
    pub column: String,
    /// Keywords (empty ones are ignored).
    pub keywords: Vec<String>,
    /// `any`, `all` or `coverage`.
    pub match_type: String,
    /// Compare case.
    pub case_sensitive: bool,
    /// Rows kept (pandas' `head`: a negative count drops from the end).
    pub limit: i64,
}

/// The matching rows.
pub fn search(rows: &[Map<String, Json>], s: &Search) -> Result<Vec<Map<String, Json>>, String> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    if !columns.contains(&s.column.as_str()) {
        return Err(format!("Column '{}' not found. Available columns: {}", s.column, columns.join(", ")));
    }
    let fold = |t: &str| if s.case_sensitive { t.to_owned() } else { t.to_lowercase() };
    let keywords: Vec<String> = s.keywords.iter().filter(|k| !k.is_empty()).map(|k| fold(k.trim())).collect();
    let texts: Vec<String> = pandas_rows(rows)
        .iter()
        .map(|row| {
            let cell = row.iter().find(|(k, _)| *k == s.column).map(|(_, v)| v);
            let shown = match cell {
                None | Some(Py::Json(Json::Null)) => String::new(),
                Some(Py::Float(f)) if f.is_nan() => String::new(),
                Some(v) => str_of(v),
            };
            fold(&shown)
        })
        .collect();
    if keywords.is_empty() {
        // Langflow returns the whole frame here, without `head`.
        return Ok(rows.to_vec());
    }
    let picked: Vec<Map<String, Json>> = match s.match_type.as_str() {
        "any" => rows
            .iter()
            .zip(&texts)
            .filter(|(_, t)| keywords.iter().any(|k| t.contains(k.as_str())))
            .map(|(r, _)| r.clone())
            .collect(),
        "all" => rows
            .iter()
            .zip(&texts)
            .filter(|(_, t)| keywords.iter().all(|k| t.contains(k.as_str())))
            .map(|(r, _)| r.clone())
            .collect(),
        "coverage" => {
            let total = keywords.len() as f64;
            let mut scored: Vec<(f64, Map<String, Json>)> = rows
                .iter()
                .zip(&texts)
                .map(|(r, t)| (keywords.iter().filter(|k| t.contains(k.as_str())).count() as f64 / total, r.clone()))
                .filter(|(score, _)| *score > 0.0)
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored
                .into_iter()
                .map(|(score, mut r)| {
                    r.insert("_score".into(), serde_json::Number::from_f64(score).map_or(Json::Null, Json::Number));
                    r
                })
                .collect()
        }
        // Langflow's `result` is unbound for another match type.
        other => return Err(format!("cannot access local variable 'result' (match type `{other}`)")),
    };
    Ok(head(picked, s.limit))
}

fn head<T>(mut rows: Vec<T>, n: i64) -> Vec<T> {
    let keep = if n >= 0 { (n as usize).min(rows.len()) } else { rows.len().saturating_sub(n.unsigned_abs() as usize) };
    rows.truncate(keep);
    rows
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let rows: Vec<Map<String, Json>> = match value(inv, "dataframe") {
        Some(Value::Table(t)) => t.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect(),
        _ => Vec::new(),
    };
    let settings = Search {
        column: text_field(inv, "column", ""),
        keywords: values(inv, "keywords").filter_map(as_text).collect(),
        match_type: text_field(inv, "match_type", "any"),
        case_sensitive: flag(inv, "case_sensitive", false),
        limit: number(inv, "number_candidates").map_or(10, |n| n as i64),
    };
    let found = search(&rows, &settings).map_err(NodeError::Failed)?;
    let table = Table { rows: found.into_iter().map(|r| Json::Object(r).to_string()).collect() };
    Ok(vec![output("result", Value::Table(table))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Map<String, Json>> {
        json!([{"text": "Alpha beta"}, {"text": "beta gamma"}, {"text": null}, {"text": "alpha"}])
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.as_object().expect("row").clone())
            .collect()
    }

    fn settings(keywords: &[&str], match_type: &str) -> Search {
        Search {
            column: "text".into(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            match_type: match_type.into(),
            case_sensitive: false,
            limit: 10,
        }
    }

    #[test]
    fn any_all_and_coverage() {
        assert_eq!(search(&rows(), &settings(&["alpha"], "any")).unwrap().len(), 2);
        assert_eq!(search(&rows(), &settings(&["alpha", "beta"], "all")).unwrap().len(), 1);
        let ranked = search(&rows(), &settings(&["beta", "gamma"], "coverage")).unwrap();
        assert_eq!(ranked[0]["text"], "beta gamma");
        assert_eq!(ranked[0]["_score"], 1.0);
        assert_eq!(ranked[1]["_score"], 0.5);
        assert!(search(&rows(), &Search { column: "x".into(), ..settings(&[], "any") }).is_err());
    }
}
