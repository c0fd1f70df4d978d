//! Mutation tests: every shared Langflow export, broken in random structural
//! ways, must never make the compiler panic; whatever `check` accepts must
//! compile to a valid component; every diagnostic must say what is wrong,
//! what to do and where (a JSON pointer).
//!
//! Runs 64 cases by default; set `PROPTEST_CASES` for a longer hunt, e.g.
//! `PROPTEST_CASES=5000 cargo test -p sandflow-flow-compiler --test mutations`.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use sandflow_flow_compiler::langflow::MAX_FLOW_BYTES;
use sandflow_flow_compiler::{CompileError, CompileOptions, Diagnostics, catalog, check, compile};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

struct Fixture {
    /// `folder/file.json`, for failure messages.
    name: String,
    value: Value,
}

fn shared_flows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/flows")
}

/// Every `*.json` in `../shared/flows`, `starter/` and `legacy/`, parsed.
static FIXTURES: LazyLock<Vec<Fixture>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for folder in ["", "starter", "legacy"] {
        let dir = shared_flows().join(folder);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let value =
                serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let file = path.file_name().expect("file name").to_string_lossy();
            let name = if folder.is_empty() { file.into_owned() } else { format!("{folder}/{file}") };
            out.push(Fixture { name, value });
        }
    }
    assert!(out.len() >= 3, "expected the shared flows in {}", shared_flows().display());
    out
});

/// Every `data.type` used by a fixture that the catalog knows: changing a
/// node's type to another supported component type reaches deeper into
/// lowering than a random string.
static KNOWN_TYPES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut types = Vec::new();
    for fixture in FIXTURES.iter() {
        for (array, i) in sites(&fixture.value, "nodes") {
            let ptr = format!("{array}/{i}/data/type");
            if let Some(Value::String(t)) = fixture.value.pointer(&ptr)
                && catalog::lookup(t).is_some()
            {
                types.push(t.clone());
            }
        }
    }
    types.sort();
    types.dedup();
    types
});

fn fixture(name: &str) -> &'static Fixture {
    FIXTURES.iter().find(|f| f.name == name).expect("fixture chosen from FIXTURES")
}

// ---------------------------------------------------------------------------
// Locating things in a document
// ---------------------------------------------------------------------------

