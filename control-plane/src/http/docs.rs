//! The API's own description: `GET /api/openapi.json` (the OpenAPI 3.1
//! document, generated from the handlers' `#[utoipa::path]` annotations),
//! `GET /api/docs` (a page that renders it, self-contained: no script,
//! style or font from anywhere else) and `GET /healthz`.
//!
//! What the annotations leave out is filled in once by [`finish`], by rule,
//! so every operation says it the same way:
//! - **security**: an operation that names none needs a signed-in user
//!   (`bearer` token or `session_cookie`); anonymous ones say `security(())`,
//!   runtime hosts' ones `runtime_token`;
//! - **error responses** (all with the [`ErrorBody`] shape): 401 where
//!   credentials are needed, 404 where the path names a resource, 400, 413,
//!   415 and 422 where there is a body, 422 where there is a query, 500
//!   everywhere. Refusals particular to an operation (403, 409, 503) are in
//!   its annotation.

use crate::AppState;
use crate::error::ErrorBody;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema as _, ToSchema as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Security scheme: the session token from `POST /api/auth/login`, as
/// `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";
/// Security scheme: the same session token in the `HttpOnly` cookie the
/// login sets (the console's way).
pub const SESSION_COOKIE: &str = "session_cookie";
/// Security scheme: the runtime hosts' token (`--runtime-token`).
pub const RUNTIME_TOKEN: &str = "runtime_token";

/// The tags, in the order the docs page shows them, with what they hold.
const TAGS: &[(&str, &str)] = &[
    ("auth", "Accounts and sessions. Signing in returns a bearer token and sets the session cookie."),
    ("users", "The signed-in user."),
    ("organizations", "Organisations, members and roles (owner, admin, member), and the request to become a provider."),
    ("admin", "What staff operators decide: provider requests and platform settings."),
    ("provider-agents", "Sellers' agents: Langflow exports validated, compiled and kept as immutable versions."),
    ("categories", "Catalog categories: anyone reads, operators write."),
    ("offerings", "What providers sell: draft → pending_review → active ⇄ paused → archived."),
    ("plans", "Prices and allowances of an offering, in integer minor units."),
    ("catalog", "The public marketplace: active offerings with the plans that can be ordered."),
    (
        "orders",
        "Buying a plan: pending_consumer → pending_provider → executing → done, or rejected / canceled / erred.",
    ),
    ("resources", "Subscriptions: one per provisioned order."),
    ("customer-agent-configs", "What buyers configure on their agents: persona, branding, widget."),
    ("agent-api-keys", "Keys that call a buyer's agent on the runtime (JWTs, shown once)."),
    ("quotas", "Per-tenant limits, set by operators."),
    ("analytics", "Usage from the ledger, per subscription, offering or for the platform."),
    ("runtime", "What runtime hosts call, with the runtime token: usage, the change feed, components."),
    ("meta", "Health, this document and its page."),
];

/// The document before the routes are merged in: info, security schemes,
/// the error body.
pub fn base() -> OpenApi {
    let info = InfoBuilder::new()
        .title("Sandflow control plane")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The management API of the Sandflow marketplace. Paths are accepted with or without a trailing \
             slash. Bodies are JSON (`content-type: application/json`) and unknown fields are refused. Every \
             refusal has the body `{\"detail\", \"code\"}` (`ErrorBody`); a failed request changes nothing. \
             Someone outside an organisation gets 404 for its objects, as if they did not exist; a member \
             whose role is too weak gets 403.",
        ))
        .build();
    let mut openapi = OpenApiBuilder::new().info(info).build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The `token` that `POST /api/auth/login` returns."))
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION_COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::SESSION_COOKIE,
            "The `HttpOnly` session cookie `POST /api/auth/login` sets (same token).",
        ))),
    );
    components.add_security_scheme(
        RUNTIME_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The runtime hosts' token (`--runtime-token`, `SANDFLOW_RUNTIME_TOKEN`); 503 when none is set.",
                ))
                .build(),
        ),
    );
    components.schemas.insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    let mut schemas = Vec::new();
    ErrorBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
    openapi
}

