//! Embedded migrations run on SQLite and match their directory.

use sandflow_sql_migrations::{Embedded, check_directory, embedded, migrator};
use std::path::Path;

const EXAMPLE: &[Embedded] = embedded!("example": (1, "0001_example"));

#[test]
fn the_list_matches_the_directory_and_a_gap_is_reported() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/example");
    assert_eq!(check_directory(&dir, EXAMPLE), Ok(()));
    let error = check_directory(&dir, &[]).expect_err("a file is missing from the list");
    assert!(error.contains("0001_example"), "{error}");
}

#[tokio::test]
async fn migrations_run_once() {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.expect("sqlite");
    let migrator = migrator(EXAMPLE).await.expect("migrator");
    migrator.run_direct(&mut conn).await.expect("first run");
    migrator.run_direct(&mut conn).await.expect("second run is a no-op");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.expect("ledger");
    assert_eq!(rows, 1);
}