/// RFC 6901 token escaping.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `(pointer of the array, index)` of every element of every array stored
/// under the key `key` (`nodes` or `edges`), including those of groups'
/// inner flows.
fn sites(value: &Value, key: &str) -> Vec<(String, usize)> {
    fn walk(value: &Value, ptr: &str, key: &str, out: &mut Vec<(String, usize)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let child = format!("{ptr}/{}", escape(k));
                    if k == key
                        && let Value::Array(items) = v
                    {
                        out.extend((0..items.len()).map(|i| (child.clone(), i)));
                    }
                    walk(v, &child, key, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{ptr}/{i}"), key, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", key, &mut out);
    out
}

/// Pointers of `root` and of every value below it.
fn value_paths(value: &Value, root: &str) -> Vec<String> {
    fn walk(value: &Value, ptr: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, format!("{ptr}/{}", escape(k)), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{ptr}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(ptr);
    }
    let mut out = Vec::new();
    if let Some(v) = value.pointer(root) {
        walk(v, root.to_owned(), &mut out);
    }
    out
}

/// `(pointer of the object, key)` of every object key at or below `root`.
fn key_paths(value: &Value, root: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ptr in value_paths(value, root) {
        if let Some(Value::Object(map)) = value.pointer(&ptr) {
            out.extend(map.keys().map(|k| (ptr.clone(), k.clone())));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// Where a generic mutation picks its target: anywhere, or inside one node
/// or one edge (so that lowering sees node- and edge-level damage often).
#[derive(Debug, Clone)]
enum Scope {
    Document,
    Node(Index),
    Edge(Index),
}

#[derive(Debug, Clone)]
enum Replacement {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    EmptyArray,
    EmptyObject,
    ArrayOf(Vec<String>),
    /// A value of another JSON type than the one replaced.
    WrongType,
}

#[derive(Debug, Clone)]
enum TypeName {
    /// A component type some fixture uses.
    Known(Index),
    Random(String),
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteKey {
        scope: Scope,
        at: Index,
    },
    Replace {
        scope: Scope,
        at: Index,
        with: Replacement,
    },
    DuplicateNode {
        node: Index,
        fresh_id: bool,
    },
    DeleteNode {
        node: Index,
    },
    SwapEdgeEnds {
        edge: Index,
    },
    DanglingEdgeTarget {
        edge: Index,
    },
    /// Points one end of an edge at another existing node (cycles, type clashes, taken fields).
    RewireEdge {
        edge: Index,
        target_end: bool,
        node: Index,
    },
    SelfLoop {
        edge: Index,
    },
    DuplicateEdge {
        edge: Index,
    },
    ChangeType {
        node: Index,
        to: TypeName,
    },
}

/// Applied to the serialized document, after the structural mutations.
#[derive(Debug, Clone)]
enum ByteMutation {
    Truncate(Index),
    Insert(Index, u8),
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        1 => Just(Scope::Document),
        2 => any::<Index>().prop_map(Scope::Node),
        1 => any::<Index>().prop_map(Scope::Edge),
    ]
}

fn short_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("œ".to_owned()),
        Just("a|b|c".to_owned()),
        Just("{}".to_owned()),
        Just("~1/".to_owned()),
        Just("{user_input}".to_owned()),
        "\\PC{0,12}",
    ]
}

fn replacement() -> impl Strategy<Value = Replacement> {
    prop_oneof![
        1 => Just(Replacement::Null),
        1 => any::<bool>().prop_map(Replacement::Bool),
        1 => prop_oneof![Just(i64::MIN), Just(-1i64), Just(0i64), Just(u32::MAX as i64), any::<i64>()]
            .prop_map(Replacement::Int),
        1 => prop_oneof![Just(-0.0f64), Just(1e308f64), Just(f64::MIN_POSITIVE), -1e9f64..1e9f64]
            .prop_map(Replacement::Float),
        1 => short_string().prop_map(Replacement::Str),
        1 => Just(Replacement::EmptyArray),
        1 => Just(Replacement::EmptyObject),
        1 => prop::collection::vec(short_string(), 0..3).prop_map(Replacement::ArrayOf),
        3 => Just(Replacement::WrongType),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (scope(), any::<Index>()).prop_map(|(scope, at)| Mutation::DeleteKey { scope, at }),
        4 => (scope(), any::<Index>(), replacement()).prop_map(|(scope, at, with)| Mutation::Replace { scope, at, with }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(node, fresh_id)| Mutation::DuplicateNode { node, fresh_id }),
        1 => any::<Index>().prop_map(|node| Mutation::DeleteNode { node }),
        1 => any::<Index>().prop_map(|edge| Mutation::SwapEdgeEnds { edge }),
        1 => any::<Index>().prop_map(|edge| Mutation::DanglingEdgeTarget { edge }),
        2 => (any::<Index>(), any::<bool>(), any::<Index>())
            .prop_map(|(edge, target_end, node)| Mutation::RewireEdge { edge, target_end, node }),
        1 => any::<Index>().prop_map(|edge| Mutation::SelfLoop { edge }),
        1 => any::<Index>().prop_map(|edge| Mutation::DuplicateEdge { edge }),
        2 => (
            any::<Index>(),
            prop_oneof![
                3 => any::<Index>().prop_map(TypeName::Known),
                1 => short_string().prop_map(TypeName::Random),
            ]
        )
            .prop_map(|(node, to)| Mutation::ChangeType { node, to }),
    ]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        any::<Index>().prop_map(ByteMutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| ByteMutation::Insert(at, b)),
    ]
}

fn pick<'a, T>(items: &'a [T], index: &Index) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[index.index(items.len())])
}

fn scope_root(doc: &Value, scope: &Scope) -> Option<String> {
    match scope {
        Scope::Document => Some(String::new()),
        Scope::Node(i) => pick(&sites(doc, "nodes"), i).map(|(a, n)| format!("{a}/{n}")),
        Scope::Edge(i) => pick(&sites(doc, "edges"), i).map(|(a, n)| format!("{a}/{n}")),
    }
}

