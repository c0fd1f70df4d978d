//! Calls from web pages on other origins: Langflow's embedded chat, and
//! any page calling an agent with a widget key.
//!
//! Like Langflow (FastAPI's CORS middleware letting every origin in), any
//! page may call, and browsers get the headers that let it read the
//! answer. What a page may do is its key's business: a widget key of an
//! agent whose widget settings list origins is refused from other pages
//! ([`super::ApiKey`]). Keys travel in headers, never cookies, so
//! credentials are never allowed.

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// Answers preflights, and lets the page that sent a request read its
/// answer.
pub(crate) async fn cors(request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return preflight(origin, request.headers());
    }
    let mut response = next.run(request).await;
    allow(response.headers_mut(), origin);
    response
}

/// The answer to a preflight: `GET`, `POST` and `DELETE` (the files
/// routes) with whatever headers the
/// page asked for (`x-api-key`, `content-type`, `authorization`).
fn preflight(origin: HeaderValue, asked: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow(headers, origin);
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
    if let Some(names) = asked.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, names.clone());
    }
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS));
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    // A page told to wait should be able to read for how long, and a
    // download's name.
    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after, content-disposition"));
    headers.append(VARY, HeaderValue::from_static("origin"));
}
