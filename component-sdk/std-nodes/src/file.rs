//! Read File (`File`): the files named in `path` (or fed into `file_path`,
//! or given as `file_path_str` by a tool call), read through the `files`
//! capability from the tenant's storage, as Langflow 1.13's File component
//! reads text formats (`parse_text_file_to_data`): `txt`, `md`, `mdx`,
//! `csv`, `json`, `yaml`, `yml`, `xml`, `html`, `htm`, `py`, `js`, `ts`,
//! `tsx`, `sh`, `sql`; and PDF and DOCX, whose text the host extracts
//! (`files.read-text`, bounded there): PDF pages and DOCX body paragraphs
//! joined by a blank line, as Langflow joins pypdf's pages and
//! python-docx's paragraphs, in a record of `file_path` and `text` only
//! (no `encoding`, as Langflow's).
//!
//! Outputs: `message` (Raw Content: every file's text joined by
//! `separator`), `dataframe` (one file: a CSV's rows, otherwise the file's
//! record; several files: one record per file), `json` (the first file's
//! text as a JSON object, else `{"value": text}`) and `path` (the names
//! read). Names are storage names (`<flow_id>/<file>` for uploads), never
//! host paths.
//!
//! Departures: the Docling formats and archives are refused with an error
//! that says so (Langflow reads them with Docling, which does not run in
//! the sandbox); so are `advanced_mode` and its two outputs. PDF text is
//! lopdf's, which lays out words and lines like pypdf's but not always
//! with the same spaces; `.PDF` and `.DOCX` are read as documents too
//! (Langflow's test of the extension is case-sensitive). Encodings are UTF-8 (a BOM is
//! dropped) with a Latin-1 fallback instead of chardet's guess; JSON is
//! re-serialised compactly like orjson but without NFKD normalisation;
//! YAML and XML are kept as their text (Langflow re-serialises them).

use sandflow_sdk::host::files;
use sandflow_sdk::{
    CapabilityError, Data, Descriptor, Invocation, NodeError, Output, Table, Value, as_text, capability_message, flag,
    message, output, port, text_or, values,
};
use serde_json::{Map, Value as Json};

/// Type name in the library.
pub const NAME: &str = "file";

/// Extensions read as text (Langflow's `TEXT_FILE_TYPES` without `pdf`
/// and `docx`, which are [`DOCUMENT_TYPES`]).
pub const TEXT_TYPES: &[&str] =
    &["csv", "json", "txt", "md", "mdx", "yaml", "yml", "xml", "html", "htm", "py", "sh", "sql", "js", "ts", "tsx"];

/// Extensions whose text the host extracts (`files.read-text`).
pub const DOCUMENT_TYPES: &[&str] = &["pdf", "docx"];

/// Langflow's `TEXT_FILE_TYPES`, which the Directory node validates against.
pub const LANGFLOW_TEXT_TYPES: &[&str] = &[
    "csv", "json", "pdf", "txt", "md", "mdx", "yaml", "yml", "xml", "html", "htm", "docx", "py", "sh", "sql", "js",
    "ts", "tsx",
];

/// Extensions Langflow reads only with Docling (its advanced parser).
const DOCLING_ONLY: &[&str] = &[
    "adoc", "asciidoc", "asc", "bmp", "dotx", "dotm", "docm", "jpg", "jpeg", "png", "potx", "ppsx", "pptm", "potm",
    "ppsm", "pptx", "tiff", "xls", "xlsx", "xhtml", "webp",
];

/// Archives Langflow unpacks.
const ARCHIVES: &[&str] = &["zip", "tar", "tgz", "bz2", "gz"];

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "Read File".into(),
        description: "Loads and returns the content from uploaded files.".into(),
        inputs: vec![
            port("path", &[], false),
            port("file_path", &["Data", "JSON", "Message"], false),
            port("file_path_str", &[], false),
            port("separator", &[], false),
            port("silent_errors", &[], false),
            port("ignore_unsupported_extensions", &[], false),
            port("ignore_unspecified_files", &[], false),
            port("advanced_mode", &[], false),
        ],
        outputs: vec![
            port("message", &["Message"], false),
            port("dataframe", &["DataFrame"], false),
            port("json", &["Data"], false),
            port("path", &["Message"], false),
            port("advanced_dataframe", &["DataFrame"], false),
            port("advanced_markdown", &["Message"], false),
        ],
    }
}

/// One file read: its record (`file_path`, `text`, `encoding`).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Storage name.
    pub name: String,
    /// The text, after Langflow's structured-text step.
    pub text: String,
    /// The encoding the bytes were read with (none for PDF and DOCX).
    pub encoding: Option<&'static str>,
    /// The raw text, before that step (for CSV rows).
    pub raw: String,
}

