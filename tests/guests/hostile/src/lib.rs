//! A hostile custom node. Each component type it implements must end only
//! its own run, with a clear error, and leave the host serving:
//!
//! - `Spin`: an infinite loop (fuel or the deadline stops it);
//! - `Bomb`: allocates until memory runs out (the memory cap stops it);
//! - `Recurse`: unbounded recursion (the stack limit traps);
//! - `Flood`: a million host calls (they cost fuel; the log keeps a bounded number);
//! - `Huge`: a 10 MB output (allowed, and measured);
//! - `Panic`: panics (a trap);
//! - `ToolProbe`: calls a node of its choosing (field `target`) as a tool,
//!   outside any flow or outside its wiring (the host must refuse);
//! - `LlmProbe`: asks for a model at an address of its choosing with a
//!   secret of its choosing (the host must ignore the address and send no
//!   secret it was not given);
//! - `HttpProbe`: sends the request its fields describe (`url`, `method`,
//!   `header` lines `Name: value`, `body`, `timeout_ms`) straight to the
//!   `http` capability, past any node's own checks (the egress policy must
//!   refuse what it does not allow).
//!
//! And one honest type for benchmarks: `Crunch`, a CPU-bound loop of
//! `rounds` (field) rounds of xorshift hashing.

use sandflow_sdk::{Descriptor, Invocation, Level, Node, NodeError, Output, Value, port};

struct Hostile;

const TYPES: &[&str] =
    &["Spin", "Bomb", "Recurse", "Flood", "Huge", "Panic", "Sleep", "Crunch", "ToolProbe", "LlmProbe", "HttpProbe"];

impl Node for Hostile {
    fn describe() -> Vec<Descriptor> {
        TYPES
            .iter()
            .map(|t| Descriptor {
                type_name: (*t).into(),
                display_name: (*t).into(),
                description: "hostile test node".into(),
                inputs: vec![],
                outputs: vec![port("out", &["Message"], false)],
            })
            .collect()
    }

    fn run(invocation: Invocation) -> Result<Vec<Output>, NodeError> {
        let text = match invocation.component.as_str() {
            "Spin" => spin(),
            "Bomb" => bomb(),
            "Recurse" => recurse(std::hint::black_box(1)).to_string(),
            "Flood" => flood(),
            "Huge" => "x".repeat(10 << 20),
            "Panic" => panic!("the hostile node panics on purpose"),
            "Sleep" => loop {
                // An hour at a time, for ever: WASI timers, outside fuel's reach.
                std::thread::sleep(std::time::Duration::from_secs(3_600));
            },
            "Crunch" => crunch(sandflow_sdk::text_or(&invocation, "rounds", "1000").parse().unwrap_or(1000)),
            "ToolProbe" => tool_probe(&sandflow_sdk::text_or(&invocation, "target", "ChatInput-1")),
            "LlmProbe" => llm_probe(),
            "HttpProbe" => http_probe(&invocation),
            other => return Err(NodeError::InvalidInput(format!("no type {other}"))),
        };
        Ok(vec![Output { name: "out".into(), value: Value::Text(text) }])
    }
}

fn spin() -> String {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn bomb() -> String {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

#[expect(unconditional_recursion, reason = "overflowing the stack is what this guest is for")]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[0]
}

fn crunch(rounds: u64) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x.to_string()
}

fn flood() -> String {
    for i in 0..1_000_000 {
        sandflow_sdk::log(Level::Debug, &format!("line {i}"));
    }
    "flooded".into()
}

fn tool_probe(target: &str) -> String {
    match sandflow_sdk::host::tools::call(target, "anything", r#"{"x": 1}"#) {
        Ok(result) => format!("called: {result}"),
        Err(e) => format!("refused: {}", sandflow_sdk::capability_message(&e)),
    }
}

fn llm_probe() -> String {
    use sandflow_sdk::host::llm::{ChatMessage, CompletionRequest, complete};
    let request = CompletionRequest {
        model: sandflow_sdk::ModelSettings {
            provider: String::new(),
            model: "probe".into(),
            api_key_secret: Some("OPERATOR_DATABASE_PASSWORD".into()),
            temperature: None,
            max_tokens: None,
            base_url: Some("http://169.254.169.254/latest/meta-data".into()),
            extra: "{}".into(),
        },
        messages: vec![ChatMessage {
            role: "user".into(),
            content: "hi".into(),
            tool_calls: vec![],
            tool_call_id: None,
        }],
        tools: vec![],
        stream_tokens: false,
        response_schema: None,
    };
    match complete(&request) {
        Ok(completion) => format!("answered: {}", completion.message.content),
        Err(e) => format!("refused: {}", sandflow_sdk::capability_message(&e)),
    }
}

fn http_probe(invocation: &Invocation) -> String {
    use sandflow_sdk::host::http::{Request, fetch};
    let field = |name: &str| sandflow_sdk::text_or(invocation, name, "");
    let headers = sandflow_sdk::values(invocation, "header")
        .filter_map(sandflow_sdk::as_text)
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim_start().to_owned())))
        .collect();
    let request = Request {
        method: field("method"),
        url: field("url"),
        headers,
        body: field("body").into_bytes(),
        timeout_ms: field("timeout_ms").parse().ok(),
    };
    match fetch(&request) {
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            format!(
                "status={} bytes={} body={}",
                response.status,
                response.body.len(),
                body.chars().take(4000).collect::<String>()
            )
        }
        Err(e) => format!("refused: {}", sandflow_sdk::capability_message(&e)),
    }
}

sandflow_sdk::export_node!(Hostile);