/// The standard error responses, by status: (name, description).
const STANDARD_ERRORS: &[(&str, &str, &str)] = &[
    ("400", "MalformedBody", "The body is not JSON (`malformed_body`)."),
    ("401", "Unauthorized", "No valid credentials (`unauthorized`)."),
    ("404", "NotFound", "No such resource, or not one the caller may see (`not_found`)."),
    ("413", "TooLarge", "The body is over the size limit (`too_large`)."),
    ("415", "UnsupportedMediaType", "The body is not `application/json` (`unsupported_media_type`)."),
    ("422", "Invalid", "The body or the query has the wrong shape or an invalid value (`invalid`)."),
    ("500", "Internal", "A bug or an outage on our side (`internal`); the cause is only logged."),
];

/// Completes the merged document: default security, the standard error
/// responses, the tags with their descriptions.
pub fn finish(mut openapi: OpenApi) -> OpenApi {
    let components = openapi.components.get_or_insert_with(Default::default);
    for (_, name, description) in STANDARD_ERRORS {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
        let response = ResponseBuilder::new().description(*description).content("application/json", content).build();
        components.responses.insert((*name).to_owned(), RefOr::T(response));
    }
    let signed_in = vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(SESSION_COOKIE, Vec::<String>::new()),
    ];
    let mut used_tags = Vec::new();
    for item in openapi.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
        for operation in operations.into_iter().flatten() {
            // Doc comments wrap; the summary is one line.
            operation.summary = operation.summary.take().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
            let security = operation.security.get_or_insert_with(|| signed_in.clone());
            let needs_credentials = !security.contains(&SecurityRequirement::default());
            add_errors(operation, needs_credentials);
            for tag in operation.tags.iter().flatten() {
                if !used_tags.contains(tag) {
                    used_tags.push(tag.clone());
                }
            }
        }
    }
    let mut tags: Vec<_> = TAGS
        .iter()
        .filter(|(name, _)| used_tags.iter().any(|t| t == name))
        .map(|(name, description)| TagBuilder::new().name(*name).description(Some(*description)).build())
        .collect();
    for tag in used_tags.iter().filter(|t| !TAGS.iter().any(|(name, _)| name == t)) {
        tags.push(TagBuilder::new().name(tag.clone()).build());
    }
    openapi.tags = Some(tags);
    openapi
}

fn add_errors(operation: &mut Operation, needs_credentials: bool) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let in_path = parameters.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query = parameters.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let body = operation.request_body.is_some();
    for (status, name, _) in STANDARD_ERRORS {
        let applies = match *status {
            "401" => needs_credentials,
            "404" => in_path,
            "400" | "413" | "415" => body,
            "422" => body || in_query,
            _ => true,
        };
        if applies {
            operation
                .responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
}

/// The routes: the document, its page, and the health check.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged(
        "meta",
        OpenApiRouter::new().routes(routes!(openapi_json)).routes(routes!(docs_page)).routes(routes!(health)),
    )
}

/// The document, serialised once.
fn document() -> &'static [u8] {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_vec(&super::openapi()).unwrap_or_default())
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object)),
)]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// A page that renders this document: operations by tag, with their
/// parameters, bodies, responses and security. It loads nothing but the
/// document.
#[utoipa::path(
    get,
    path = "/api/docs",
    security(()),
    responses((status = 200, description = "The docs page.", body = String, content_type = "text/html")),
)]
async fn docs_page() -> Response {
    // Nothing but this page and the document may load: the page works
    // offline and cannot be made to pull in someone else's script.
    let policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";
    ([(header::CONTENT_SECURITY_POLICY, policy)], Html(include_str!("docs.html"))).into_response()
}

/// Liveness: `ok`.
#[utoipa::path(
    get,
    path = "/healthz",
    security(()),
    responses((status = 200, description = "The server is up.", body = String, content_type = "text/plain")),
)]
async fn health() -> &'static str {
    "ok"
}