impl Loaded {
    /// Langflow's `Data` of a parsed file.
    pub fn record(&self) -> Map<String, Json> {
        let mut record = Map::new();
        record.insert("file_path".into(), Json::String(self.name.clone()));
        record.insert("text".into(), Json::String(self.text.clone()));
        if let Some(encoding) = self.encoding {
            record.insert("encoding".into(), Json::String(encoding.into()));
        }
        record
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let wants = |name: &str| inv.wanted.is_empty() || inv.wanted.iter().any(|w| w == name);
    if flag(inv, "advanced_mode", false) || wants_only_advanced(inv) {
        return Err(NodeError::InvalidInput(
            "the Advanced Parser (Docling) does not run in Sandflow's sandbox: switch off Advanced Parser and use \
             the Raw Content output"
                .into(),
        ));
    }
    let names = requested(inv)?;
    let silent = flag(inv, "silent_errors", false);
    let ignore_unsupported = flag(inv, "ignore_unsupported_extensions", true);
    let mut loaded = Vec::new();
    for name in &names {
        match check_extension(name) {
            Ok(()) => {}
            Err(Unsupported::Skip(why)) if ignore_unsupported => {
                sandflow_sdk::log(sandflow_sdk::Level::Warn, &why);
                continue;
            }
            Err(Unsupported::Skip(why) | Unsupported::Refuse(why)) => return Err(NodeError::InvalidInput(why)),
        }
        match load(name, &text_or(inv, "text_encoding", "")) {
            Ok(file) => loaded.push(file),
            Err(error) if silent => sandflow_sdk::log(sandflow_sdk::Level::Warn, &error.to_string()),
            Err(error) => return Err(error),
        }
    }
    if loaded.is_empty() && !silent {
        return Err(NodeError::InvalidInput("No files to process.".into()));
    }
    let mut outputs = Vec::new();
    if wants("message") {
        let separator = match text_or(inv, "separator", "\n\n") {
            s if s.is_empty() => "\n\n".to_owned(),
            s => s,
        };
        let text = loaded.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(&separator);
        outputs.push(output("message", Value::Message(message(text, "", "", &inv.session_id))));
    }
    if wants("dataframe") {
        let rows: Vec<Map<String, Json>> = match loaded.as_slice() {
            [one] if one.name.to_ascii_lowercase().ends_with(".csv") => csv_records(&one.raw),
            [one, ..] if names.len() == 1 => vec![one.record()],
            many => many.iter().map(Loaded::record).collect(),
        };
        outputs.push(output("dataframe", table(rows)));
    }
    if wants("json") {
        let object = loaded.first().map_or_else(Map::new, |f| parse_string_to_dict(&f.text));
        outputs.push(output(
            "json",
            Value::Data(Data {
                text_key: "text".into(),
                data: Json::Object(object).to_string(),
                default_value: String::new(),
            }),
        ));
    }
    if wants("path") {
        let text = loaded.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join("\n");
        outputs.push(output("path", Value::Message(message(text, "", "", &inv.session_id))));
    }
    Ok(outputs)
}

fn wants_only_advanced(inv: &Invocation) -> bool {
    !inv.wanted.is_empty() && inv.wanted.iter().all(|w| w == "advanced_dataframe" || w == "advanced_markdown")
}

/// The names to read, in Langflow's order of preference: a tool call's
/// `file_path_str`, then `path` (unless `file_path` is connected), then
/// the `file_path` records (their `file_path` entry, or a message's text).
fn requested(inv: &Invocation) -> Result<Vec<String>, NodeError> {
    let tool = text_or(inv, "file_path_str", "");
    if !tool.is_empty() {
        return Ok(vec![tool]);
    }
    let connected: Vec<&Value> = values(inv, "file_path").filter(|v| !matches!(v, Value::None)).collect();
    let connected: Vec<&Value> =
        connected.into_iter().filter(|v| !matches!(v, Value::Text(t) if t.is_empty())).collect();
    if connected.is_empty() {
        let paths: Vec<String> = values(inv, "path").flat_map(path_values).collect();
        if paths.is_empty() {
            return Err(NodeError::InvalidInput(
                "no file to read: upload one (POST /api/v1/files/upload/{flow_id}) and pass its `file_path` in the \
                 `path` tweak of this node"
                    .into(),
            ));
        }
        return Ok(paths);
    }
    let mut names = Vec::new();
    for value in connected {
        match value {
            Value::Data(d) => {
                match serde_json::from_str::<Map<String, Json>>(&d.data).ok().and_then(|o| o.get("file_path").cloned())
                {
                    Some(Json::String(name)) if !name.is_empty() => names.push(name),
                    _ if flag(inv, "ignore_unspecified_files", false) => {}
                    _ => return Err(NodeError::InvalidInput("Data object missing 'file_path' property.".into())),
                }
            }
            Value::Table(t) => {
                for row in &t.rows {
                    if let Some(Json::String(name)) =
                        serde_json::from_str::<Map<String, Json>>(row).ok().and_then(|o| o.get("file_path").cloned())
                    {
                        names.push(name);
                    }
                }
            }
            other => names.extend(as_text(other).into_iter().flat_map(|t| path_values(&Value::Text(t)))),
        }
    }
    Ok(names)
}

/// A `path` value as names: text (one name, or a JSON list of names), or
/// JSON.
fn path_values(value: &Value) -> Vec<String> {
    let text = match value {
        Value::Text(t) | Value::Json(t) => t.trim().to_owned(),
        other => as_text(other).unwrap_or_default(),
    };
    if text.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<Json>>(&text)
    {
        return list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).filter(|s| !s.is_empty()).collect();
    }
    if text.is_empty() { Vec::new() } else { vec![text] }
}

