//! AssemblyAI Transcriber (`AssemblyAITranscriber`): transcribes audio
//! with AssemblyAI's REST API (`https://api.assemblyai.com/v2`) as the
//! Langflow 1.13 component of the Meeting Summary starter does, through
//! the host's `http` capability (the operator allows `api.assemblyai.com`,
//! or routes it with `--http-route`).
//!
//! `POST /transcript` with `audio_url` (plus `speaker_labels` and
//! `language_code` when set), then `GET /transcript/{id}` every 3 seconds
//! until `completed` (output `transcript`: a Message with the text) or
//! `error` (`AssemblyAI transcription error: …`), or until `poll_timeout`
//! seconds have been waited (`Transcription timed out after …s (last
//! status: …).`); the run's deadline bounds it too.
//!
//! The key is the `api_key` field: a key written into the flow or a
//! tweak, or a global variable, which the host fills into the
//! `authorization` header without the node seeing it.
//!
//! Departure: an `audio_url` that is not an `http(s)` URL is a file of the
//! tenant's storage (the `file_path` of `POST /api/v1/files/upload/{flow}`),
//! read through the `files` capability and uploaded first (`POST /upload`,
//! whose `upload_url` becomes the `audio_url`), as AssemblyAI's own SDK
//! does with local files; Langflow would send the name to AssemblyAI as is.

use crate::web;
use sandflow_sdk::host::{files, http};
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Value, flag, message, number, output, port, secret_field, text_or, value,
};
use serde_json::{Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "assemblyai-transcriber";

/// AssemblyAI's API, as the component's `BASE_URL`.
pub const BASE_URL: &str = "https://api.assemblyai.com/v2";
/// Seconds between polls (`time.sleep(3)`).
const POLL_SECONDS: i64 = 3;
/// Each request's timeout (`timeout=30`).
const REQUEST_SECONDS: f64 = 30.0;

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "AssemblyAI Transcriber".into(),
        description: "Transcribe an audio file with AssemblyAI via its current REST API.".into(),
        inputs: vec![
            port("api_key", &[], true),
            port("audio_url", &["Message"], true),
            port("speaker_labels", &[], false),
            port("language_code", &["Message"], false),
            port("poll_timeout", &[], false),
        ],
        outputs: vec![port("transcript", &["Message"], false)],
    }
}

/// What one poll's answer means.
#[derive(Debug, PartialEq)]
pub enum Poll {
    /// `completed`: the transcript's text.
    Done(String),
    /// Not finished; wait and poll again.
    Wait,
    /// `error`, or waited long enough: the node's error.
    Fail(String),
}

/// Langflow's loop body for one poll's JSON, having waited `waited` of
/// `timeout` seconds.
pub fn poll(data: &Json, waited: i64, timeout: i64) -> Poll {
    let status = data.get("status").and_then(Json::as_str);
    match status {
        Some("completed") => Poll::Done(data.get("text").and_then(Json::as_str).unwrap_or_default().to_owned()),
        Some("error") => {
            let error = match data.get("error") {
                Some(Json::String(e)) => e.clone(),
                Some(Json::Null) | None => "Transcription failed.".to_owned(),
                Some(other) => other.to_string(),
            };
            Poll::Fail(format!("AssemblyAI transcription error: {error}"))
        }
        _ if waited >= timeout => Poll::Fail(format!(
            "Transcription timed out after {timeout}s (last status: {}).",
            status.map_or_else(|| "None".to_owned(), str::to_owned)
        )),
        _ => Poll::Wait,
    }
}

/// The `POST /transcript` body.
pub fn transcript_request(audio_url: &str, speaker_labels: bool, language_code: &str) -> Json {
    let mut body = json!({"audio_url": audio_url});
    if speaker_labels {
        body["speaker_labels"] = Json::Bool(true);
    }
    if !language_code.trim().is_empty() {
        body["language_code"] = Json::String(language_code.trim().to_owned());
    }
    body
}

