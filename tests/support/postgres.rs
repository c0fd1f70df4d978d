//! A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432.

use sqlx::Connection as _;

/// The server every scale-out test uses (trust auth).
const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of its own, dropped by [`Database::drop`].
pub struct Database {
    name: String,
    url: String,
}

impl Database {
    /// Creates `e2e_<random>`.
    pub async fn create() -> Self {
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            sqlx::PgConnection::connect(&format!("{SERVER}/test")).await.expect("PostgreSQL runs on 127.0.0.1:5432");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
        Self { url: format!("{SERVER}/{name}"), name }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops it (after the server using it has stopped).
    pub async fn drop(self) {
        let mut admin = sqlx::PgConnection::connect(&format!("{SERVER}/test")).await.expect("connect");
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut admin).await;
    }
}
