//! PostgreSQL and MySQL/MariaDB: one statement on one connection of its
//! own (sqlx), its rows turned into JSON objects (column name → value).
//!
//! Rows are fetched as text (PostgreSQL's simple query protocol, MySQL's
//! text protocol) and typed by their column type, so every type the server
//! has (numeric, dates, UUIDs, …) arrives without a decoder per type:
//! integers, floats, numerics and booleans become JSON numbers and
//! booleans, JSON columns JSON, everything else its text.
//!
//! The driver reaches the server through a [`Guard`], which ends the
//! connection at any server message longer than the call may return.

use super::SqlDatabase;
use super::guard::{Framing, Guard, Upstream};
use super::rows::{Bounds, Gathered, Rows, SqlError, number};
use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value as Json;
use sqlx::{Column, ConnectOptions, Connection, Decode, Executor, Row, TypeInfo, ValueRef};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

impl From<sqlx::Error> for SqlError {
    /// A statement's failure: the database's own words where it refused.
    fn from(error: sqlx::Error) -> Self {
        match error.as_database_error() {
            Some(db) => Self::Refused {
                code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
                message: db.message().to_owned(),
            },
            None => Self::Failed(error.to_string()),
        }
    }
}

fn millis(time: Duration) -> u128 {
    time.as_millis().clamp(1, i32::MAX as u128)
}

/// Runs `sql` (one statement, no trailing `;`) on PostgreSQL.
pub(super) async fn postgres(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).map_err(SqlError::connect)?;
    let port = options.get_port();
    let socket = format!(".s.PGSQL.{port}");
    let upstream = match options.get_socket() {
        Some(dir) => Upstream::Unix(dir.join(&socket)),
        None if options.get_host().starts_with('/') => Upstream::Unix(Path::new(options.get_host()).join(&socket)),
        None => Upstream::tcp(options.get_host(), port),
    };
    let guard = Guard::start(upstream, Framing::Postgres, &socket, bounds).map_err(SqlError::connect)?;
    let options = options.socket(guard.dir());
    guard.run(postgres_through(options, db, sql, bounds)).await
}

async fn postgres_through(
    options: sqlx::postgres::PgConnectOptions,
    db: &SqlDatabase,
    sql: &str,
    bounds: &Bounds,
) -> Result<Rows, SqlError> {
    let ms = millis(bounds.time).to_string();
    let mut settings = vec![("statement_timeout", ms.clone()), ("lock_timeout", ms)];
    if !db.read_write {
        settings.push(("default_transaction_read_only", "on".to_owned()));
    }
    let options = options.options(settings);
    let mut conn = options.connect().await.map_err(SqlError::connect)?;
    conn.execute(if db.read_write { "BEGIN" } else { "BEGIN READ ONLY" }).await?;
    // Parsing it as a prepared statement refuses a text of several statements.
    (&mut conn).prepare(sql).await?;
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
    conn.execute(if db.read_write { "COMMIT" } else { "ROLLBACK" }).await?;
    let _ = conn.close().await;
    Ok(rows)
}

/// Runs `sql` (one statement, no trailing `;`) on MySQL or MariaDB.
pub(super) async fn mysql(db: &SqlDatabase, sql: &str, bounds: &Bounds) -> Result<Rows, SqlError> {
    let url = db.url.strip_prefix("mariadb://").map_or_else(|| db.url.clone(), |rest| format!("mysql://{rest}"));
    let options = sqlx::mysql::MySqlConnectOptions::from_str(&url).map_err(SqlError::connect)?;
    let upstream = match options.get_socket() {
        Some(path) => Upstream::Unix(path.clone()),
        None => Upstream::tcp(options.get_host(), options.get_port()),
    };
    let guard = Guard::start(upstream, Framing::MySql, "mysql.sock", bounds).map_err(SqlError::connect)?;
    let options = options.socket(guard.socket());
    guard.run(mysql_through(options, db, sql, bounds)).await
}

async fn mysql_through(
    options: sqlx::mysql::MySqlConnectOptions,
    db: &SqlDatabase,
    sql: &str,
    bounds: &Bounds,
) -> Result<Rows, SqlError> {
    let mut conn = options.connect().await.map_err(SqlError::connect)?;
    // MariaDB counts seconds (any statement), MySQL milliseconds (SELECT).
    let secs = bounds.time.as_secs_f64().max(0.001);
    if conn.execute(format!("SET SESSION max_statement_time = {secs:.3}").as_str()).await.is_err() {
        let _ = conn.execute(format!("SET SESSION max_execution_time = {}", millis(bounds.time)).as_str()).await;
    }
    if db.read_write {
        conn.execute("START TRANSACTION").await?;
    } else {
        // The session too: a statement that ends the transaction (DDL
        // commits implicitly) still runs read-only.
        conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
        conn.execute("START TRANSACTION READ ONLY").await?;
    }
    // A prepared statement holds exactly one statement.
    (&mut conn).prepare(sql).await?;
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
    conn.execute(if db.read_write { "COMMIT" } else { "ROLLBACK" }).await?;
    let _ = conn.close().await;
    Ok(rows)
}

/// Reads rows until the stream ends or a bound is crossed.
async fn collect<R: Row>(
    mut stream: BoxStream<'_, Result<R, sqlx::Error>>,
    bounds: &Bounds,
    value: impl Fn(&R, usize) -> Result<Json, sqlx::Error>,
) -> Result<Rows, SqlError> {
    let mut gathered = Gathered::new(bounds);
    while let Some(row) = stream.try_next().await? {
        gathered.push(
            row.columns().iter().enumerate().map(|(i, c)| Ok::<_, sqlx::Error>((c.name().to_owned(), value(&row, i)?))),
        )?;
    }
    Ok(gathered.into_rows())
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
