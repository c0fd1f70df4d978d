//! The usage ledger: what each run used, counted once.
//!
//! Runtime hosts deliver [`UsageRecord`]s at least once, in batches (a JSON
//! array posted to `/api/runtime/usage/`). [`ingest`] stores a batch in one
//! transaction with `INSERT … ON CONFLICT (idempotency_key) DO NOTHING`, so
//! a batch sent again, or a record repeated inside a batch, is counted once,
//! on SQLite and PostgreSQL alike, as multi-row `VALUES` of up to 500 rows.
//!
//! The record type mirrors `sandflow_runtime_host::usage::UsageRecord`
//! field for field; the control plane does not depend on the runtime host
//! (it must not pull wasmtime in), so the shape is pinned by a test instead.

use crate::db::{Db, Dialect, now_ms};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// What one run used, as the runtime host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// The run id: the ledger counts each key once.
    pub idempotency_key: String,
    /// Tenant (buyer organisation).
    pub tenant: String,
    /// Agent.
    pub agent: String,
    /// Subscription billed, when the key names one.
    pub subscription: Option<String>,
    /// `sha256:` digest of the flow component.
    pub flow_version: String,
    /// Fuel used.
    pub fuel: u64,
    /// LLM tokens sent.
    pub tokens_in: u64,
    /// LLM tokens received.
    pub tokens_out: u64,
    /// Wall time of the run, microseconds.
    pub wall_micros: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// Bytes the run's `http` capability received. Runtime hosts leave it
    /// out when zero (and older ones always do).
    #[serde(default)]
    pub http_bytes: u64,
    /// `completed`, the kind of failure (`node_error`, `out_of_fuel`, …),
    /// or `interrupted`: the host stopped during the run, which is counted
    /// with what it had used by its last model call.
    pub outcome: String,
    /// When the run started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The API key the run was called with; the ledger keeps the key's
    /// `last_used_at` from it. Older runtime hosts send none.
    #[serde(default)]
    pub key_id: Option<String>,
}

/// Most records one batch may hold (the runtime sends at most 1,000).
pub const MAX_BATCH: usize = 10_000;
/// Longest text field accepted, in bytes.
pub const MAX_TEXT: usize = 256;
/// Rows per `INSERT` statement: at most 16 parameters each, far under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameter limits.
const ROWS_PER_STATEMENT: usize = 500;
const COLUMNS: usize = 14;

/// What a batch did to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    /// Records newly counted.
    pub accepted: u64,
    /// Records already in the ledger (or repeated in the batch), ignored.
    pub duplicates: u64,
}

impl UsageRecord {
    /// Checks what the database cannot hold or should not be asked to:
    /// empty keys, oversized text, numbers over `i64::MAX`.
    pub fn check(&self, index: usize) -> Result<()> {
        let texts = [
            ("idempotency_key", Some(&self.idempotency_key)),
            ("tenant", Some(&self.tenant)),
            ("agent", Some(&self.agent)),
            ("subscription", self.subscription.as_ref()),
            ("flow_version", Some(&self.flow_version)),
            ("outcome", Some(&self.outcome)),
            ("key_id", self.key_id.as_ref()),
        ];
        for (field, value) in texts {
            let Some(value) = value else { continue };
            if value.len() > MAX_TEXT {
                return Err(Error::Invalid(format!("record {index}: `{field}` is longer than {MAX_TEXT} bytes")));
            }
            if value.is_empty() && field != "subscription" {
                return Err(Error::Invalid(format!("record {index}: `{field}` must not be empty")));
            }
        }
        let numbers = [
            ("fuel", self.fuel),
            ("tokens_in", self.tokens_in),
            ("tokens_out", self.tokens_out),
            ("wall_micros", self.wall_micros),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("http_bytes", self.http_bytes),
            ("started_at_ms", self.started_at_ms),
        ];
        for (field, value) in numbers {
            if i64::try_from(value).is_err() {
                return Err(Error::Invalid(format!("record {index}: `{field}` is over {}", i64::MAX)));
            }
        }
        Ok(())
    }
}

