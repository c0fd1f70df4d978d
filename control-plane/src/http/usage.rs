//! `POST /api/runtime/usage/`: runtime hosts deliver usage batches here.

use super::JsonList;
use crate::AppState;
use crate::auth::RuntimeService;
use crate::error::Result;
use crate::usage::{IngestOutcome, UsageRecord, ingest};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/runtime/usage", post(ingest_batch))
}

/// Takes a JSON array of usage records; answers how many were new and how
/// many were already counted. A batch is stored whole or not at all.
async fn ingest_batch(
    State(state): State<AppState>,
    _runtime: RuntimeService,
    JsonList(records): JsonList<UsageRecord>,
) -> Result<Json<IngestOutcome>> {
    let outcome = ingest(&state.db, &records).await?;
    tracing::debug!(accepted = outcome.accepted, duplicates = outcome.duplicates, "usage batch");
    Ok(Json(outcome))
}
