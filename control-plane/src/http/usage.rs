//! `POST /api/runtime/usage/`: runtime hosts deliver usage batches here.

use super::JsonList;
use crate::AppState;
use crate::auth::RuntimeService;
use crate::error::Result;
use crate::usage::{IngestOutcome, UsageRecord, ingest};
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("runtime", OpenApiRouter::new().routes(routes!(ingest_batch)))
}

/// Takes a JSON array of usage records; answers how many were new and how
/// many were already counted. A batch is stored whole or not at all.
/// Runtime hosts only.
#[utoipa::path(
    post,
    path = "/api/runtime/usage",
    security(("runtime_token" = [])),
    request_body = Vec<UsageRecord>,
    responses(
        (status = 200, description = "What the batch did to the ledger.", body = IngestOutcome),
        (status = 503, description = "No runtime token is configured (`unavailable`).",
         body = crate::error::ErrorBody),
    ),
)]
async fn ingest_batch(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    JsonList(records): JsonList<UsageRecord>,
) -> Result<Json<IngestOutcome>> {
    let outcome = ingest(&state.db, &records).await?;
    tracing::debug!(accepted = outcome.accepted, duplicates = outcome.duplicates, "usage batch");
    Ok(Json(outcome))
}
