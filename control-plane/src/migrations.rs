//! The control plane's schema migrations, one set per dialect, embedded in
//! the binary (see [`sandflow_sql_migrations`] for why not `migrate!`).

use sandflow_sql_migrations::{Embedded, embedded};

/// SQLite's migrations, in order.
pub const SQLITE: &[Embedded] = embedded!("../migrations/sqlite":
    (1, "0001_identity"),
    (2, "0002_provider"),
    (3, "0003_usage"),
    (4, "0004_catalog"),
    (5, "0005_orders"),
    (6, "0006_api_keys"),
    (7, "0007_training_documents"),
    (8, "0008_usage_http_bytes"),
    (9, "0009_docx_documents"),
    (10, "0010_order_idempotency"),
    (11, "0011_offering_review"),
    (12, "0012_offering_reviewed_version"),
    (13, "0013_agent_secrets"),
    (14, "0014_seller_secrets"),
);

/// PostgreSQL's migrations, in order.
pub const POSTGRES: &[Embedded] = embedded!("../migrations/postgres":
    (1, "0001_identity"),
    (2, "0002_provider"),
    (3, "0003_usage"),
    (4, "0004_catalog"),
    (5, "0005_orders"),
    (6, "0006_api_keys"),
    (7, "0007_training_documents"),
    (8, "0008_usage_http_bytes"),
    (9, "0009_docx_documents"),
    (10, "0010_order_idempotency"),
    (11, "0011_offering_review"),
    (12, "0012_offering_reviewed_version"),
    (13, "0013_agent_secrets"),
    (14, "0014_seller_secrets"),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for (dialect, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            sandflow_sql_migrations::check_directory(&dir.join(dialect), list).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
