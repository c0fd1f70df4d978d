//! The schema migrations, embedded in the binary, one set per dialect.
//!
//! sqlx's `migrate!` macro would embed them too, but it pulls a second copy
//! of sqlx (and its PostgreSQL and SQLite drivers) into the build as a
//! compile-time dependency, minutes of every clean build. The list below is
//! checked against the directories by a test, so a migration file cannot be
//! forgotten. Checksums are sqlx's own (SHA-384 of the SQL), so databases
//! migrated by either way agree.

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::pin::Pin;

/// One migration: version, description and SQL.
type Embedded = (i64, &'static str, &'static str);

macro_rules! migrations {
    ($dialect:literal: $(($version:literal, $name:literal)),* $(,)?) => {
        &[$(($version, $name, include_str!(concat!("../migrations/", $dialect, "/", $name, ".sql")))),*]
    };
}

/// SQLite's migrations, in order.
pub const SQLITE: &[Embedded] = migrations!("sqlite":
    (1, "0001_identity"),
    (2, "0002_provider"),
    (3, "0003_usage"),
);

/// PostgreSQL's migrations, in order.
pub const POSTGRES: &[Embedded] = migrations!("postgres":
    (1, "0001_identity"),
    (2, "0002_provider"),
    (3, "0003_usage"),
);

/// A migrator over one dialect's embedded migrations.
pub async fn migrator(migrations: &'static [Embedded]) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(migrations)).await
}

#[derive(Debug)]
struct Source(&'static [Embedded]);

impl MigrationSource<'static> for Source {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, name, sql)| {
                let description = name.split_once('_').map_or(name, |(_, d)| d).replace('_', " ");
                Migration::new(version, Cow::Owned(description), MigrationType::Simple, Cow::Borrowed(sql), false)
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the directory is in the list, in order, numbered as named.
    #[test]
    fn the_lists_match_the_directories() {
        for (dialect, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("migrations directory")
                .map(|e| e.expect("entry").file_name().to_string_lossy().trim_end_matches(".sql").to_owned())
                .collect();
            files.sort();
            let listed: Vec<String> = list.iter().map(|(_, name, _)| (*name).to_owned()).collect();
            assert_eq!(listed, files, "{dialect}: list every file of {} in migrations.rs", dir.display());
            for (version, name, _) in list {
                let number: i64 = name.split('_').next().and_then(|n| n.parse().ok()).expect("numbered file");
                assert_eq!(*version, number, "{name}");
            }
        }
    }
}
