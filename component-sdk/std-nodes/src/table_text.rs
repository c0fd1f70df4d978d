//! A DataFrame as Langflow turns it into text: `DataFrame.to_message`
//! (pandas `to_markdown(index=False)`, i.e. tabulate's `pipe` format after
//! Langflow's cell clean-up), with cells that are not strings shown as
//! Python shows them (`str(value)`: `True`, `None`, `{'a': 1}`).
//!
//! Departures: numbers inside strings are left as text (tabulate would
//! re-align and re-format `"1.50"` as the number `1.5`), and floats are
//! printed as Rust prints them rather than with Python's `g` format.

use serde_json::Value as Json;

/// The Markdown table `DataFrame.to_message` produces for `rows` (JSON
/// objects; columns in order of first appearance), or `""` for none.
pub fn dataframe_markdown(rows: &[serde_json::Map<String, Json>]) -> String {
    markdown_table(rows, true, &to_message_cell)
}

/// The Markdown table of `rows` (pandas `to_markdown(index=False)`), with
/// `clean` applied to string cells; `drop_empty_rows` drops rows with no
/// value at all (`dropna(how="all")`).
pub fn markdown_table(
    rows: &[serde_json::Map<String, Json>],
    drop_empty_rows: bool,
    clean: &dyn Fn(&str) -> String,
) -> String {
    let rows: Vec<&serde_json::Map<String, Json>> =
        rows.iter().filter(|r| !drop_empty_rows || r.values().any(|v| !v.is_null())).collect();
    let mut columns: Vec<&str> = Vec::new();
    for row in &rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    if columns.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell_text(row.get(*c).unwrap_or(&Json::Null), clean)).collect())
        .collect();
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            let mut values = rows.iter().map(|r| r.get(columns[i]).unwrap_or(&Json::Null)).filter(|v| !v.is_null());
            let mut any = false;
            let all = values.all(|v| {
                any = true;
                v.is_number()
            });
            any && all
        })
        .collect();
    // pandas makes a number column with a gap, or with a float, a float
    // column (`nan` in the gaps); tabulate shows floats with format `g` and
    // lines number columns up on the decimal point.
    let mut cells = cells;
    for i in (0..columns.len()).filter(|&i| numeric[i]) {
        let values: Vec<&Json> = rows.iter().map(|r| r.get(columns[i]).unwrap_or(&Json::Null)).collect();
        if values.iter().any(|v| v.is_null() || v.is_f64()) {
            for (row, v) in cells.iter_mut().zip(&values) {
                let f = v.as_f64().unwrap_or(f64::NAN);
                row[i] = crate::pyfmt::format_value(&crate::pyfmt::Py::Float(f), "g").unwrap_or_default();
            }
        }
        let decimals: Vec<i64> = cells.iter().map(|r| after_point(&r[i])).collect();
        let most = decimals.iter().copied().max().unwrap_or(-1);
        for (row, d) in cells.iter_mut().zip(decimals) {
            row[i].push_str(&" ".repeat((most - d) as usize));
        }
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            let cell = cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
            cell.max(columns[i].chars().count() + 2)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| if numeric[i] { pad_left(v, widths[i]) } else { pad_right(v, widths[i]) })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![line(columns.clone())];
    let rule: Vec<String> = (0..columns.len())
        .map(|i| {
            if numeric[i] {
                format!("{}:", "-".repeat(widths[i] + 1))
            } else {
                format!(":{}", "-".repeat(widths[i] + 1))
            }
        })
        .collect();
    out.push(format!("|{}|", rule.join("|")));
    out.extend(cells.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// One cell: strings through `clean`, anything else as Python's `str`.
fn cell_text(value: &Json, clean: &dyn Fn(&str) -> String) -> String {
    match value {
        Json::Null => String::new(),
        // tabulate strips the text of every string cell.
        Json::String(s) => clean(s).trim_matches(crate::pyfmt::is_py_space).to_owned(),
        other => python_str(other),
    }
}

/// A string cell cleaned as `DataFrame.to_message` does: blank cells
/// emptied, runs of newlines collapsed, pipes escaped, newlines as `<br/>`.
fn to_message_cell(s: &str) -> String {
    if s.trim().is_empty() {
        return String::new();
    }
    let mut collapsed = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\n' && collapsed.ends_with('\n') {
            continue;
        }
        collapsed.push(c);
    }
    collapsed.replace('|', "\\|").replace('\n', "<br/>")
}

/// tabulate's `_afterpoint`: digits after the decimal point (or after the
/// exponent mark), -1 for an integer or no point.
fn after_point(text: &str) -> i64 {
    if text.parse::<i64>().is_ok() {
        return -1;
    }
    let at = text.rfind('.').or_else(|| text.to_ascii_lowercase().rfind('e'));
    match at {
        Some(pos) => (text.len() - pos - 1) as i64,
        None => -1,
    }
}

fn pad_right(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

fn pad_left(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{}{text}", " ".repeat(width.saturating_sub(n)))
}

/// Python's `str(value)` for a JSON value (`repr` inside containers).
pub fn python_str(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr(value)` for a JSON value decoded with `json.loads`.
pub fn python_repr(value: &Json) -> String {
    match value {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => string_repr(s),
        Json::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Json::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", string_repr(k), python_repr(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Python's `repr` of a string: single quotes unless the text holds a
/// single quote and no double quote.
fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(value: Json) -> Vec<serde_json::Map<String, Json>> {
        value.as_array().expect("rows").iter().map(|r| r.as_object().expect("row").clone()).collect()
    }

    #[test]
    fn tables_are_tabulate_pipe_tables() {
        let table = rows(json!([
            {"a": "x", "n": 1, "b": true, "l": [1], "z": null},
            {"a": "longer text", "n": 22, "b": false, "l": [], "z": null},
        ]));
        assert_eq!(
            dataframe_markdown(&table),
            "| a           |   n | b     | l   | z   |\n\
             |:------------|----:|:------|:----|:----|\n\
             | x           |   1 | True  | [1] |     |\n\
             | longer text |  22 | False | []  |     |"
        );
    }

    #[test]
    fn no_rows_is_no_text() {
        assert_eq!(dataframe_markdown(&[]), "");
    }

    #[test]
    fn python_repr_quotes_like_python() {
        assert_eq!(
            python_repr(&json!({"a": [null, true, "it's"], "b": "x\ny"})),
            r#"{'a': [None, True, "it's"], 'b': 'x\ny'}"#
        );
    }
}
