//! Where the shared services are, and a fresh database per test.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

pub const HOW_TO_START: &str =
    "start the services with `scripts/services` (PostgreSQL, Redis and NATS on 127.0.0.1)";

/// Admin connection (a role with CREATEDB), from `HEXABASE_TEST_DATABASE_URL`.
pub fn admin_url() -> String {
    std::env::var("HEXABASE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://hexabase:hexabase@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("HEXABASE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("HEXABASE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection to the administrative database (`admin_url()`).
async fn admin_connection(admin: &str) -> sqlx::Result<sqlx::PgConnection> {
    admin
        .parse::<PgConnectOptions>()
        .expect("HEXABASE_TEST_DATABASE_URL is not a Postgres URL")
        .connect()
        .await
}

/// A database of its own. Test databases are not dropped when a test ends: `DROP DATABASE`
/// waits for every Postgres process to acknowledge it, which can take a checkpoint's time;
/// `scripts/test` removes the previous run's `hxb_test_*` databases before it starts.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Remove the database, ending every connection to it (for programs, such as the
    /// benchmark, whose databases are too big to leave for the next test run).
    pub async fn remove(&self) {
        let Ok(mut conn) = admin_connection(&admin_url()).await else {
            return;
        };
        // Identifiers cannot be bound; this one was generated from a UUID.
        if let Err(e) = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        {
            eprintln!("database {} not removed: {e}", self.name);
        }
    }

    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("hxb_test_{}", Uuid::new_v4().simple());
        let mut conn = admin_connection(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}; {HOW_TO_START}"));
        // Identifiers cannot be bound; this one is generated above from a UUID.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = {
            let mut url = admin.clone();
            let cut = url.rfind('/').expect("database URL has a path");
            url.truncate(cut + 1);
            url.push_str(&name);
            url
        };
        Self { name, url }
    }

    pub async fn pool(&self, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.url)
            .await
            .expect("connect to test database")
    }
}
