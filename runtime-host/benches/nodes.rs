//! Per-node cost inside the sandbox: the real standard-library component
//! (the one the host embeds) instantiated in a fresh `Sandbox` and run on
//! 1 MB of text, for Prompt, Parser and Split Text. Prints the fuel each
//! call uses once, then criterion times the call (fresh store + instantiate
//! + run, which is what a flow pays per node on its first use in a run).
//!
//! `cargo bench -p sandflow-runtime-host --bench nodes`

use criterion::{Criterion, criterion_group, criterion_main};
use sandflow_runtime_host::{Data, Field, Invocation, Limits, Message, Runtime, RuntimeConfig, Table, Value};
use std::path::Path;
use std::time::Duration;

const MB: usize = 1 << 20;

/// 1 MB of prose in lines of 76 characters, a blank line every 8 lines.
fn prose() -> String {
    let line = "Langflow flows compile to WebAssembly components and run in sandboxes, fast.";
    let mut text = String::with_capacity(MB + 100);
    let mut n = 0;
    while text.len() < MB {
        text.push_str(line);
        n += 1;
        text.push_str(if n % 8 == 0 { "\n\n" } else { "\n" });
    }
    text
}

fn message(text: String) -> Value {
    Value::Message(Message {
        text,
        sender: "User".into(),
        sender_name: "User".into(),
        session_id: "s".into(),
        files: Vec::new(),
        properties: "{}".into(),
    })
}

fn field(name: &str, value: Value) -> Field {
    Field { name: name.into(), value }
}

fn text(t: &str) -> Value {
    Value::Text(t.into())
}

fn invocation(component: &str, fields: Vec<Field>, wanted: &str) -> Invocation {
    Invocation {
        component: component.into(),
        node_id: format!("{component}-1"),
        display_name: component.into(),
        session_id: "s".into(),
        fields,
        wanted: vec![wanted.into()],
    }
}

fn cases() -> Vec<(&'static str, Invocation)> {
    let prose = prose();
    let rows: Vec<String> = prose
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::json!({"id": i, "text": l}).to_string())
        .collect();
    vec![
        (
            "prompt/1MB-variable",
            invocation(
                "prompt",
                vec![
                    field("template", text("Summarize this:\n{document}\nThanks.")),
                    field("document", message(prose.clone())),
                ],
                "prompt",
            ),
        ),
        (
            "parser/data-1MB",
            invocation(
                "parser",
                vec![
                    field(
                        "input_data",
                        Value::Data(Data {
                            text_key: "text".into(),
                            data: serde_json::json!({ "text": prose }).to_string(),
                            default_value: String::new(),
                        }),
                    ),
                    field("mode", text("Parser")),
                    field("pattern", text("Text: {text}")),
                    field("sep", text("\n")),
                ],
                "parsed_text",
            ),
        ),
        (
            "parser/table-1MB-13.6k-rows",
            invocation(
                "parser",
                vec![
                    field("input_data", Value::Table(Table { rows })),
                    field("mode", text("Parser")),
                    field("pattern", text("{id}: {text}")),
                    field("sep", text("\n")),
                ],
                "parsed_text",
            ),
        ),
        (
            "split-text/1MB-chunk1000-overlap200",
            invocation(
                "split-text",
                vec![
                    field("data_inputs", message(prose)),
                    field("chunk_size", Value::Integer(1000)),
                    field("chunk_overlap", Value::Integer(200)),
                    field("separator", text("\n")),
                    field("keep_separator", text("False")),
                    field("clean_output", Value::Boolean(true)),
                ],
                "dataframe",
            ),
        ),
    ]
}

fn nodes(c: &mut Criterion) {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cache");
    let runtime = Runtime::new(&RuntimeConfig { cache_dir: Some(cache), ..RuntimeConfig::default() }).expect("runtime");
    let bytes = std::fs::read(sandflow_guest_artifacts::STD_NODES).expect("the standard library is built");
    let library = runtime.load_node(&bytes).expect("loads");
    let mut group = c.benchmark_group("node");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(20);
    for (name, inv) in cases() {
        let mut sandbox = runtime.sandbox(Limits::default());
        let outputs = sandbox.run_node(&library, &inv).expect("no trap").expect("the node succeeds");
        let produced: usize = outputs
            .iter()
            .map(|o| match &o.value {
                Value::Message(m) => m.text.len(),
                Value::Table(t) => t.rows.iter().map(String::len).sum(),
                _ => 0,
            })
            .sum();
        eprintln!("fuel {name}: {} (output {produced} bytes)", sandbox.fuel_consumed());
        group.bench_function(name, |b| {
            b.iter(|| runtime.sandbox(Limits::default()).run_node(&library, &inv).expect("no trap").expect("ok"))
        });
    }
    group.finish();
}

criterion_group!(benches, nodes);
criterion_main!(benches);
