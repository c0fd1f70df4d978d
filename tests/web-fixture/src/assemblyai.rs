//! An AssemblyAI-compatible transcription API under `/assemblyai/v2`
//! (route `https://api.assemblyai.com` to `{url}/assemblyai`).
//!
//! - `POST /upload` (raw bytes): answers `{"upload_url"}`.
//! - `POST /transcript` (`{"audio_url", …}`): a job, `queued`.
//! - `GET /transcript/{id}`: `processing` at the first poll, then
//!   `completed` with the text. The "audio" is text: an uploaded file's
//!   transcript is its own bytes, a URL's is [`URL_TRANSCRIPT`].
//!   Audio saying `error` ends in status `error` ([`ERROR_TEXT`]),
//!   `never` stays `processing`, `oversized` completes with a transcript
//!   of [`OVERSIZED_BYTES`].
//!
//! Every request needs `authorization: `[`API_KEY`], else 401 as
//! AssemblyAI answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The key the fixture accepts.
pub const API_KEY: &str = "aai-test-key-7f3c";
/// The transcript of audio given by URL.
pub const URL_TRANSCRIPT: &str = "Smoke from Canadian wildfires is drifting south; air quality alerts are in effect.";
/// The `error` of a failed transcription.
pub const ERROR_TEXT: &str = "Transcoding failed. File does not appear to contain audio.";
/// Size of the oversized transcript.
pub const OVERSIZED_BYTES: usize = 6 << 20;

#[derive(Debug, Default)]
pub(crate) struct Jobs {
    uploads: Vec<Vec<u8>>,
    transcripts: Vec<Job>,
}

#[derive(Debug)]
struct Job {
    request: Value,
    audio: String,
    polls: u32,
}

pub(crate) type Shared = Arc<Mutex<Jobs>>;

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let key = headers.get("authorization").and_then(|v| v.to_str().ok());
    (key != Some(API_KEY)).then(|| {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "Authentication error, API token missing/invalid"})))
            .into_response()
    })
}

pub(crate) async fn upload(State(jobs): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let Ok(mut jobs) = jobs.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    jobs.uploads.push(body.to_vec());
    let url = format!("https://cdn.assemblyai.com/upload/{}", jobs.uploads.len() - 1);
    Json(json!({"upload_url": url})).into_response()
}

pub(crate) async fn create(State(jobs): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Invalid JSON body"}))).into_response();
    };
    let Some(audio_url) = request.get("audio_url").and_then(Value::as_str).map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "audio_url is required"}))).into_response();
    };
    let Ok(mut jobs) = jobs.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let uploaded = audio_url
        .strip_prefix("https://cdn.assemblyai.com/upload/")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| jobs.uploads.get(n));
    let audio = match uploaded {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None if audio_url.contains("error") || audio_url.contains("never") || audio_url.contains("oversized") => {
            audio_url.clone()
        }
        None => URL_TRANSCRIPT.to_owned(),
    };
    jobs.transcripts.push(Job { request, audio, polls: 0 });
    let id = format!("tr-{}", jobs.transcripts.len() - 1);
    Json(json!({"id": id, "status": "queued", "audio_url": audio_url, "text": null, "error": null})).into_response()
}

pub(crate) async fn poll(State(jobs): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let Ok(mut jobs) = jobs.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let job = id.strip_prefix("tr-").and_then(|n| n.parse::<usize>().ok()).and_then(|n| jobs.transcripts.get_mut(n));
    let Some(job) = job else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "Transcript ID not found"}))).into_response();
    };
    job.polls += 1;
    let mut answer = json!({
        "id": id,
        "audio_url": job.request["audio_url"],
        "speaker_labels": job.request.get("speaker_labels").cloned().unwrap_or(Value::Bool(false)),
        "language_code": job.request.get("language_code").cloned().unwrap_or(json!("en_us")),
        "status": "processing",
        "text": null,
        "error": null,
    });
    if job.polls < 2 || job.audio.contains("never") {
        return Json(answer).into_response();
    }
    if job.audio.contains("error") {
        answer["status"] = json!("error");
        answer["error"] = json!(ERROR_TEXT);
        return Json(answer).into_response();
    }
    let text = if job.audio.contains("oversized") { "word ".repeat(OVERSIZED_BYTES / 5) } else { job.audio.clone() };
    answer["status"] = json!("completed");
    answer["confidence"] = json!(0.93);
    answer["audio_duration"] = json!(text.split_whitespace().count());
    answer["text"] = json!(text);
    Json(answer).into_response()
}
