//! Tokens reach the client as the model produces them, in the native,
//! Langflow and OpenAI stream formats, with the run's usage counting them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sandflow_model_server::{ModelServer, Options};
use sandflow_runtime_host::api::{DataPlane, router};
use sandflow_runtime_host::{CapabilityConfig, Limits, LlmConfig, Secrets};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

mod support;

const SECRET: &[u8] = b"streaming-test-secret";

/// The model server's pause between streamed chunks.
const CHUNK_DELAY: Duration = Duration::from_millis(5);

async fn plane() -> (Arc<DataPlane>, ModelServer, String) {
    plane_with(CHUNK_DELAY).await
}

async fn plane_with(chunk_delay: Duration) -> (Arc<DataPlane>, ModelServer, String) {
    let server = ModelServer::start(Options { chunk_delay, ..Options::default() }).await.expect("model server");
    let capabilities = CapabilityConfig {
        llm: LlmConfig {
            providers: vec![format!("OpenAI=openai,{}/v1,gpt-test", server.url()).parse().expect("spec")],
        },
        ..CapabilityConfig::default()
    };
    let plane = support::data_plane(capabilities, SECRET);
    let flow = support::shared_flow("starter/basic-prompting.json");
    support::provision(&plane, "acme", "prompting", &flow, Limits::default(), Secrets::default());
    let key = support::run_key("acme", SECRET);
    (Arc::new(plane), server, key)
}

/// The response body, split into its events as they arrived.
async fn stream(plane: &Arc<DataPlane>, uri: &str, key: &str, body: Value) -> (StatusCode, Vec<String>) {
    let (status, events) = timed_stream(plane, uri, key, body).await;
    (status, events.into_iter().map(|(_, event)| event).collect())
}

/// The response body's events, each with when its bytes arrived.
async fn timed_stream(
    plane: &Arc<DataPlane>,
    uri: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Vec<(std::time::Instant, String)>) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router(plane.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let mut body = response.into_body();
    let (mut events, mut pending) = (Vec::new(), String::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            pending.push_str(std::str::from_utf8(&data).expect("UTF-8"));
            let arrived = std::time::Instant::now();
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                if !event.trim().is_empty() {
                    events.push((arrived, event.trim_end().to_owned()));
                }
            }
        }
    }
    if !pending.trim().is_empty() {
        events.push((std::time::Instant::now(), pending));
    }
    (status, events)
}

fn sse_data(event: &str) -> Value {
    let data = event.lines().find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:"))).expect("data");
    serde_json::from_str(data).unwrap_or(Value::String(data.to_owned()))
}

fn sse_name(event: &str) -> &str {
    event.lines().find_map(|l| l.strip_prefix("event: ").or_else(|| l.strip_prefix("event:"))).unwrap_or("message")
}

