//! SQL Database (`SQLComponent`): runs `query` on the database that
//! `database_url` names, through the `sql` capability, and returns the
//! rows as a DataFrame, as Langflow 1.13's `run_sql_query` does (also as a
//! tool an agent calls with `query`, `include_columns` and `add_error`).
//!
//! `database_url` names a database the operator allows (`--sql-database
//! NAME=URL`); the host refuses any other, so a flow cannot connect where
//! it likes. Read-only databases refuse writes, and one call runs one
//! statement.
//!
//! `include_columns` and `add_error` act on the table as Langflow's
//! message output (`build_component`) uses them: without columns, values
//! are keyed by position (`"0"`, `"1"`, …, as pandas numbers the columns of
//! bare tuples); with `add_error`, a failed statement answers one row
//! `{"error", "query"}` instead of failing, so a model calling the tool
//! reads what went wrong and the query it sent.

use sandflow_sdk::host::sql;
use sandflow_sdk::{
    Descriptor, Invocation, NodeError, Output, Table, Value, capability_message, flag, output, port, text_or,
};
use serde_json::{Map, Value as Json, json};

/// Type name in the library.
pub const NAME: &str = "sql";

/// Describes the node.
pub fn describe() -> Descriptor {
    Descriptor {
        type_name: NAME.into(),
        display_name: "SQL Database".into(),
        description: "Executes SQL queries on SQLAlchemy-compatible databases.".into(),
        inputs: vec![
            port("database_url", &["Message"], true),
            port("query", &["Message"], true),
            port("include_columns", &[], false),
            port("add_error", &[], false),
        ],
        outputs: vec![port("run_sql_query", &["DataFrame"], false)],
    }
}

/// Runs the node.
pub fn run(inv: &Invocation) -> Result<Vec<Output>, NodeError> {
    let database = text_or(inv, "database_url", "");
    let query = text_or(inv, "query", "");
    if query.trim().is_empty() {
        return Err(NodeError::InvalidInput("the SQL Query is empty".into()));
    }
    let rows = match sql::query(&database, &query) {
        Ok(table) => {
            let rows: Vec<Map<String, Json>> =
                table.rows.iter().map(|r| serde_json::from_str(r).unwrap_or_default()).collect();
            if flag(inv, "include_columns", true) { rows } else { rows.into_iter().map(positional).collect() }
        }
        Err(error) => {
            let message = format!("An error occurred while running the SQL Query: {}", capability_message(&error));
            if !flag(inv, "add_error", false) {
                return Err(NodeError::Failed(message));
            }
            let row = json!({ "error": message, "query": query });
            vec![row.as_object().cloned().unwrap_or_default()]
        }
    };
    let rows = rows.into_iter().map(|r| Json::Object(r).to_string()).collect();
    Ok(vec![output("run_sql_query", Value::Table(Table { rows }))])
}

fn positional(row: Map<String, Json>) -> Map<String, Json> {
    row.into_iter().enumerate().map(|(i, (_, v))| (i.to_string(), v)).collect()
}