enum Unsupported {
    /// Langflow skips it when `ignore_unsupported_extensions` is on.
    Skip(String),
    /// Langflow reads it, Sandflow cannot.
    Refuse(String),
}

fn extension(name: &str) -> String {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

fn check_extension(name: &str) -> Result<(), Unsupported> {
    let ext = extension(name);
    let file = name.rsplit('/').next().unwrap_or(name);
    if TEXT_TYPES.contains(&ext.as_str()) || DOCUMENT_TYPES.contains(&ext.as_str()) {
        return Ok(());
    }
    if DOCLING_ONLY.contains(&ext.as_str()) {
        return Err(Unsupported::Refuse(format!(
            "File '{file}' has extension '.{ext}' which requires Advanced Parser mode, which Sandflow does not offer"
        )));
    }
    if ARCHIVES.contains(&ext.as_str()) {
        return Err(Unsupported::Refuse(format!("'{file}' is an archive; Sandflow does not unpack archives")));
    }
    Err(Unsupported::Skip(format!("Unsupported file extension: '.{ext}' ({file})")))
}

/// Reads and parses one file through the `files` capability.
pub fn load(name: &str, encoding: &str) -> Result<Loaded, NodeError> {
    if DOCUMENT_TYPES.contains(&extension(name).as_str()) {
        let text = files::read_text(name).map_err(|e| read_error(name, &e))?;
        return Ok(Loaded { name: name.to_owned(), raw: text.clone(), text, encoding: None });
    }
    let file = files::read(name).map_err(|e| read_error(name, &e))?;
    let (raw, encoding) = decode(&file.content, encoding)
        .map_err(|why| NodeError::InvalidInput(format!("Error loading file {name}: {why}")))?;
    let text = structured_text(name, &raw)
        .map_err(|why| NodeError::InvalidInput(format!("Error loading file {name}: {why}")))?;
    Ok(Loaded { name: name.to_owned(), text, encoding: Some(encoding), raw })
}

/// A failed read as Langflow words it (a missing file) or with the host's reason.
pub(crate) fn read_error(name: &str, error: &CapabilityError) -> NodeError {
    match error {
        CapabilityError::Invalid(m) if m.starts_with("there is no file") => {
            NodeError::InvalidInput(format!("File not found: '{name}'. Please upload the file again."))
        }
        // A document the host could not extract: its message names the
        // file and says what is wrong with it.
        CapabilityError::Invalid(m) if m.starts_with("cannot read '") => NodeError::InvalidInput(m.clone()),
        other => NodeError::Failed(format!("cannot read '{name}': {}", capability_message(other))),
    }
}

/// Bytes as text: an explicit encoding (UTF-8, ASCII or Latin-1), else
/// UTF-8 (BOM dropped), else Latin-1; newlines made `\n`.
pub fn decode(bytes: &[u8], encoding: &str) -> Result<(String, &'static str), String> {
    let explicit = encoding.trim().to_ascii_lowercase().replace('_', "-");
    let (text, used) = match explicit.as_str() {
        "" => match std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)) {
            Ok(t) if bytes.is_ascii() => (t.to_owned(), "ascii"),
            Ok(t) if bytes.starts_with(b"\xef\xbb\xbf") => (t.to_owned(), "utf-8-sig"),
            Ok(t) => (t.to_owned(), "utf-8"),
            Err(_) => (latin1(bytes), "iso8859-1"),
        },
        "utf-8" | "utf8" => {
            (std::str::from_utf8(bytes).map_err(|e| format!("'utf-8' codec can't decode: {e}"))?.to_owned(), "utf-8")
        }
        "ascii" | "us-ascii" if bytes.is_ascii() => (String::from_utf8_lossy(bytes).into_owned(), "ascii"),
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => (latin1(bytes), "iso8859-1"),
        other => return Err(format!("the text encoding '{other}' is not supported (use utf-8, ascii or latin-1)")),
    };
    Ok((text.replace("\r\n", "\n").replace('\r', "\n"), used))
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Langflow's `parse_structured_text`: JSON re-serialised compactly, an
/// XML declaration dropped, anything else as it is.
pub fn structured_text(name: &str, text: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        let value: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok(value.to_string());
    }
    if lower.ends_with(".xml") {
        let trimmed = text.trim_start();
        if trimmed.starts_with("<?xml")
            && let Some(end) = trimmed.find("?>")
        {
            return Ok(trimmed[end + 2..].trim_start().to_owned());
        }
    }
    Ok(text.to_owned())
}

