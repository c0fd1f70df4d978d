//! Running one statement on one connection of its own, per dialect, and
//! turning its rows into JSON objects (column name → value).
//!
//! Rows are fetched as text (PostgreSQL's simple query protocol, MySQL's
//! text protocol) and typed by their column type, so every type the server
//! has (numeric, dates, UUIDs, …) arrives without a decoder per type:
//! integers, floats, numerics and booleans become JSON numbers and
//! booleans, JSON columns JSON, everything else its text.

use super::{Dialect, SqlDatabase, statements};
use crate::bindings::node::sandflow::host::types::CapabilityError;
use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use serde_json::{Map, Value as Json};
use sqlx::{Column, ConnectOptions, Connection, Decode, Executor, Row, TypeInfo, ValueRef};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// What one call may return, and for how long it may run.
pub(super) struct Bounds {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub time: Duration,
}

/// Why a call failed.
pub(super) enum SqlError {
    /// The request breaks a rule (several statements, too many rows).
    Invalid(String),
    /// No connection could be made (details for the host's log only).
    Connect(sqlx::Error),
    /// The database refused or failed the statement.
    Statement(sqlx::Error),
}

impl SqlError {
    /// What the guest sees: the database's own message about the
    /// statement (which the flow's author, or its model, needs to fix
    /// it), never connection details.
    pub fn into_capability(self, database: &str) -> CapabilityError {
        match self {
            Self::Invalid(message) => CapabilityError::Invalid(message),
            Self::Connect(error) => {
                tracing::error!(%error, database, "cannot connect to a SQL database");
                CapabilityError::Failed(format!("cannot connect to database `{database}`; try again later"))
            }
            Self::Statement(error) => match error.as_database_error() {
                Some(db) => {
                    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                    let message = db.message().to_owned();
                    let lower = message.to_ascii_lowercase();
                    let read_only = ["readonly database", "read-only", "read only", "query_only"];
                    if code == "25006" || read_only.iter().any(|r| lower.contains(r)) {
                        CapabilityError::Denied(format!("database `{database}` is read-only: {message}"))
                    } else if code == "57014"
                        || lower.contains("max_statement_time")
                        || lower.contains("maximum statement execution time")
                        || lower == "interrupted"
                    {
                        CapabilityError::Denied(format!(
                            "the statement on `{database}` did not finish before the run's deadline ({message})"
                        ))
                    } else {
                        CapabilityError::Failed(format!("database `{database}` refused the statement: {message}"))
                    }
                }
                None => {
                    tracing::error!(%error, database, "a SQL statement failed");
                    CapabilityError::Failed(format!("the statement on `{database}` failed; try again later"))
                }
            },
        }
    }
}

type Rows = Vec<Map<String, Json>>;

/// Runs `sql` on `db` within `bounds`.
pub(super) async fn query(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    // A trailing `;` ends the one statement; it is not a second one.
    let mut sql = sql.trim_end();
    while let Some(rest) = sql.strip_suffix(';') {
        sql = rest.trim_end();
    }
    match db.dialect {
        Dialect::Postgres => postgres(db, sql, bounds).await,
        Dialect::MySql => mysql(db, sql, bounds).await,
        Dialect::Sqlite => sqlite(db, sql, bounds).await,
    }
}

fn millis(time: Duration) -> u128 {
    time.as_millis().clamp(1, i32::MAX as u128)
}

