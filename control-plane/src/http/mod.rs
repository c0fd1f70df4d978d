//! The management HTTP API: one module per resource, each with `router()`.
//!
//! Paths are accepted with or without a trailing slash
//! (`/api/provider-agents/` and `/api/provider-agents` are the same), since
//! existing clients use the slash. Bodies are JSON only, bounded by
//! [`Config::max_body_bytes`](crate::config::Config::max_body_bytes), and
//! unknown fields are refused.
//!
//! Every route is registered from its handler's `#[utoipa::path]`
//! annotation (utoipa-axum's `routes!`), so the OpenAPI document served at
//! `GET /api/openapi.json` ([`openapi`]) lists exactly the routes the router
//! answers; [`docs`] renders it at `GET /api/docs`.

pub mod admin;
pub mod agent_configs;
pub mod agent_secrets;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod catalog;
pub mod categories;
pub mod docs;
pub mod offerings;
pub mod orders;
pub mod organizations;
pub mod paging;
pub mod parties;
pub mod plans;
pub mod provider_agents;
pub mod quotas;
pub mod resources;
pub mod runtime;
pub mod seller_secrets;
pub mod settings;
pub mod training_documents;
pub mod usage;
pub mod users;

use crate::AppState;
use crate::error::{Error, ErrorBody, ErrorCode};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;
use tower::ServiceExt as _;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

/// Every route, with tracing, the body limit and JSON fallbacks.
pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(trace))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state);
    // Normalise the path before routing (a layer on the router itself
    // would run after it).
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(api.oneshot(strip_trailing_slash(request)).await.into_response()) }
    }))
}

/// Every route with its OpenAPI description: one `router()` per module.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::base())
        .merge(auth::router())
        .merge(users::router())
        .merge(organizations::router())
        .merge(admin::router())
        .merge(provider_agents::router())
        .merge(usage::router())
        .merge(categories::router())
        .merge(offerings::router())
        .merge(plans::router())
        .merge(catalog::router())
        .merge(orders::router())
        .merge(resources::router())
        .merge(runtime::router())
        .merge(agent_configs::router())
        .merge(agent_secrets::router())
        .merge(seller_secrets::router())
        .merge(api_keys::router())
        .merge(quotas::router())
        .merge(settings::router())
        .merge(analytics::router())
        .merge(training_documents::router())
        .merge(docs::router())
}

/// The OpenAPI 3.1 document of the management API, built from the same
/// annotations that register the routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::finish(api().into_openapi())
}

/// Gives every operation of a module's router `tag` and an operation id
/// `<tag>.<handler>` (handler names repeat across modules).
fn tagged(tag: &str, mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
        for operation in operations.into_iter().flatten() {
            operation.tags = Some(vec![tag.to_owned()]);
            let id = operation.operation_id.take().unwrap_or_default();
            operation.operation_id = Some(format!("{tag}.{id}"));
        }
    }
    router
}

fn strip_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// One span per request, named by the matched route template (never the raw
/// path, which holds ids); health checks log at DEBUG.
async fn trace(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("control_plane.request", %method, route = %route, status = tracing::field::Empty);
    let started = Instant::now();
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let micros = started.elapsed().as_micros();
        if route == "/healthz" {
            tracing::debug!(status, micros, "request");
        } else {
            tracing::info!(status, micros, "request");
        }
        response
    }
    .instrument(span)
    .await
}

async fn not_found(uri: Uri) -> Error {
    Error::NotFound(format!("no route for `{}`: see the API list in the README", uri.path()))
}

async fn method_not_allowed() -> Response {
    let body = ErrorBody::new(ErrorCode::MethodNotAllowed, "this route does not take that method");
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

fn check_json_content_type(request: &Request) -> Result<(), Error> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let is_json = content_type.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if is_json {
        return Ok(());
    }
    Err(Error::UnsupportedMediaType(format!(
        "the body must be JSON: send `content-type: application/json` (got {})",
        content_type.map_or_else(|| "none".to_owned(), |ct| format!("`{ct}`"))
    )))
}

async fn read_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge("the body is over the size limit (--max-body-bytes)".into())
        } else {
            Error::MalformedBody(format!("the body could not be read: {rejection}"))
        }
    })
}

/// The raw body of a JSON request: content type checked, size bounded.
async fn json_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Error> {
    check_json_content_type(&request)?;
    read_bytes(request, state).await
}

/// Parses a JSON body: bad syntax is a 400, the wrong shape (unknown or
/// missing fields, wrong types) a 422, each naming the line and column.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        let detail = format!("the body is not valid: {e}");
        match e.classify() {
            serde_json::error::Category::Data => Error::Invalid(detail),
            _ => Error::MalformedBody(detail),
        }
    })
}

/// `T` read only from a JSON object. serde's derived `Deserialize` also
/// takes an array for a struct (fields by position), which would let
/// `["Acme"]` stand for `{"name": "Acme"}`; bodies are objects.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(OnlyMaps(PhantomData)).map(Object)
    }
}

/// A JSON object body of type `T` (which should deny unknown fields).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = json_bytes(request, state).await?;
        parse_json::<Object<T>>(&bytes).map(|Object(body)| Self(body))
    }
}

/// A JSON array body of objects of type `T`.
#[derive(Debug)]
pub struct JsonList<T>(pub Vec<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonList<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = json_bytes(request, state).await?;
        let items: Vec<Object<T>> = parse_json(&bytes)?;
        Ok(Self(items.into_iter().map(|Object(item)| item).collect()))
    }
}

/// A JSON request body that may be left out: an empty body (with or without
/// a content type) is `T::default()`.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let content_type = check_json_content_type(&request);
        let bytes = read_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        content_type?;
        parse_json::<Object<T>>(&bytes).map(|Object(body)| Self(body))
    }
}

/// A body that must be empty or `{}`: for actions that take no input
/// (with [`OptionalJsonBody`]), so unknown fields are still refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The raw bytes of a JSON body (a Langflow export, handed to the compiler
/// as uploaded so diagnostics point into it).
#[derive(Debug)]
pub struct RawJson(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        json_bytes(request, state).await.map(Self)
    }
}

/// Path parameters; a malformed one is a 404 in our error shape.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for Error {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::NotFound(format!("no such resource: {}", rejection.body_text()))
    }
}

/// Query parameters; unknown or malformed ones are a 422 in our error shape.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for Error {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::Invalid(format!("the query string is not valid: {}", rejection.body_text()))
    }
}

/// Checks a required text field: trimmed, not empty, at most `max` chars.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Invalid(format!("`{field}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(Error::Invalid(format!("`{field}` must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// For `#[serde(default, deserialize_with = "nullable")]` on an
/// `Option<Option<T>>` field of a PATCH body: absent is `None` (keep),
/// `null` is `Some(None)` (clear), a value is `Some(Some(v))`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Checks that a number is not negative.
pub fn non_negative(field: &str, value: i64) -> Result<i64, Error> {
    if value < 0 {
        return Err(Error::Invalid(format!("`{field}` must not be negative")));
    }
    Ok(value)
}
