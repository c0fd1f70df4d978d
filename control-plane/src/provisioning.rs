//! What the `provision` and `deprovision` jobs do. Each runs in one
//! transaction that starts with a guarded write on the row it acts for, so
//! a crash leaves nothing half done and a job that runs twice finds
//! nothing left to do (and the unique `resource.order_id` is the backstop).

use crate::AppState;
use crate::agent_config::{Branding, Widget};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::feed;
use crate::jobs::{DEPROVISION, PROVISION, payload_text};
use crate::secrets::Owner;
use crate::stored_secrets;
use crate::transition::{RESOURCE, transition};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

/// Provisions an `executing` order: takes the flow version the operators
/// approved for the offering (never one imported since), creates the resource and its default agent config,
/// emits `agent.provisioned`, and marks the resource `ok` and the order
/// `done`. Does nothing for an order that is not `executing`.
pub async fn provision(state: &AppState, order_id: &str) -> Result<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let order = sqlx::query(
        "UPDATE customer_order SET updated_at = $1 WHERE id = $2 AND state = 'executing' \
         RETURNING organization_id, offering_id, plan_id",
    )
    .bind(now)
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(order) = order else {
        tracing::info!(order = %order_id, "order is not executing: nothing to provision");
        return Ok(());
    };
    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM resource WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
    if existing.is_none() {
        let organization: String = order.try_get("organization_id")?;
        let offering_id: String = order.try_get("offering_id")?;
        let plan_id: String = order.try_get("plan_id")?;
        let offering = sqlx::query("SELECT approved_flow_version_id, name FROM offering WHERE id = $1")
            .bind(&offering_id)
            .fetch_one(&mut *tx)
            .await?;
        let version: String = offering.try_get::<Option<String>, _>("approved_flow_version_id")?.ok_or_else(|| {
            Error::Invalid("the offering has no approved flow version: an operator must approve it first".into())
        })?;
        // The seller's secrets of the agent queue behind this (and this
        // behind them), so the new agent is either announced with a change
        // committed meanwhile or re-announced by it.
        sqlx::query(
            "UPDATE provider_agent SET updated_at = updated_at \
             WHERE id = (SELECT provider_agent_id FROM flow_version WHERE id = $1)",
        )
        .bind(&version)
        .execute(&mut *tx)
        .await?;
        let resource = new_id();
        sqlx::query(
            "INSERT INTO resource (id, order_id, organization_id, offering_id, plan_id, flow_version_id, state, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $7)",
        )
        .bind(&resource)
        .bind(order_id)
        .bind(&organization)
        .bind(&offering_id)
        .bind(&plan_id)
        .bind(&version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let branding = Branding { title: Some(offering.try_get("name")?), ..Branding::default() };
        sqlx::query(
            "INSERT INTO customer_agent_config (id, resource_id, organization_id, persona, branding, widget, \
             created_at, updated_at) VALUES ($1, $2, $3, 'null', $4, $5, $6, $6)",
        )
        .bind(new_id())
        .bind(&resource)
        .bind(&organization)
        .bind(serde_json::to_string(&branding).map_err(Error::internal)?)
        .bind(serde_json::to_string(&Widget::default()).map_err(Error::internal)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        transition(&mut tx, RESOURCE, &resource, &["creating"], "ok").await?;
        feed::agent_provisioned(&mut tx, &resource).await?;
        tracing::info!(order = %order_id, resource = %resource, flow_version = %version, "resource provisioned");
    }
    sqlx::query("UPDATE customer_order SET state = 'done', error = NULL WHERE id = $1 AND state = 'executing'")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deprovisions a `terminating` resource: revokes its keys, deletes the
/// buyer's secrets for it (no host will ask for them again), emits
/// `agent.deprovisioned` and `key.revoked` for each key, and marks it
/// `terminated`. Does nothing for a resource that is not `terminating`.
pub async fn deprovision(state: &AppState, resource_id: &str) -> Result<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let guarded = sqlx::query("UPDATE resource SET updated_at = $1 WHERE id = $2 AND state = 'terminating'")
        .bind(now)
        .bind(resource_id)
        .execute(&mut *tx)
        .await?;
    if guarded.rows_affected() == 0 {
        tracing::info!(resource = %resource_id, "resource is not terminating: nothing to deprovision");
        return Ok(());
    }
    let mut revoked: Vec<(String, i64)> = sqlx::query_as(
        "UPDATE agent_api_key SET revoked_at = $1, updated_at = $1 WHERE resource_id = $2 AND revoked_at IS NULL \
         RETURNING id, expires_at",
    )
    .bind(now)
    .bind(resource_id)
    .fetch_all(&mut *tx)
    .await?;
    stored_secrets::delete_all(&mut tx, Owner::Buyer(resource_id)).await?;
    transition(&mut tx, RESOURCE, resource_id, &["terminating"], "terminated").await?;
    feed::agent_deprovisioned(&mut tx, resource_id).await?;
    revoked.sort();
    for (key, expires_at) in &revoked {
        feed::key_revoked(&mut tx, key, *expires_at).await?;
    }
    tx.commit().await?;
    tracing::info!(resource = %resource_id, keys_revoked = revoked.len(), "resource deprovisioned");
    Ok(())
}

/// Tells a job's cause that an attempt failed: the order shows the error
/// (and becomes `erred` after the `last` attempt); a resource that could
/// not be deprovisioned becomes `erred` after the last attempt.
pub async fn job_failed(
    tx: &mut Transaction<'_, Any>,
    kind: &str,
    payload: &Value,
    error: &str,
    last: bool,
) -> Result<()> {
    let now = now_ms();
    match kind {
        PROVISION => {
            let order = payload_text(payload, "order_id")?;
            sqlx::query(
                "UPDATE customer_order SET error = $1, updated_at = $2, \
                 state = CASE WHEN $3 = 1 THEN 'erred' ELSE state END WHERE id = $4 AND state = 'executing'",
            )
            .bind(error)
            .bind(now)
            .bind(i64::from(last))
            .bind(order)
            .execute(&mut **tx)
            .await?;
            if last {
                tracing::warn!(order = %order, error, "order erred");
            }
        }
        DEPROVISION if last => {
            let resource = payload_text(payload, "resource_id")?;
            transition(tx, RESOURCE, resource, &["terminating"], "erred").await.or_else(|e| match e {
                Error::InvalidTransition(_) | Error::NotFound(_) => Ok(()),
                other => Err(other),
            })?;
        }
        crate::documents::PROCESS => crate::documents::job_failed(tx, payload, error, last).await?,
        _ => {}
    }
    Ok(())
}