/// The `authorization` header: the key written into the flow or a tweak,
/// else a reference the host fills with the global variable the flow
/// names (such a field never reaches the node).
fn authorization(inv: &Invocation) -> Result<String, NodeError> {
    match value(inv, "api_key") {
        None => Ok(secret_field("api_key")),
        Some(_) => {
            let key = text_or(inv, "api_key", "").trim().to_owned();
            if key.is_empty() {
                return Err(NodeError::InvalidInput(
                    "AssemblyAI API Key is required. Set the node's `api_key` field (a global variable, or a tweak)."
                        .into(),
                ));
            }
            Ok(key)
        }
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let key = authorization(inv)?;
    let audio = text_or(inv, "audio_url", "").trim().to_owned();
    if audio.is_empty() {
        return Err(NodeError::InvalidInput("An Audio File URL is required.".into()));
    }
    let headers = vec![("authorization".to_owned(), key)];
    let audio_url = if is_url(&audio) { audio } else { upload(&audio, &headers)? };
    let body = transcript_request(&audio_url, flag(inv, "speaker_labels", false), &text_or(inv, "language_code", ""));
    let created = call(
        "POST",
        &format!("{BASE_URL}/transcript"),
        &headers,
        Some(("application/json", body.to_string().into_bytes())),
    )?;
    let id = match created.get("id") {
        Some(Json::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(NodeError::Failed("AssemblyAI's answer to the transcript request has no `id`".into())),
    };
    // `self.poll_timeout or 300`.
    let timeout = number(inv, "poll_timeout").map_or(300, |n| n as i64);
    let timeout = if timeout == 0 { 300 } else { timeout };
    let mut waited = 0;
    loop {
        let data = call("GET", &format!("{BASE_URL}/transcript/{}", web::quote(&id)), &headers, None)?;
        match poll(&data, waited, timeout) {
            Poll::Done(text) => {
                return Ok(vec![output("transcript", Value::Message(message(text, "", "", &inv.session_id)))]);
            }
            Poll::Fail(why) => return Err(NodeError::Failed(why)),
            Poll::Wait => {
                http::wait((POLL_SECONDS * 1000) as u32)
                    .map_err(|e| NodeError::Failed(format!("waiting for the transcript: {}", web::describe(&e))))?;
                waited += POLL_SECONDS;
            }
        }
    }
}

fn is_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Uploads the stored file `name`; AssemblyAI's `upload_url` for it.
fn upload(name: &str, headers: &[(String, String)]) -> Result<String, NodeError> {
    let file = files::read(name).map_err(|e| crate::file::read_error(name, &e))?;
    let answer =
        call("POST", &format!("{BASE_URL}/upload"), headers, Some(("application/octet-stream", file.content)))?;
    match answer.get("upload_url") {
        Some(Json::String(url)) if !url.is_empty() => Ok(url.clone()),
        _ => Err(NodeError::Failed("AssemblyAI's answer to the upload has no `upload_url`".into())),
    }
}

/// One request, its JSON answer; an error status as `raise_for_status`
/// reports it, with AssemblyAI's `error` text.
fn call(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<(&str, Vec<u8>)>,
) -> Result<Json, NodeError> {
    let mut headers = headers.to_vec();
    let body = match body {
        Some((content_type, bytes)) => {
            headers.push(("content-type".into(), content_type.into()));
            bytes
        }
        None => Vec::new(),
    };
    let response = web::send(method, url, &headers, body, Some(REQUEST_SECONDS))
        .map_err(|e| NodeError::Failed(format!("AssemblyAI request failed: {}", web::describe(&e))))?;
    let json: Option<Json> = serde_json::from_slice(&response.body).ok();
    if !(200..300).contains(&response.status) {
        let kind = if response.status < 500 { "Client" } else { "Server" };
        let said = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Json::as_str)
            .map_or_else(String::new, |e| format!(": {e}"));
        return Err(NodeError::Failed(format!("{} {kind} Error for url: {url}{said}", response.status)));
    }
    json.ok_or_else(|| NodeError::Failed(format!("AssemblyAI answered {url} with something other than JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_as_langflow_does() {
        assert_eq!(poll(&json!({"status": "completed", "text": "Hello."}), 0, 300), Poll::Done("Hello.".into()));
        assert_eq!(poll(&json!({"status": "completed", "text": null}), 0, 300), Poll::Done(String::new()));
        assert_eq!(poll(&json!({"status": "queued"}), 297, 300), Poll::Wait);
        assert_eq!(poll(&json!({"status": "processing"}), 6, 300), Poll::Wait);
        assert_eq!(
            poll(&json!({"status": "error", "error": "Download error, unable to download"}), 0, 300),
            Poll::Fail("AssemblyAI transcription error: Download error, unable to download".into())
        );
        assert_eq!(
            poll(&json!({"status": "error"}), 0, 300),
            Poll::Fail("AssemblyAI transcription error: Transcription failed.".into())
        );
        assert_eq!(
            poll(&json!({"status": "processing"}), 6, 6),
            Poll::Fail("Transcription timed out after 6s (last status: processing).".into())
        );
        assert_eq!(poll(&json!({}), 3, 3), Poll::Fail("Transcription timed out after 3s (last status: None).".into()));
    }

    #[test]
    fn builds_the_transcript_request() {
        assert_eq!(transcript_request("https://a/x.mp3", false, " "), json!({"audio_url": "https://a/x.mp3"}));
        assert_eq!(
            transcript_request("https://a/x.mp3", true, " pt "),
            json!({"audio_url": "https://a/x.mp3", "speaker_labels": true, "language_code": "pt"})
        );
    }

    #[test]
    fn urls_and_stored_names() {
        assert!(is_url("https://assembly.ai/wildfires.mp3") && is_url("HTTP://a/b"));
        assert!(!is_url("meeting-flow/2024_meeting.mp3") && !is_url("file:///etc/passwd"));
    }
}
