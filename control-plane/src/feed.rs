//! The runtime change feed: what runtime hosts must apply, in order.
//!
//! Every change is a row of `runtime_change` (`seq`, `created_at`, `body`
//! JSON) written in the same transaction as the state it reports, so the
//! feed never says more or less than the database holds. Hosts read it
//! with `GET /api/runtime/changes/?after=<seq>` ([`crate::http::runtime`]).
//! The kinds, exactly as hosts parse them:
//!
//! - `agent.provisioned`: `{"agent": {"id", "tenant", "subscription",
//!   "flow_id", "endpoint_name", "digest", "limits": {"fuel",
//!   "memory_bytes", "deadline_ms"}, "persona", "rpm", "widget_origins",
//!   "secrets"}}` (`widget_origins`: the pages the buyer's widget settings
//!   allow, whose widget keys the host takes; empty for any page;
//!   `secrets`: the names of the agent's secrets, the buyer's and the
//!   seller's, sorted, whose values hosts fetch with
//!   `GET /api/runtime/agents/{id}/secrets`: the feed is stored and paged,
//!   values are not put in it); sent again whenever the agent's
//!   configuration, secrets (the buyer's or its seller's) or limits change
//!   (hosts replace it);
//! - `agent.deprovisioned`: `{"agent_id"}`;
//! - `key.revoked`: `{"key_id", "exp"}`, `exp` the key's expiry as in its
//!   JWT (seconds since the Unix epoch), after which hosts forget it;
//! - `quota.set`: `{"tenant", "quota": {"runs", "fuel", "tokens", "rpm"}}`.
//!
//! Ordering: PostgreSQL hands out `seq` values at insert, not at commit, so
//! two writers could commit out of order and a reader that has seen the
//! later one would skip the earlier one for good. Every writer therefore
//! first updates the single `runtime_change_lock` row, which queues writers
//! until commit: `seq` order is commit order. (SQLite has one writer at a
//! time anyway.) Callers emit after their other writes, so the lock is
//! always the last one a transaction takes and writers cannot deadlock on it.

use crate::agent_config::Widget;
use crate::db::now_ms;
use crate::error::{Error, Result};
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

/// Appends one change; returns its `seq`.
pub async fn emit(tx: &mut Transaction<'_, Any>, body: &Value) -> Result<i64> {
    sqlx::query("UPDATE runtime_change_lock SET writes = writes + 1 WHERE id = 1").execute(&mut **tx).await?;
    let seq: i64 = sqlx::query_scalar("INSERT INTO runtime_change (created_at, body) VALUES ($1, $2) RETURNING seq")
        .bind(now_ms())
        .bind(body.to_string())
        .fetch_one(&mut **tx)
        .await?;
    Ok(seq)
}

/// Emits `agent.provisioned` for resource `id`, from what the database
/// holds now (flow version, plan, tenant quota, buyer's persona).
pub async fn agent_provisioned(tx: &mut Transaction<'_, Any>, id: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT r.id, r.organization_id, r.flow_version_id, v.digest, v.source, p.requests_per_minute, \
         q.fuel_per_run, q.memory_bytes_per_run, q.deadline_ms, c.persona, c.widget \
         FROM resource r JOIN flow_version v ON v.id = r.flow_version_id JOIN plan p ON p.id = r.plan_id \
         LEFT JOIN quota q ON q.organization_id = r.organization_id \
         LEFT JOIN customer_agent_config c ON c.resource_id = r.id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let flow_version: String = row.try_get("flow_version_id")?;
    let source: Vec<u8> = row.try_get("source")?;
    let export: Value = serde_json::from_slice(&source).unwrap_or(Value::Null);
    let flow_id = export.get("id").and_then(Value::as_str).map_or(flow_version, str::to_owned);
    let endpoint_name = export.get("endpoint_name").and_then(Value::as_str).map(str::to_owned);
    let persona: Option<String> = row.try_get("persona")?;
    let persona: Value = match persona {
        Some(text) => serde_json::from_str(&text).map_err(Error::internal)?,
        None => Value::Null,
    };
    let widget: Option<String> = row.try_get("widget")?;
    let widget_origins = match widget {
        Some(text) => serde_json::from_str::<Widget>(&text).map_err(Error::internal)?.allowed_origins,
        None => Vec::new(),
    };
    // Names only: hosts fetch the values with their token.
    let secrets = crate::stored_secrets::names(tx, id).await?;
    let agent = json!({
        "id": id,
        "tenant": row.try_get::<String, _>("organization_id")?,
        "subscription": id,
        "flow_id": flow_id,
        "endpoint_name": endpoint_name,
        "digest": row.try_get::<String, _>("digest")?,
        "limits": {
            "fuel": row.try_get::<Option<i64>, _>("fuel_per_run")?,
            "memory_bytes": row.try_get::<Option<i64>, _>("memory_bytes_per_run")?,
            "deadline_ms": row.try_get::<Option<i64>, _>("deadline_ms")?,
        },
        "persona": persona,
        "rpm": row.try_get::<Option<i64>, _>("requests_per_minute")?,
        "widget_origins": widget_origins,
        "secrets": secrets,
    });
    emit(tx, &json!({ "kind": "agent.provisioned", "agent": agent })).await
}

