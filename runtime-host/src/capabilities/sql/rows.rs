//! What every dialect shares: the bounds of one call, gathering rows as
//! JSON objects within them, and the one error type the dialects return.

use crate::bindings::node::sandflow::host::types::CapabilityError;
use serde_json::{Map, Value as Json};
use std::time::Duration;

/// What one call may return, and for how long it may run.
pub(super) struct Bounds {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub time: Duration,
}

/// The rows of one result: column name → value.
pub(super) type Rows = Vec<Map<String, Json>>;

/// Why a call failed.
pub(super) enum SqlError {
    /// The request breaks a rule (several statements, too many rows).
    Invalid(String),
    /// No connection could be made (the detail is for the host's log only).
    Connect(String),
    /// The database refused or failed the statement, in its own words.
    Refused { code: String, message: String },
    /// The driver failed otherwise (the detail is for the host's log only).
    Failed(String),
}

impl SqlError {
    /// A connection that could not be made.
    pub fn connect(error: impl std::fmt::Display) -> Self {
        Self::Connect(error.to_string())
    }

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
            Self::Refused { code, message } => {
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
            Self::Failed(error) => {
                tracing::error!(%error, database, "a SQL statement failed");
                CapabilityError::Failed(format!("the statement on `{database}` failed; try again later"))
            }
        }
    }
}

/// Rows read so far, refused as soon as they cross a bound.
pub(super) struct Gathered<'a> {
    bounds: &'a Bounds,
    rows: Rows,
    bytes: usize,
}

impl<'a> Gathered<'a> {
    pub fn new(bounds: &'a Bounds) -> Self {
        Self { bounds, rows: Vec::new(), bytes: 0 }
    }

    /// Adds one row, given as (column, value) pairs.
    pub fn push<E>(&mut self, row: impl IntoIterator<Item = Result<(String, Json), E>>) -> Result<(), SqlError>
    where
        E: Into<SqlError>,
    {
        if self.rows.len() == self.bounds.max_rows {
            return Err(SqlError::Invalid(format!(
                "the statement returns more than {} rows; add a LIMIT (or narrow the WHERE clause)",
                self.bounds.max_rows
            )));
        }
        let mut object = Map::new();
        // Checked value by value: a wide row stops being copied at the bound.
        for value in row {
            let (column, value) = value.map_err(Into::into)?;
            self.bytes += column.len() + size(&value);
            if self.bytes > self.bounds.max_bytes {
                return Err(SqlError::Invalid(format!(
                    "the statement returns more than {} bytes; select fewer columns or rows",
                    self.bounds.max_bytes
                )));
            }
            object.insert(column, value);
        }
        self.rows.push(object);
        Ok(())
    }

    pub fn into_rows(self) -> Rows {
        self.rows
    }
}

fn size(value: &Json) -> usize {
    match value {
        Json::String(s) => s.len(),
        Json::Array(_) | Json::Object(_) => value.to_string().len(),
        _ => 8,
    }
}

/// A float as a JSON number, or as text where JSON has none (NaN, ∞).
pub(super) fn number(n: f64) -> Json {
    serde_json::Number::from_f64(n).map_or_else(|| Json::String(n.to_string()), Json::Number)
}
