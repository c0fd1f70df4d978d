//! Durable background jobs: rows of `job` (`kind`, JSON `payload`, `state`
//! `queued | running | done | failed`, `attempts`, `run_after`,
//! `last_error`), enqueued in the same transaction as the change that needs
//! them, so a job exists exactly when its cause was committed.
//!
//! A worker ([`spawn_worker`]; [`serve`](crate::serve) starts one) claims
//! one due job at a time with a guarded `UPDATE … WHERE state = 'queued'`,
//! so two workers never run the same job. A failed attempt is retried after
//! `--job-backoff-ms`, doubling each time, until `--job-max-attempts`; then
//! the job is `failed` and its cause is told (an order becomes `erred`). A
//! job left `running` by a process that died is queued again on start
//! ([`recover`]), and one left `running` for longer than [`LEASE_MS`] (its
//! worker stalled, died on another replica, or could not record how the
//! job went) is claimed again by any worker; handlers are idempotent, so
//! running one twice does no harm.

use crate::AppState;
use crate::db::{Db, new_id, now_ms};
use crate::error::{Error, Result};
use crate::provisioning;
use serde_json::Value;
use sqlx::{Any, Row, Transaction};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Provisions an order that reached `executing`: payload `{"order_id"}`.
pub const PROVISION: &str = "provision";
/// Deprovisions a resource that is `terminating`: payload `{"resource_id"}`.
pub const DEPROVISION: &str = "deprovision";

/// How often an idle worker looks for due jobs (retries become due without
/// anyone waking it).
const POLL: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;
/// How long a claimed job is its worker's: past it, the job is taken for
/// abandoned and claimed again.
pub const LEASE_MS: i64 = 600_000;

/// Queues a job inside `tx`; call [`wake`] after committing.
pub async fn enqueue(tx: &mut Transaction<'_, Any>, kind: &str, payload: &Value) -> Result<String> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO job (id, kind, payload, state, attempts, run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, 'queued', 0, $4, $4, $4)",
    )
    .bind(&id)
    .bind(kind)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Tells an idle worker that a job was queued.
pub fn wake(state: &AppState) {
    state.jobs.notify_one();
}

/// What running one job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Done,
    /// It failed and will be tried again.
    Retrying(String),
    /// It failed for the last time.
    Failed(String),
}

/// A job that was run.
#[derive(Debug, Clone)]
pub struct Ran {
    /// Job id.
    pub id: String,
    /// Job kind.
    pub kind: String,
    /// How it went.
    pub outcome: Outcome,
}

struct Claimed {
    id: String,
    kind: String,
    payload: Value,
    attempts: i64,
}

/// Queues again every job left `running` (by a process that stopped while
/// running it); [`serve`](crate::serve) calls it on start. Returns how
/// many. Another live process's running job would be run twice, which the
/// handlers tolerate (they are idempotent).
pub async fn recover(db: &Db) -> Result<u64> {
    let moved = sqlx::query("UPDATE job SET state = 'queued', updated_at = $1 WHERE state = 'running'")
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    Ok(moved.rows_affected())
}

async fn claim(state: &AppState) -> Result<Option<Claimed>> {
    let now = now_ms();
    // Due: queued and past its backoff, or running past its lease. The
    // outer guard repeats the condition, so of two workers one wins.
    let due = "((state = 'queued' AND run_after <= $1) OR (state = 'running' AND updated_at < $2))";
    let row = sqlx::query(&format!(
        "UPDATE job SET state = 'running', attempts = attempts + 1, updated_at = $1 \
         WHERE id = (SELECT id FROM job WHERE {due} ORDER BY run_after, id LIMIT 1) \
         AND {due} RETURNING id, kind, payload, attempts"
    ))
    .bind(now)
    .bind(now.saturating_sub(LEASE_MS))
    .fetch_optional(state.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let payload: String = row.try_get("payload")?;
    Ok(Some(Claimed {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload).map_err(Error::internal)?,
        attempts: row.try_get("attempts")?,
    }))
}

/// The text field `key` of a job's payload.
pub fn payload_text<'a>(payload: &'a Value, key: &str) -> Result<&'a str> {
    payload.get(key).and_then(Value::as_str).ok_or_else(|| Error::internal(format!("job payload lacks `{key}`")))
}

async fn handle(state: &AppState, job: &Claimed) -> Result<()> {
    match job.kind.as_str() {
        PROVISION => provisioning::provision(state, payload_text(&job.payload, "order_id")?).await,
        DEPROVISION => provisioning::deprovision(state, payload_text(&job.payload, "resource_id")?).await,
        crate::documents::PROCESS => crate::documents::process(state, payload_text(&job.payload, "document_id")?).await,
        other => Err(Error::internal(format!("unknown job kind `{other}`"))),
    }
}

/// Claims one due job and runs it; `None` when nothing is due.
pub async fn run_next(state: &AppState) -> Result<Option<Ran>> {
    let Some(job) = claim(state).await? else { return Ok(None) };
    let outcome = match handle(state, &job).await {
        Ok(()) => {
            sqlx::query("UPDATE job SET state = 'done', updated_at = $1 WHERE id = $2 AND state = 'running'")
                .bind(now_ms())
                .bind(&job.id)
                .execute(state.db.pool())
                .await?;
            Outcome::Done
        }
        Err(error) => record_failure(state, &job, &error).await?,
    };
    tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, outcome = ?outcome, "job ran");
    Ok(Some(Ran { id: job.id, kind: job.kind, outcome }))
}

async fn record_failure(state: &AppState, job: &Claimed, error: &Error) -> Result<Outcome> {
    // Users see the error's own text (a 5xx cause stays generic); the job
    // row keeps the full cause for operators.
    let shown = error.to_string();
    let cause = format!("{error:?}");
    let last = job.attempts >= i64::from(state.config.job_max_attempts);
    let exponent = u32::try_from(job.attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(32);
    let delay = state.config.job_backoff_ms.saturating_mul(1u64 << exponent).min(MAX_BACKOFF_MS);
    let run_after = now_ms().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE job SET state = $1, run_after = $2, last_error = $3, updated_at = $4 WHERE id = $5 AND state = 'running'",
    )
    .bind(if last { "failed" } else { "queued" })
    .bind(run_after)
    .bind(&cause)
    .bind(now_ms())
    .bind(&job.id)
    .execute(&mut *tx)
    .await?;
    provisioning::job_failed(&mut tx, &job.kind, &job.payload, &shown, last).await?;
    tx.commit().await?;
    tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, last, error = %cause, "job failed");
    Ok(if last { Outcome::Failed(shown) } else { Outcome::Retrying(shown) })
}

/// Runs every job that is due now, one after another (retries that become
/// due meanwhile included); returns what ran. For tests and tools.
pub async fn run_due(state: &AppState) -> Result<Vec<Ran>> {
    let mut ran = Vec::new();
    while let Some(one) = run_next(state).await? {
        ran.push(one);
    }
    Ok(ran)
}

/// Starts a worker that runs due jobs until the task is aborted. Call
/// [`recover`] once before the first worker of a process starts.
pub fn spawn_worker(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match run_next(&state).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => tracing::error!(error = ?e, "job worker"),
            }
            tokio::select! {
                () = state.jobs.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}