/// Stores a batch in one transaction; each idempotency key is counted once,
/// whether it was seen in an earlier batch or earlier in this one. Nothing
/// is stored when any record is invalid.
pub async fn ingest(db: &Db, records: &[UsageRecord]) -> Result<IngestOutcome> {
    if records.len() > MAX_BATCH {
        return Err(Error::Invalid(format!("a batch holds at most {MAX_BATCH} records; split it")));
    }
    for (index, record) in records.iter().enumerate() {
        record.check(index)?;
    }
    // Insert in key order, each key once: concurrent batches that share
    // keys (a runtime host retrying while another delivers) then take the
    // keys' index locks in the same order and cannot deadlock on
    // PostgreSQL; repeats inside the batch are not sent at all.
    let mut sorted: Vec<&UsageRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
    sorted.dedup_by(|a, b| a.idempotency_key == b.idempotency_key);
    let now = now_ms();
    let dialect = db.dialect();
    let mut accepted = 0;
    let mut tx = db.begin().await?;
    for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
        let sql = if chunk.len() == ROWS_PER_STATEMENT {
            static FULL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
            let slot = &FULL[usize::from(dialect == Dialect::Postgres)];
            Cow::Borrowed(slot.get_or_init(|| insert_sql(dialect, ROWS_PER_STATEMENT)).as_str())
        } else {
            Cow::Owned(insert_sql(dialect, chunk.len()))
        };
        let mut query = sqlx::query(&sql);
        if dialect == Dialect::Postgres {
            query = query.bind(now);
        }
        for r in chunk {
            // `check` bounded every number, so these are exact.
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            query = query
                .bind(&r.idempotency_key)
                .bind(&r.tenant)
                .bind(&r.agent)
                .bind(&r.subscription)
                .bind(&r.flow_version)
                .bind(n(r.fuel))
                .bind(n(r.tokens_in))
                .bind(n(r.tokens_out))
                .bind(n(r.wall_micros))
                .bind(n(r.bytes_in))
                .bind(n(r.bytes_out))
                .bind(n(r.http_bytes))
                .bind(&r.outcome)
                .bind(n(r.started_at_ms));
            if dialect == Dialect::Sqlite {
                query = query.bind(now).bind(now);
            }
        }
        accepted += query.execute(&mut *tx).await?.rows_affected();
    }
    stamp_keys_used(&mut tx, dialect, records).await?;
    tx.commit().await?;
    let total = records.len() as u64;
    Ok(IngestOutcome { accepted, duplicates: total.saturating_sub(accepted) })
}

