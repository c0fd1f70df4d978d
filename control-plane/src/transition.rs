//! Guarded state transitions: `UPDATE … SET state = $to WHERE id = $id AND
//! state IN (…)`, inside the caller's transaction. The `WHERE` is the
//! check, so two requests racing for the same move cannot both win; the
//! loser gets a 409 naming the state it found.

use crate::db::now_ms;
use crate::error::{Error, Result};
use sqlx::{Any, Transaction};

/// A table with a `state` column that moves by [`transition`].
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    /// The table.
    pub table: &'static str,
    /// What a row is called in messages ("offering", "order").
    pub noun: &'static str,
}

/// Offerings: `draft → pending_review → active ⇄ paused → archived`.
pub const OFFERING: Machine = Machine { table: "offering", noun: "offering" };
/// Orders: `pending_consumer → pending_provider → executing → done`, or
/// `rejected`, `canceled`, `erred` (`erred → executing` on retry).
pub const ORDER: Machine = Machine { table: "customer_order", noun: "order" };
/// Resources: `creating → ok ⇄ updating → terminating → terminated`, or
/// `erred`.
pub const RESOURCE: Machine = Machine { table: "resource", noun: "resource" };

/// Moves row `id` of `machine` from one of `from` to `to` (also setting
/// `updated_at`). `NotFound` when there is no such row, `InvalidTransition`
/// (409) saying what state it is in when it is not in `from`.
pub async fn transition(
    tx: &mut Transaction<'_, Any>,
    machine: Machine,
    id: &str,
    from: &[&'static str],
    to: &'static str,
) -> Result<()> {
    let states = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let moved = sqlx::query(&format!(
        "UPDATE {} SET state = $1, updated_at = $2 WHERE id = $3 AND state IN ({states})",
        machine.table
    ))
    .bind(to)
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 1 {
        return Ok(());
    }
    let current: Option<String> = sqlx::query_scalar(&format!("SELECT state FROM {} WHERE id = $1", machine.table))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Err(match current {
        None => Error::NotFound(format!("no {} `{id}`", machine.noun)),
        Some(current) => Error::InvalidTransition(format!(
            "the {} is {current}; it can become {to} only from {}",
            machine.noun,
            from.join(" or ")
        )),
    })
}