#[tokio::test(flavor = "multi_thread")]
async fn native_stream_sends_tokens_before_the_answer() {
    let (plane, _server, key) = plane().await;
    let body = json!({"input": "tell me three things", "stream": true});
    let (status, events) = stream(&plane, "/v1/agents/prompting/runs", &key, body).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = events.iter().map(|e| sse_name(e)).collect();
    let tokens: Vec<String> = events
        .iter()
        .filter(|e| sse_name(e) == "token")
        .map(|e| sse_data(e)["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(tokens.len(), 6, "one event per word the model sent: {names:?}");
    assert_eq!(tokens.concat(), "You said: tell me three things");
    let first_message = names.iter().position(|n| *n == "message").expect("a message event");
    assert!(names.iter().rposition(|n| *n == "token").expect("tokens") < first_message);
    let done = sse_data(events.last().expect("events"));
    assert_eq!(sse_name(events.last().expect("events")), "done");
    assert_eq!(done["usage"]["tokens_out"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn langflow_stream_has_token_events_between_the_messages() {
    let (plane, _server, key) = plane().await;
    let body = json!({"input_value": "hello there", "session_id": "s1"});
    let (status, events) = stream(&plane, "/api/v1/run/prompting?stream=true", &key, body).await;
    assert_eq!(status, StatusCode::OK);
    let parsed: Vec<Value> =
        events.iter().map(|e| serde_json::from_str(e).expect("one JSON object per event")).collect();
    let names: Vec<&str> = parsed.iter().map(|e| e["event"].as_str().expect("event")).collect();
    assert_eq!(names.first(), Some(&"add_message"), "the user's message first: {names:?}");
    assert_eq!(parsed[0]["data"]["text"], "hello there");
    assert_eq!(&names[names.len() - 2..], ["add_message", "end"]);
    let tokens: Vec<&Value> = parsed.iter().filter(|e| e["event"] == "token").collect();
    assert_eq!(tokens.len(), 4);
    let chunks: String = tokens.iter().map(|t| t["data"]["chunk"].as_str().expect("chunk")).collect();
    assert_eq!(chunks, "You said: hello there");
    let answer = &parsed[parsed.len() - 2]["data"];
    assert_eq!(answer["text"], "You said: hello there");
    assert_eq!(tokens[0]["data"]["id"], answer["id"], "tokens name the message they build");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_stream_sends_content_chunks() {
    let (plane, _server, key) = plane().await;
    let body = json!({"model": "prompting", "stream": true, "messages": [{"role": "user", "content": "one two"}]});
    let (status, events) = stream(&plane, "/v1/chat/completions", &key, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sse_data(events.last().expect("events")), Value::String("[DONE]".into()));
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| sse_data(e)).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "You said: one two");
    assert!(chunks.len() >= 5, "word by word: {chunks:?}");
    assert_eq!(chunks.last().expect("chunks")["choices"][0]["finish_reason"], "stop");
}

/// In a chain of agents every agent's model streams, but an OpenAI client
/// reads the stream as the answer: it carries the last agent's tokens
/// only, the same text as the non-streamed `content`.
#[tokio::test(flavor = "multi_thread")]
async fn openai_stream_of_a_chain_is_the_answer_alone() {
    let (plane, _server, key) = plane().await;
    let flow = support::shared_flow("starter/multi-agent-flow.json");
    support::provision(&plane, "acme", "chain", &flow, Limits::default(), Secrets::default());
    let messages = json!([{"role": "user", "content": "plan a launch"}]);
    let (status, events) =
        stream(&plane, "/v1/chat/completions", &key, json!({"model": "chain", "messages": messages})).await;
    assert_eq!(status, StatusCode::OK);
    let whole: Value = serde_json::from_str(&events.concat()).expect("one JSON body");
    let answer = whole["choices"][0]["message"]["content"].as_str().expect("content").to_owned();
    assert_eq!(answer, "You said: You said: You said: plan a launch");
    let body = json!({"model": "chain", "stream": true, "messages": messages});
    let (_, events) = stream(&plane, "/v1/chat/completions", &key, body).await;
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| sse_data(e)).collect();
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, answer);
    assert!(chunks.len() >= 5, "still token by token: {chunks:?}");
}

/// Every format hands each token on as it comes: with the model pausing
/// between its chunks, the first token reaches the client well before the
/// last one. A server that held the tokens back until the run ended would
/// deliver them all at once.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_reach_the_client_while_the_model_is_still_writing() {
    let delay = Duration::from_millis(80);
    let (plane, _server, key) = plane_with(delay).await;
    let input = "one two three four five";
    let requests = [
        ("/v1/agents/prompting/runs", json!({"input": input, "stream": true})),
        ("/api/v1/run/prompting?stream=true", json!({"input_value": input})),
        (
            "/v1/chat/completions",
            json!({"model": "prompting", "stream": true, "messages": [{"role": "user", "content": input}]}),
        ),
    ];
    for (uri, body) in requests {
        let (status, events) = timed_stream(&plane, uri, &key, body).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let is_token = |e: &str| e.contains("\"token\"") || e.contains("event: token") || e.contains("\"content\":\"");
        let tokens: Vec<std::time::Instant> = events.iter().filter(|(_, e)| is_token(e)).map(|(at, _)| *at).collect();
        // "You said: one two three four five": seven chunks, six pauses.
        assert!(tokens.len() >= 7, "{uri}: {events:?}");
        let spread = *tokens.last().expect("tokens") - tokens[0];
        assert!(spread >= delay * 4, "{uri}: the tokens arrived within {spread:?} of each other");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_failure_mid_stream_ends_with_an_error_event() {
    let (plane, _server, key) = plane().await;
    let body = json!({"input_value": "now fail with 500"});
    let (status, events) = stream(&plane, "/api/v1/run/prompting?stream=true", &key, body).await;
    assert_eq!(status, StatusCode::OK, "the stream had started");
    let last: Value = serde_json::from_str(events.last().expect("events")).expect("JSON");
    assert_eq!(last["event"], "error");
    assert!(last["data"]["error"].as_str().is_some_and(|e| e.contains("answered 500")), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_answers_report_token_usage() {
    let (plane, _server, key) = plane().await;
    let body = json!({"model": "prompting", "messages": [{"role": "user", "content": "count these words"}]});
    let (status, events) = stream(&plane, "/v1/chat/completions", &key, body).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_str(&events.concat()).expect("JSON");
    assert_eq!(answer["choices"][0]["message"]["content"], "You said: count these words");
    assert_eq!(answer["usage"]["completion_tokens"], 5);
    assert!(answer["usage"]["prompt_tokens"].as_u64().is_some_and(|n| n > 3));
}
