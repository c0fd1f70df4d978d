//! Reading a provider's answer: bounded bodies, server-sent events, and the
//! accumulator that turns streamed deltas back into one completion.

use crate::bindings::node::sandflow::host::llm::{Completion, TokenUsage, ToolCall};
use futures_util::StreamExt;

/// The whole body as text, refusing more than `limit` bytes.
pub async fn read_limited(response: reqwest::Response, limit: usize) -> Result<String, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| e.without_url().to_string())?;
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())
}

/// Calls `on_event(event_name, data)` for each server-sent event of the
/// body, as it arrives. Reads at most `limit` bytes.
pub async fn events(
    response: reqwest::Response,
    limit: usize,
    mut on_event: impl FnMut(&str, &str),
) -> Result<(), String> {
    let mut chunks = response.bytes_stream();
    let mut buffer = String::new();
    let mut pending = Vec::new();
    let mut read = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| e.without_url().to_string())?;
        read += chunk.len();
        if read > limit {
            return Err(format!("the stream is larger than {limit} bytes"));
        }
        // A UTF-8 character may straddle two chunks: keep incomplete bytes.
        pending.extend_from_slice(&chunk);
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Err("the stream is not UTF-8".into()),
        };
        buffer.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
        pending.drain(..valid);
        while let Some(end) = frame_end(&buffer) {
            let frame: String = buffer.drain(..end.0 + end.1).collect();
            dispatch(&frame[..end.0], &mut on_event);
        }
    }
    if !buffer.trim().is_empty() {
        dispatch(&buffer, &mut on_event);
    }
    Ok(())
}

/// Where the first event of `buffer` ends: its length and the separator's.
fn frame_end(buffer: &str) -> Option<(usize, usize)> {
    let lf = buffer.find("\n\n").map(|i| (i, 2));
    let crlf = buffer.find("\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn dispatch(frame: &str, on_event: &mut impl FnMut(&str, &str)) {
    let mut event = "message";
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if !data.is_empty() {
        on_event(event, &data);
    }
}

/// A tool call being streamed in pieces.
#[derive(Debug, Default)]
pub struct PartialCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Deltas of a streamed completion, collected.
#[derive(Debug)]
pub struct Accumulator {
    pub text: String,
    pub calls: Vec<PartialCall>,
    pub finish: String,
    pub usage: TokenUsage,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self {
            text: String::new(),
            calls: Vec::new(),
            finish: String::new(),
            usage: TokenUsage { input_tokens: 0, output_tokens: 0 },
        }
    }
}

impl Accumulator {
    /// The call at `index`, created if this is its first piece.
    pub fn call(&mut self, index: usize) -> Option<&mut PartialCall> {
        // A hostile server could name index 4 billion; calls come in order.
        if index > self.calls.len() || index > 128 {
            return None;
        }
        if index == self.calls.len() {
            self.calls.push(PartialCall::default());
        }
        self.calls.get_mut(index)
    }

    /// The completion these deltas add up to.
    pub fn finish(self) -> Completion {
        let calls = self
            .calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: if c.arguments.trim().is_empty() { "{}".into() } else { c.arguments },
            })
            .collect::<Vec<_>>();
        let finish = if self.finish.is_empty() {
            if calls.is_empty() { "stop".into() } else { "tool_calls".into() }
        } else {
            self.finish
        };
        super::completion(self.text, calls, finish, self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_on_blank_lines() {
        let mut seen = Vec::new();
        let mut on = |e: &str, d: &str| seen.push((e.to_owned(), d.to_owned()));
        dispatch("event: message_start\ndata: {\"a\":1}", &mut on);
        dispatch("data: [DONE]", &mut on);
        dispatch(": comment only", &mut on);
        assert_eq!(seen, [("message_start".into(), "{\"a\":1}".into()), ("message".into(), "[DONE]".into())]);
        assert_eq!(frame_end("data: x\r\n\r\ndata: y\n\n"), Some((7, 4)));
    }

    #[test]
    fn hostile_call_indexes_are_ignored() {
        let mut acc = Accumulator::default();
        assert!(acc.call(5).is_none());
        assert!(acc.call(0).is_some());
        assert!(acc.call(1).is_some());
        assert!(acc.call(4_000_000_000).is_none());
    }
}