async fn postgres(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    let ms = millis(bounds.time).to_string();
    let mut settings = vec![("statement_timeout", ms.clone()), ("lock_timeout", ms)];
    if !db.read_write {
        settings.push(("default_transaction_read_only", "on".to_owned()));
    }
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).map_err(SqlError::Connect)?.options(settings);
    let mut conn = options.connect().await.map_err(SqlError::Connect)?;
    let statement = SqlError::Statement;
    conn.execute(if db.read_write { "BEGIN" } else { "BEGIN READ ONLY" }).await.map_err(statement)?;
    // Parsing it as a prepared statement refuses a text of several statements.
    (&mut conn).prepare(sql).await.map_err(statement)?;
    let rows = collect(conn.fetch(sql), bounds, |row, i| {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            return Ok(Json::Null);
        }
        let kind = value.type_info().name().to_owned();
        let text = <&str as Decode<'_, sqlx::Postgres>>::decode(value).map_err(sqlx::Error::Decode)?;
        Ok(typed(&kind, text))
    })
    .await?;
    conn.execute(if db.read_write { "COMMIT" } else { "ROLLBACK" }).await.map_err(statement)?;
    let _ = conn.close().await;
    Ok(rows)
}

async fn mysql(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    let url = db.url.strip_prefix("mariadb://").map_or_else(|| db.url.clone(), |rest| format!("mysql://{rest}"));
    let options = sqlx::mysql::MySqlConnectOptions::from_str(&url).map_err(SqlError::Connect)?;
    let mut conn = options.connect().await.map_err(SqlError::Connect)?;
    let statement = SqlError::Statement;
    // MariaDB counts seconds (any statement), MySQL milliseconds (SELECT).
    let secs = bounds.time.as_secs_f64().max(0.001);
    if conn.execute(format!("SET SESSION max_statement_time = {secs:.3}").as_str()).await.is_err() {
        let _ = conn.execute(format!("SET SESSION max_execution_time = {}", millis(bounds.time)).as_str()).await;
    }
    if db.read_write {
        conn.execute("START TRANSACTION").await.map_err(statement)?;
    } else {
        // The session too: a statement that ends the transaction (DDL
        // commits implicitly) still runs read-only.
        conn.execute("SET SESSION TRANSACTION READ ONLY").await.map_err(statement)?;
        conn.execute("START TRANSACTION READ ONLY").await.map_err(statement)?;
    }
    // A prepared statement holds exactly one statement.
    (&mut conn).prepare(sql).await.map_err(statement)?;
    let rows = collect(conn.fetch(sql), bounds, |row, i| {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            return Ok(Json::Null);
        }
        let kind = value.type_info().name().to_owned();
        let bytes = <&[u8] as Decode<'_, sqlx::MySql>>::decode(value).map_err(sqlx::Error::Decode)?;
        Ok(typed(&kind, &String::from_utf8_lossy(bytes)))
    })
    .await?;
    conn.execute(if db.read_write { "COMMIT" } else { "ROLLBACK" }).await.map_err(statement)?;
    let _ = conn.close().await;
    Ok(rows)
}