fn wrong_type(value: &Value) -> Value {
    match value {
        Value::Null => Value::Bool(true),
        Value::Bool(_) => Value::String("true".to_owned()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => {
            if s.is_empty() {
                Value::from(0)
            } else {
                Value::Array(vec![Value::String(s.clone())])
            }
        }
        Value::Array(items) => {
            Value::Object(items.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect::<Map<_, _>>())
        }
        Value::Object(map) => Value::Array(map.values().cloned().collect()),
    }
}

fn build(with: &Replacement, old: &Value) -> Value {
    match with {
        Replacement::Null => Value::Null,
        Replacement::Bool(b) => Value::Bool(*b),
        Replacement::Int(i) => Value::from(*i),
        Replacement::Float(f) => Value::from(*f),
        Replacement::Str(s) => Value::String(s.clone()),
        Replacement::EmptyArray => Value::Array(Vec::new()),
        Replacement::EmptyObject => Value::Object(Map::new()),
        Replacement::ArrayOf(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        Replacement::WrongType => wrong_type(old),
    }
}

/// Applies one mutation; a mutation that finds nothing to act on does nothing.
fn apply(doc: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::DeleteKey { scope, at } => {
            let Some(root) = scope_root(doc, scope) else { return };
            if let Some((parent, key)) = pick(&key_paths(doc, &root), at).cloned()
                && let Some(Value::Object(map)) = doc.pointer_mut(&parent)
            {
                map.shift_remove(&key);
            }
        }
        Mutation::Replace { scope, at, with } => {
            let Some(root) = scope_root(doc, scope) else { return };
            if let Some(ptr) = pick(&value_paths(doc, &root), at).cloned()
                && let Some(slot) = doc.pointer_mut(&ptr)
            {
                *slot = build(with, slot);
            }
        }
        Mutation::DuplicateNode { node, fresh_id } => {
            let Some((array, i)) = pick(&sites(doc, "nodes"), node).cloned() else { return };
            if let Some(Value::Array(items)) = doc.pointer_mut(&array) {
                let mut copy = items[i].clone();
                if *fresh_id && let Some(Value::String(id)) = copy.get_mut("id") {
                    id.push_str("-copy");
                }
                items.insert(i + 1, copy);
            }
        }
        Mutation::DeleteNode { node } => {
            let Some((array, i)) = pick(&sites(doc, "nodes"), node).cloned() else { return };
            if let Some(Value::Array(items)) = doc.pointer_mut(&array) {
                items.remove(i);
            }
        }
        Mutation::SwapEdgeEnds { edge } => {
            let Some((array, i)) = pick(&sites(doc, "edges"), edge).cloned() else { return };
            if let Some(Value::Object(e)) = doc.pointer_mut(&format!("{array}/{i}")) {
                let source = e.get("source").cloned().unwrap_or(Value::Null);
                let target = e.get("target").cloned().unwrap_or(Value::Null);
                e.insert("source".to_owned(), target);
                e.insert("target".to_owned(), source);
            }
        }
        Mutation::DanglingEdgeTarget { edge } => {
            let Some((array, i)) = pick(&sites(doc, "edges"), edge).cloned() else { return };
            if let Some(Value::Object(e)) = doc.pointer_mut(&format!("{array}/{i}")) {
                e.insert("target".to_owned(), Value::String("NoSuchNode-zzzzz".to_owned()));
            }
        }
        Mutation::RewireEdge { edge, target_end, node } => {
            let Some((array, i)) = pick(&sites(doc, "edges"), edge).cloned() else { return };
            let Some((nodes, n)) = pick(&sites(doc, "nodes"), node).cloned() else { return };
            let Some(id) = doc.pointer(&format!("{nodes}/{n}/id")).cloned() else { return };
            if let Some(Value::Object(e)) = doc.pointer_mut(&format!("{array}/{i}")) {
                e.insert(if *target_end { "target" } else { "source" }.to_owned(), id);
            }
        }
        Mutation::SelfLoop { edge } => {
            let Some((array, i)) = pick(&sites(doc, "edges"), edge).cloned() else { return };
            if let Some(Value::Object(e)) = doc.pointer_mut(&format!("{array}/{i}")) {
                let source = e.get("source").cloned().unwrap_or(Value::Null);
                e.insert("target".to_owned(), source);
            }
        }
        Mutation::DuplicateEdge { edge } => {
            let Some((array, i)) = pick(&sites(doc, "edges"), edge).cloned() else { return };
            if let Some(Value::Array(items)) = doc.pointer_mut(&array) {
                let copy = items[i].clone();
                items.insert(i + 1, copy);
            }
        }
        Mutation::ChangeType { node, to } => {
            let Some((array, i)) = pick(&sites(doc, "nodes"), node).cloned() else { return };
            let to = match to {
                TypeName::Known(k) => pick(&KNOWN_TYPES, k).cloned().unwrap_or_default(),
                TypeName::Random(s) => s.clone(),
            };
            if let Some(Value::Object(data)) = doc.pointer_mut(&format!("{array}/{i}/data")) {
                data.insert("type".to_owned(), Value::String(to));
            }
        }
    }
}

fn apply_bytes(bytes: &mut Vec<u8>, mutation: &ByteMutation) {
    match mutation {
        ByteMutation::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
        ByteMutation::Insert(at, b) => {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, *b);
        }
    }
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

fn check_diagnostics(diags: &Diagnostics) -> Result<(), TestCaseError> {
    for d in diags.iter() {
        prop_assert!(!d.message.trim().is_empty(), "diagnostic without a message: {d:?}");
        prop_assert!(!d.help.trim().is_empty(), "diagnostic without help: {d:?}");
        prop_assert!(d.pointer.is_empty() || d.pointer.starts_with('/'), "pointer is not a JSON pointer: {d:?}");
    }
    Ok(())
}

/// What must hold for any input bytes.
fn compiler_holds_up(source: &[u8]) -> Result<(), TestCaseError> {
    let options = CompileOptions::default();
    let (plan, diags) = check(source, &options);
    check_diagnostics(&diags)?;
    prop_assert_eq!(plan.is_some(), !diags.has_errors(), "check returned a plan iff there are no errors: {:?}", diags);
    match compile(source, &options) {
        Ok((artifact, compile_diags)) => {
            prop_assert!(!diags.has_errors(), "compile succeeded where check reported errors: {:?}", diags);
            prop_assert_eq!(&compile_diags, &diags, "compile and check disagree on the diagnostics");
            if let Err(e) = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&artifact.component)
            {
                return Err(TestCaseError::fail(format!("compile produced an invalid component: {e}")));
            }
        }
        Err(CompileError::Invalid(compile_diags)) => {
            prop_assert!(diags.has_errors(), "check reported no errors but compile failed with: {:?}", compile_diags);
            prop_assert_eq!(&compile_diags, &diags, "compile and check disagree on the diagnostics");
        }
        Err(e @ CompileError::Codegen(_)) => {
            return Err(TestCaseError::fail(format!("check accepted the flow but code generation failed: {e}")));
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    // No regression files: a failure prints the minimal mutation list instead.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn fixture_names() -> Vec<String> {
    FIXTURES.iter().map(|f| f.name.clone()).collect()
}

/// Fixtures that `check` accepts as they are: mutating those reaches code
/// generation far more often than mutating the ones that already fail.
fn accepted_fixture_names() -> Vec<String> {
    let accepted: Vec<String> = FIXTURES
        .iter()
        .filter(|f| {
            let source = serde_json::to_vec(&f.value).expect("a Value serializes");
            check(&source, &CompileOptions::default()).0.is_some()
        })
        .map(|f| f.name.clone())
        .collect();
    if accepted.is_empty() { fixture_names() } else { accepted }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_flows_never_break_the_compiler(
        name in prop_oneof![
            3 => prop::sample::select(accepted_fixture_names()),
            1 => prop::sample::select(fixture_names()),
        ],
        mutations in prop::collection::vec(mutation(), 1..=3),
        bytes in prop::option::weighted(0.2, byte_mutation()),
    ) {
        let mut doc = fixture(&name).value.clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let mut source = serde_json::to_vec(&doc).expect("a Value serializes");
        if let Some(b) = &bytes {
            apply_bytes(&mut source, b);
        }
        compiler_holds_up(&source)?;
    }
}

// ---------------------------------------------------------------------------
// Hostile uploads
// ---------------------------------------------------------------------------

fn only_error(source: &[u8]) -> Diagnostics {
    let (plan, diags) = check(source, &CompileOptions::default());
    assert!(plan.is_none());
    for d in diags.iter() {
        assert!(!d.message.trim().is_empty() && !d.help.trim().is_empty(), "{d:?}");
        assert!(d.pointer.is_empty() || d.pointer.starts_with('/'), "{d:?}");
    }
    match compile(source, &CompileOptions::default()) {
        Err(CompileError::Invalid(again)) => assert_eq!(again, diags),
        Err(e) => panic!("unexpected compile error: {e}"),
        Ok(_) => panic!("compiled a broken upload"),
    }
    assert_eq!(diags.error_count(), 1, "{diags:?}");
    diags
}

fn assert_code(source: &[u8], code: &str) {
    let diags = only_error(source);
    let d = diags.iter().next().expect("one diagnostic");
    assert_eq!(d.code, code, "{d:?}");
}

const DEPTH: usize = 10_000;

#[test]
fn deeply_nested_arrays_are_not_json() {
    let source = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    assert_code(source.as_bytes(), "not-json");
    // Unclosed, too.
    assert_code("[".repeat(DEPTH).as_bytes(), "not-json");
}

#[test]
fn deeply_nested_objects_are_not_json() {
    let source = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    assert_code(source.as_bytes(), "not-json");
    // Inside an otherwise plausible export.
    let source =
        format!(r#"{{"data":{{"nodes":[],"edges":[]}},"extra":{}1{}}}"#, r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    assert_code(source.as_bytes(), "not-json");
}

#[test]
fn deep_nesting_reports_the_nesting() {
    let source = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let diags = only_error(source.as_bytes());
    let d = diags.iter().next().expect("one diagnostic");
    assert!(d.help.contains("nests too deeply"), "{d:?}");
}

#[test]
fn oversized_uploads_are_too_large() {
    // Valid JSON padded with whitespace: the size alone rejects it.
    let mut source = std::fs::read(shared_flows().join("echo.json")).expect("echo.json is readable");
    source.resize(MAX_FLOW_BYTES + 1, b' ');
    assert_code(&source, "too-large");
    // At exactly the limit the same flow is accepted.
    source.truncate(MAX_FLOW_BYTES);
    let (plan, diags) = check(&source, &CompileOptions::default());
    assert!(plan.is_some() && !diags.has_errors(), "{diags:?}");
}

#[test]
fn invalid_utf8_is_not_json() {
    assert_code(b"\xff\xfe", "not-json");
    assert_code(b"\x80", "not-json");
    // Bad bytes inside strings of an otherwise valid export: a truncated
    // sequence, an overlong encoding, a lone continuation byte, a surrogate.
    for bad in [&b"\xc3\x28"[..], b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"] {
        let mut source = br#"{"data":{"nodes":[],"edges":[]},"name":""#.to_vec();
        source.extend_from_slice(bad);
        source.extend_from_slice(br#""}"#);
        assert_code(&source, "not-json");
    }
    // And in a real flow.
    let text = std::fs::read_to_string(shared_flows().join("echo.json")).expect("echo.json is readable");
    let at = text.find("ChatInput").expect("echo.json has a ChatInput");
    let mut source = text.into_bytes();
    source.insert(at, 0xff);
    assert_code(&source, "not-json");
}

#[test]
fn every_fixture_unmutated_holds_up() {
    for f in FIXTURES.iter() {
        let source = serde_json::to_vec(&f.value).expect("a Value serializes");
        if let Err(e) = compiler_holds_up(&source) {
            panic!("{}: {e}", f.name);
        }
    }
}
