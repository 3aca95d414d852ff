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

/// A database of its own, dropped (with any connections left) when the value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("hxb_test_{}", Uuid::new_v4().simple());
        let mut conn = admin
            .parse::<PgConnectOptions>()
            .expect("HEXABASE_TEST_DATABASE_URL is not a Postgres URL")
            .connect()
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

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = admin_url()
                    .parse::<PgConnectOptions>()
                    .expect("admin url")
                    .connect()
                    .await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