/// Whose resources [`lock_served_resources`] takes.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A tenant's (its quota changed).
    Tenant(&'a str),
    /// A plan's (its rate limit may have changed).
    Plan(&'a str),
    /// A provider agent's, of any of its flow versions (its seller's
    /// secrets changed).
    Agent(&'a str),
}

/// The resource states whose agent the hosts may be serving: `ok`,
/// `terminating` (until its `agent.deprovisioned`) and `erred` (a
/// termination that failed), as an SQL list.
pub const SERVED_STATES: &str = "('ok', 'terminating', 'erred')";

/// Locks and returns the resources of `holder` whose agent the hosts may
/// be serving ([`SERVED_STATES`]), whose `agent.provisioned` must be sent
/// again. Updates, not reads: they hold the rows, so a termination racing
/// this cannot slip its `agent.deprovisioned` in before them. One row at a
/// time in id order, so two changes of overlapping holders (a tenant's
/// quota, a plan, a seller's secrets) queue instead of deadlocking on
/// PostgreSQL. Call it before the transaction's first [`emit`] (the feed
/// lock is always taken last).
pub async fn lock_served_resources(tx: &mut Transaction<'_, Any>, holder: Holder<'_>) -> Result<Vec<String>> {
    let (whose, id) = match holder {
        Holder::Tenant(id) => ("organization_id = $1", id),
        Holder::Plan(id) => ("plan_id = $1", id),
        Holder::Agent(id) => ("flow_version_id IN (SELECT id FROM flow_version WHERE provider_agent_id = $1)", id),
    };
    let candidates: Vec<String> =
        sqlx::query_scalar(&format!("SELECT id FROM resource WHERE {whose} AND state IN {SERVED_STATES} ORDER BY id"))
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    let now = now_ms();
    let mut locked = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        // The state again: a termination may have finished in between.
        let still =
            sqlx::query(&format!("UPDATE resource SET updated_at = $1 WHERE id = $2 AND state IN {SERVED_STATES}"))
                .bind(now)
                .bind(&candidate)
                .execute(&mut **tx)
                .await?;
        if still.rows_affected() == 1 {
            locked.push(candidate);
        }
    }
    Ok(locked)
}

/// Emits `agent.provisioned` for each resource of `ids`.
pub async fn reprovision(tx: &mut Transaction<'_, Any>, ids: &[String]) -> Result<()> {
    for id in ids {
        agent_provisioned(tx, id).await?;
    }
    Ok(())
}

/// Emits `agent.deprovisioned` for resource `id`.
pub async fn agent_deprovisioned(tx: &mut Transaction<'_, Any>, id: &str) -> Result<i64> {
    emit(tx, &json!({ "kind": "agent.deprovisioned", "agent_id": id })).await
}

/// Emits `key.revoked` for agent API key `id`, which expires at
/// `expires_at_ms`.
pub async fn key_revoked(tx: &mut Transaction<'_, Any>, id: &str, expires_at_ms: i64) -> Result<i64> {
    // The JWT's `exp`, as the key was minted with.
    let exp = expires_at_ms.max(0) / 1000;
    emit(tx, &json!({ "kind": "key.revoked", "key_id": id, "exp": exp })).await
}

/// Emits `quota.set` for `tenant` from its quota row (all null without one).
pub async fn quota_set(tx: &mut Transaction<'_, Any>, tenant: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT runs_per_month, fuel_per_month, tokens_per_month, requests_per_minute FROM quota \
         WHERE organization_id = $1",
    )
    .bind(tenant)
    .fetch_optional(&mut **tx)
    .await?;
    let get = |column: &str| -> Result<Option<i64>> {
        Ok(match &row {
            Some(row) => row.try_get(column)?,
            None => None,
        })
    };
    let quota = json!({
        "runs": get("runs_per_month")?,
        "fuel": get("fuel_per_month")?,
        "tokens": get("tokens_per_month")?,
        "rpm": get("requests_per_minute")?,
    });
    emit(tx, &json!({ "kind": "quota.set", "tenant": tenant, "quota": quota })).await
}
