//! Where sealed secrets ([`crate::secrets`]) are kept: a buyer's in
//! `agent_secret` (by resource), a seller's in `seller_secret` (by provider
//! agent). Both hold the same columns (`name`, `sealed`, `hosts` as a JSON
//! array, dates), so every operation here takes the [`Owner`] and reads or
//! writes its table alone, except the two that make up an agent's secrets
//! for the runtime hosts: [`names`] (for the feed) and [`opened`] (their
//! values), where a buyer's secret takes the place of a seller's of the
//! same name: a buyer who brings their own key uses it.

use crate::error::{Error, Result};
use crate::feed;
use crate::secrets::{self, MAX_PER_AGENT, Owner, SealingKeys};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretOut {
    /// The global variable name the flow uses.
    pub name: String,
    /// The hosts nodes may send it to (none: only model providers' keys).
    pub hosts: Vec<String>,
    /// First set.
    pub created_at_ms: i64,
    /// Last set.
    pub updated_at_ms: i64,
}

/// One secret, opened for the runtime hosts. No `Debug`: it holds the
/// value.
#[derive(Serialize, ToSchema)]
pub struct OpenedSecret {
    /// The value.
    pub value: String,
    /// The hosts nodes may send it to in a request header (none: only the
    /// host's own uses, such as a model provider's key).
    pub hosts: Vec<String>,
}

/// The table holding `owner`'s secrets, its owner column and the owner's id.
fn place<'a>(owner: Owner<'a>) -> (&'static str, &'static str, &'a str) {
    match owner {
        Owner::Buyer(resource) => ("agent_secret", "resource_id", resource),
        Owner::Seller(agent) => ("seller_secret", "provider_agent_id", agent),
    }
}

/// A row's `hosts`, stored as a JSON array.
fn stored_hosts(row: &AnyRow) -> Result<Vec<String>> {
    let text: String = row.try_get("hosts")?;
    serde_json::from_str(&text).map_err(Error::internal)
}

/// `owner`'s secrets by name, without their values.
pub async fn list(pool: &AnyPool, owner: Owner<'_>) -> Result<Vec<SecretOut>> {
    let (table, column, id) = place(owner);
    let rows = sqlx::query(&format!(
        "SELECT name, hosts, created_at, updated_at FROM {table} WHERE {column} = $1 ORDER BY name"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SecretOut {
                name: row.try_get("name")?,
                hosts: stored_hosts(row)?,
                created_at_ms: row.try_get("created_at")?,
                updated_at_ms: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Sets `owner`'s secret `name` to a value [`SealingKeys::seal`]ed for it
/// with `hosts`, creating or replacing it; refused when it would be the
/// owner's 65th. The caller has locked the owner's row, so two new secrets
/// cannot race past the cap.
pub async fn put(
    tx: &mut Transaction<'_, Any>,
    owner: Owner<'_>,
    name: String,
    sealed: &str,
    hosts: Vec<String>,
) -> Result<SecretOut> {
    let (table, column, id) = place(owner);
    let others: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1 AND name <> $2"))
        .bind(id)
        .bind(&name)
        .fetch_one(&mut **tx)
        .await?;
    if others >= MAX_PER_AGENT {
        return Err(Error::Invalid(format!(
            "this agent holds {others} secrets, the most it may; delete one it no longer needs"
        )));
    }
    let hosts_text = serde_json::to_string(&hosts).map_err(Error::internal)?;
    let row = sqlx::query(&format!(
        "INSERT INTO {table} ({column}, name, sealed, hosts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT ({column}, name) \
         DO UPDATE SET sealed = excluded.sealed, hosts = excluded.hosts, updated_at = excluded.updated_at \
         RETURNING created_at, updated_at"
    ))
    .bind(id)
    .bind(&name)
    .bind(sealed)
    .bind(&hosts_text)
    .bind(crate::db::now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(SecretOut { name, hosts, created_at_ms: row.try_get("created_at")?, updated_at_ms: row.try_get("updated_at")? })
}

/// Deletes `owner`'s secret `name` (404 when there is none).
pub async fn delete(tx: &mut Transaction<'_, Any>, owner: Owner<'_>, name: &str) -> Result<()> {
    let (table, column, id) = place(owner);
    let deleted = sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1 AND name = $2"))
        .bind(id)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound(format!(
            "this agent has no secret `{}`",
            name.chars().take(secrets::MAX_NAME_BYTES).collect::<String>().escape_debug()
        )));
    }
    Ok(())
}

/// Deletes every secret of `owner`.
pub async fn delete_all(tx: &mut Transaction<'_, Any>, owner: Owner<'_>) -> Result<()> {
    let (table, column, id) = place(owner);
    sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1")).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// The names of agent `resource`'s secrets, the buyer's and its seller's,
/// sorted and each once.
pub async fn names(tx: &mut Transaction<'_, Any>, resource: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM agent_secret WHERE resource_id = $1 \
         UNION SELECT s.name FROM seller_secret s \
         JOIN flow_version v ON v.provider_agent_id = s.provider_agent_id \
         JOIN resource r ON r.flow_version_id = v.id WHERE r.id = $1 \
         ORDER BY name",
    )
    .bind(resource)
    .fetch_all(&mut **tx)
    .await?)
}

/// Agent `resource`'s secrets, opened: its seller's, then the buyer's in
/// the place of any of the same name. A value that `keys` do not open (a
/// key missing or malformed, a row changed outside the control plane) is
/// left out and logged, so a bad key or row holds up no host; a run that
/// needs it says the variable is not set. A buyer's row that does not open
/// still hides the seller's of its name: the buyer chose their own. 404
/// for no agent the hosts may be serving ([`feed::SERVED_STATES`]).
pub async fn opened(
    pool: &AnyPool,
    keys: Result<SealingKeys>,
    resource: &str,
) -> Result<BTreeMap<String, OpenedSecret>> {
    let agent: String = sqlx::query_scalar(&format!(
        "SELECT v.provider_agent_id FROM resource r JOIN flow_version v ON v.id = r.flow_version_id \
         WHERE r.id = $1 AND r.state IN {}",
        feed::SERVED_STATES
    ))
    .bind(resource)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("no agent `{resource}` that the hosts may be serving")))?;
    let mut secrets = BTreeMap::new();
    // The seller's first: the buyer's replace them.
    for owner in [Owner::Seller(&agent), Owner::Buyer(resource)] {
        let (table, column, id) = place(owner);
        let rows = sqlx::query(&format!("SELECT name, sealed, hosts FROM {table} WHERE {column} = $1 ORDER BY name"))
            .bind(id)
            .fetch_all(pool)
            .await?;
        for row in &rows {
            let name: String = row.try_get("name")?;
            let sealed: String = row.try_get("sealed")?;
            let opened = stored_hosts(row).map_err(|_| "its `hosts` is not a JSON list".to_owned()).and_then(|hosts| {
                let keys = keys.as_ref().map_err(|_| "no valid --secrets-key is configured".to_owned())?;
                Ok(OpenedSecret { value: keys.open(owner, &name, &hosts, &sealed)?, hosts })
            });
            match opened {
                Ok(secret) => {
                    secrets.insert(name, secret);
                }
                Err(reason) => {
                    tracing::error!(agent = %resource, ?owner, secret = %name, %reason, "a secret does not open; left out");
                    secrets.remove(&name);
                }
            }
        }
    }
    Ok(secrets)
}