/// Moves each named key's `last_used_at` forward to its latest run in the
/// batch (never back: batches arrive in any order, and again), in one
/// `UPDATE … FROM (VALUES …)` per [`KEYS_PER_STATEMENT`] keys, however many
/// keys a batch names. Keys go in id order, so concurrent batches lock
/// their rows in the same order; a key id the ledger does not know (a key
/// of another control plane, or deleted since) matches no row.
async fn stamp_keys_used(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    records: &[UsageRecord],
) -> Result<()> {
    let mut latest = std::collections::BTreeMap::<&str, u64>::new();
    for record in records {
        if let Some(key) = record.key_id.as_deref() {
            let at = latest.entry(key).or_default();
            *at = (*at).max(record.started_at_ms);
        }
    }
    let latest: Vec<(&str, u64)> = latest.into_iter().collect();
    for chunk in latest.chunks(KEYS_PER_STATEMENT) {
        let sql = stamp_sql(dialect, chunk.len());
        let mut query = sqlx::query(&sql);
        for (key, at) in chunk {
            query = query.bind(*key).bind(i64::try_from(*at).unwrap_or(i64::MAX));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Keys one `last_used_at` statement moves (two parameters each).
const KEYS_PER_STATEMENT: usize = 500;

/// `UPDATE agent_api_key … FROM (VALUES (id, at), …)` for `keys` keys.
fn stamp_sql(dialect: Dialect, keys: usize) -> String {
    let mut sql = String::from("UPDATE agent_api_key SET last_used_at = used.at FROM (");
    match dialect {
        Dialect::Postgres => sql.push_str("VALUES "),
        // SQLite names a VALUES list's columns column1, column2.
        Dialect::Sqlite => sql.push_str("SELECT column1 AS id, column2 AS at FROM (VALUES "),
    }
    for key in 0..keys {
        let sep = if key == 0 { "" } else { ", " };
        let _ = match dialect {
            Dialect::Postgres => write!(sql, "{sep}(CAST(${} AS TEXT), CAST(${} AS BIGINT))", 2 * key + 1, 2 * key + 2),
            Dialect::Sqlite => write!(sql, "{sep}(?, ?)"),
        };
    }
    sql.push_str(match dialect {
        Dialect::Postgres => ") AS used (id, at)",
        Dialect::Sqlite => ")) AS used",
    });
    sql.push_str(
        " WHERE agent_api_key.id = used.id \
         AND (agent_api_key.last_used_at IS NULL OR agent_api_key.last_used_at < used.at)",
    );
    sql
}

/// The multi-row insert for `rows` rows. PostgreSQL gets numbered
/// parameters with the shared timestamp as `$1`. SQLite gets plain `?` and
/// the timestamp twice per row: SQLite finds a numbered parameter's name by
/// a linear scan, which makes binding thousands of `$n` quadratic.
fn insert_sql(dialect: Dialect, rows: usize) -> String {
    let mut sql = String::with_capacity(250 + rows * 100);
    sql.push_str(
        "INSERT INTO usage_record (idempotency_key, tenant, agent, subscription, flow_version, fuel, \
         tokens_in, tokens_out, wall_micros, bytes_in, bytes_out, http_bytes, outcome, started_at_ms, created_at, \
         updated_at) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..COLUMNS {
            match dialect {
                Dialect::Postgres => {
                    let _ = write!(sql, "${}, ", 2 + row * COLUMNS + col);
                }
                Dialect::Sqlite => sql.push_str("?, "),
            }
        }
        sql.push_str(match dialect {
            Dialect::Postgres => "$1, $1)",
            Dialect::Sqlite => "?, ?)",
        });
    }
    sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_insert_has_sixteen_plain_parameters_per_row() {
        let sql = insert_sql(Dialect::Sqlite, 2);
        assert_eq!(sql.matches('?').count(), 32);
        assert!(!sql.contains('$'));
        assert!(sql.contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?,"));
        assert!(sql.ends_with("?) ON CONFLICT (idempotency_key) DO NOTHING"));
    }

    #[test]
    fn key_stamps_are_one_statement_per_chunk_of_keys() {
        let sql = stamp_sql(Dialect::Postgres, 2);
        assert!(sql.contains("FROM (VALUES (CAST($1 AS TEXT), CAST($2 AS BIGINT)), (CAST($3 AS TEXT), CAST($4 AS BIGINT))) AS used (id, at)"), "{sql}");
        let sql = stamp_sql(Dialect::Sqlite, 2);
        assert!(
            sql.contains("FROM (SELECT column1 AS id, column2 AS at FROM (VALUES (?, ?), (?, ?))) AS used"),
            "{sql}"
        );
    }

    #[test]
    fn postgres_insert_numbers_parameters_after_the_timestamp() {
        let sql = insert_sql(Dialect::Postgres, 2);
        assert!(sql.contains("($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $1, $1), ($16,"));
        assert!(sql.ends_with("$29, $1, $1) ON CONFLICT (idempotency_key) DO NOTHING"));
    }
}