/// `parse_string_to_dict`: a JSON object, else `{"value": text}`.
fn parse_string_to_dict(text: &str) -> Map<String, Json> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(object)) => object,
        _ => {
            let mut object = Map::new();
            object.insert("value".into(), Json::String(text.to_owned()));
            object
        }
    }
}

fn table(rows: Vec<Map<String, Json>>) -> Value {
    Value::Table(Table { rows: rows.into_iter().map(|r| Json::Object(r).to_string()).collect() })
}

/// A CSV file's rows as pandas' `read_csv` gives them: the first line
/// names the columns; numbers become numbers, empty cells null.
pub fn csv_records(text: &str) -> Vec<Map<String, Json>> {
    let mut lines = parse_csv(text).into_iter();
    let Some(header) = lines.next() else { return Vec::new() };
    let rows: Vec<Vec<String>> = lines.filter(|r| !(r.len() == 1 && r[0].is_empty())).collect();
    // A column is numeric when every non-empty cell of it is.
    let numeric: Vec<(bool, bool)> = (0..header.len())
        .map(|c| {
            let cells: Vec<&str> =
                rows.iter().filter_map(|r| r.get(c)).map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            let ints = !cells.is_empty() && cells.iter().all(|s| s.parse::<i64>().is_ok());
            let floats = !cells.is_empty() && cells.iter().all(|s| s.parse::<f64>().is_ok());
            (ints, floats)
        })
        .collect();
    rows.iter()
        .map(|row| {
            header
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let cell = row.get(c).map(String::as_str).unwrap_or("");
                    let value = match numeric[c] {
                        _ if cell.trim().is_empty() => Json::Null,
                        (true, _) => cell.trim().parse::<i64>().map_or(Json::Null, Json::from),
                        (false, true) => cell
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or(Json::Null, Json::Number),
                        _ => Json::String(cell.to_owned()),
                    };
                    (name.clone(), value)
                })
                .collect()
        })
        .collect()
}

/// RFC 4180 records: `,` separated, `"` quoted (`""` inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_compacted_and_xml_loses_its_declaration() {
        assert_eq!(
            structured_text("a.json", "{ \"a\": [1, 2],\n \"b\": \"x\" }").expect("json"),
            r#"{"a":[1,2],"b":"x"}"#
        );
        assert!(structured_text("a.json", "{").is_err());
        assert_eq!(structured_text("a.xml", "<?xml version=\"1.0\"?>\n<a/>").expect("xml"), "<a/>");
        assert_eq!(structured_text("a.md", "# x\r\n").expect("md"), "# x\r\n");
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(b"a\r\nb", "").expect("ascii"), ("a\nb".to_owned(), "ascii"));
        assert_eq!(decode("\u{feff}é".as_bytes(), "").expect("bom").0, "é");
        assert_eq!(decode(b"caf\xe9", "").expect("latin-1"), ("café".to_owned(), "iso8859-1"));
        assert!(decode(b"caf\xe9", "utf-8").is_err());
    }

    #[test]
    fn csv_rows_are_typed_by_column() {
        let rows = csv_records("plan,price,note\nBasic,9,\"a, b\"\nPro,19.5,\n");
        assert_eq!(Json::Object(rows[0].clone()), json!({"plan": "Basic", "price": 9.0, "note": "a, b"}));
        assert_eq!(Json::Object(rows[1].clone()), json!({"plan": "Pro", "price": 19.5, "note": null}));
        assert_eq!(csv_records("a\n1\n2\n")[1]["a"], json!(2));
    }

    #[test]
    fn unsupported_formats_say_so() {
        assert!(check_extension("f/cv.pdf").is_ok() && check_extension("f/memo.DOCX").is_ok());
        assert!(matches!(check_extension("f/x.png"), Err(Unsupported::Refuse(_))));
        assert!(matches!(check_extension("f/x.exe"), Err(Unsupported::Skip(_))));
        assert!(check_extension("f/x.TXT").is_ok());
    }

    #[test]
    fn paths_from_tweaks() {
        assert_eq!(path_values(&Value::Text("a/b.txt".into())), ["a/b.txt"]);
        assert_eq!(path_values(&Value::Text(r#"["a.txt","b.md"]"#.into())), ["a.txt", "b.md"]);
        assert!(path_values(&Value::Text(String::new())).is_empty());
    }
}