async fn sqlite(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    if statements::several(sql) {
        return Err(SqlError::Invalid("the text holds more than one statement; send one statement per call".into()));
    }
    if statements::opens_files(sql) {
        return Err(SqlError::Invalid(
            "ATTACH and VACUUM are not allowed on SQLite databases: they open other files on the host".into(),
        ));
    }
    let mut options =
        sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).map_err(SqlError::Connect)?.create_if_missing(false);
    if !db.read_write {
        options = options.read_only(true).pragma("query_only", "ON");
    }
    let mut conn = options.connect().await.map_err(SqlError::Connect)?;
    // SQLite runs in this process: a runaway statement (a recursive CTE)
    // is stopped by its progress handler at the deadline.
    let deadline = Instant::now() + bounds.time;
    conn.lock_handle().await.map_err(SqlError::Connect)?.set_progress_handler(1_000, move || Instant::now() < deadline);
    let rows = collect(conn.fetch(sql), bounds, |row, i| {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            return Ok(Json::Null);
        }
        let kind = value.type_info().name().to_owned();
        let decoded = match kind.as_str() {
            "INTEGER" => Json::from(<i64 as Decode<'_, sqlx::Sqlite>>::decode(value).map_err(sqlx::Error::Decode)?),
            "REAL" => number(<f64 as Decode<'_, sqlx::Sqlite>>::decode(value).map_err(sqlx::Error::Decode)?),
            "BLOB" => Json::String(
                String::from_utf8_lossy(
                    <&[u8] as Decode<'_, sqlx::Sqlite>>::decode(value).map_err(sqlx::Error::Decode)?,
                )
                .into_owned(),
            ),
            _ => Json::String(<String as Decode<'_, sqlx::Sqlite>>::decode(value).map_err(sqlx::Error::Decode)?),
        };
        Ok(decoded)
    })
    .await?;
    let _ = conn.close().await;
    Ok(rows)
}

/// Reads rows until the stream ends or a bound is crossed.
async fn collect<R: Row>(
    mut stream: BoxStream<'_, Result<R, sqlx::Error>>,
    bounds: &Bounds,
    value: impl Fn(&R, usize) -> Result<Json, sqlx::Error>,
) -> Result<Rows, SqlError> {
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = stream.try_next().await.map_err(SqlError::Statement)? {
        if rows.len() == bounds.max_rows {
            return Err(SqlError::Invalid(format!(
                "the statement returns more than {} rows; add a LIMIT (or narrow the WHERE clause)",
                bounds.max_rows
            )));
        }
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let v = value(&row, i).map_err(SqlError::Statement)?;
            bytes += column.name().len() + size(&v);
            object.insert(column.name().to_owned(), v);
        }
        if bytes > bounds.max_bytes {
            return Err(SqlError::Invalid(format!(
                "the statement returns more than {} bytes; select fewer columns or rows",
                bounds.max_bytes
            )));
        }
        rows.push(object);
    }
    Ok(rows)
}

fn size(value: &Json) -> usize {
    match value {
        Json::String(s) => s.len(),
        Json::Array(_) | Json::Object(_) => value.to_string().len(),
        _ => 8,
    }
}

fn number(n: f64) -> Json {
    serde_json::Number::from_f64(n).map_or_else(|| Json::String(n.to_string()), Json::Number)
}

/// A value in its text form, typed by its column's type name.
fn typed(kind: &str, text: &str) -> Json {
    let kind = kind.to_ascii_uppercase();
    let base = kind.split_whitespace().next().unwrap_or_default();
    match base {
        "BOOL" | "BOOLEAN" if !text.chars().all(|c| c.is_ascii_digit()) => Json::Bool(matches!(text, "t" | "true")),
        "INT2" | "INT4" | "INT8" | "OID" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" | "BIGINT"
        | "YEAR" | "BOOL" | "BOOLEAN" => text
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| text.parse::<u64>().map(Json::from))
            .unwrap_or_else(|_| Json::String(text.to_owned())),
        "FLOAT4" | "FLOAT8" | "FLOAT" | "DOUBLE" | "REAL" | "NUMERIC" | "DECIMAL" => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => number(n),
            _ => Json::String(text.to_owned()),
        },
        "JSON" | "JSONB" => serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned())),
        _ => Json::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::typed;
    use serde_json::json;

    #[test]
    fn text_values_get_their_column_types() {
        assert_eq!(typed("INT8", "42"), json!(42));
        assert_eq!(typed("BIGINT UNSIGNED", "18446744073709551615"), json!(18_446_744_073_709_551_615_u64));
        assert_eq!(typed("BOOL", "t"), json!(true));
        assert_eq!(typed("BOOLEAN", "1"), json!(1), "MySQL's TINYINT(1) stays a number, as SQLAlchemy gives it");
        assert_eq!(typed("NUMERIC", "19.90"), json!(19.9));
        assert_eq!(typed("NUMERIC", "NaN"), json!("NaN"));
        assert_eq!(typed("JSONB", r#"{"a": 1}"#), json!({"a": 1}));
        assert_eq!(typed("TIMESTAMPTZ", "2026-01-01 00:00:00+00"), json!("2026-01-01 00:00:00+00"));
    }
}
