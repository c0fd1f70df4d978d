//! Schema migrations embedded in the binary, run with sqlx's [`Migrator`].
//!
//! sqlx's `migrate!` macro embeds them too, but it builds a second copy of
//! sqlx (its core and its PostgreSQL and SQLite drivers) for the compiler:
//! minutes of every clean build. [`embedded!`] lists the files with
//! `include_str!`, [`migrator`] runs them, and [`check_directory`] (for a
//! test) makes sure no file of the directory is missing from the list.
//! Checksums are sqlx's own (SHA-384 of the SQL), so a database migrated
//! either way agrees with the other.
//!
//! ```
//! const SQLITE: &[sandflow_sql_migrations::Embedded] =
//!     sandflow_sql_migrations::embedded!("../tests/example": (1, "0001_example"));
//! assert_eq!(SQLITE[0].1, "0001_example");
//! ```
#![deny(missing_docs)]

pub mod store;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

/// One migration: version, file name (without `.sql`) and SQL.
pub type Embedded = (i64, &'static str, &'static str);

/// The migrations of a directory (relative to the calling source file), in
/// order: `embedded!("../migrations/sqlite": (1, "0001_identity"), …)`.
#[macro_export]
macro_rules! embedded {
    ($dir:literal: $(($version:literal, $name:literal)),* $(,)?) => {
        &[$(($version, $name, include_str!(concat!($dir, "/", $name, ".sql")))),*]
    };
}

/// A migrator over `migrations`.
pub async fn migrator(migrations: &'static [Embedded]) -> Result<Migrator, MigrateError> {
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

/// Checks that `list` names every `.sql` file of `dir`, in order, each
/// numbered as its file name says; the error says what to fix.
pub fn check_directory(dir: &Path, list: &[Embedded]) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".sql")).map(str::to_owned))
        .collect();
    files.sort();
    let listed: Vec<&str> = list.iter().map(|(_, name, _)| *name).collect();
    if listed != files {
        return Err(format!("{} holds {files:?} but the embedded list names {listed:?}", dir.display()));
    }
    for (version, name, _) in list {
        let number = name.split('_').next().and_then(|n| n.parse::<i64>().ok());
        if number != Some(*version) {
            return Err(format!("{name} is listed as version {version}"));
        }
    }
    Ok(())
}
