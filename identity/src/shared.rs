//! State every API replica must see at once lives in Redis: session revocations and rate-limit
//! counters. Redis being down must not take the API down with it, so callers get `None` and
//! fall back (to Postgres for revocations, to a per-process limiter for rate limits); a
//! reconnect is tried at most every few seconds.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::RedisSettings;

/// How long one Redis command may take before the caller falls back.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between reconnect attempts while Redis is unreachable.
const RETRY_EVERY: Duration = Duration::from_secs(2);

pub struct Shared {
    client: redis::Client,
    prefix: String,
    connection: RwLock<Option<ConnectionManager>>,
    /// Held while one caller (re)connects; the others fall back meanwhile.
    connecting: tokio::sync::Mutex<()>,
    next_attempt: Mutex<Instant>,
}

impl Shared {
    pub fn new(settings: &RedisSettings) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(settings.url.expose_secret())?,
            prefix: settings.key_prefix.clone(),
            connection: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            next_attempt: Mutex::new(Instant::now()),
        })
    }

    /// `<prefix>:<part>:<part>…`
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// A connection, or `None` while Redis is unreachable (never waits for another caller's
    /// connection attempt).
    pub async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(connection) = self.connection.read().ok().and_then(|c| c.clone()) {
            return Some(connection);
        }
        let Ok(_connecting) = self.connecting.try_lock() else {
            return None;
        };
        {
            let mut next = self.next_attempt.lock().ok()?;
            if Instant::now() < *next {
                return None;
            }
            *next = Instant::now() + RETRY_EVERY;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(RETRY_EVERY);
        let attempt = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(RESPONSE_TIMEOUT * 2, attempt).await {
            Ok(Ok(connection)) => {
                tracing::info!("connected to Redis");
                if let Ok(mut slot) = self.connection.write() {
                    *slot = Some(connection.clone());
                }
                Some(connection)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis is unreachable; falling back");
                None
            }
            Err(_) => {
                tracing::warn!("Redis did not answer in time; falling back");
                None
            }
        }
    }

    /// Run a command; `None` when Redis is unreachable or fails (logged).
    pub async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Option<T> {
        let mut connection = self.connection().await?;
        finish("command", command.query_async(&mut connection)).await
    }

    /// Run a pipeline; `None` when Redis is unreachable or fails (logged).
    pub async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut connection = self.connection().await?;
        finish("pipeline", pipe.query_async(&mut connection)).await
    }
}

/// A Redis call's answer within `RESPONSE_TIMEOUT`, or `None` (logged).
async fn finish<T>(
    what: &str,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Option<T> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Redis {what} failed; falling back");
            None
        }
        Err(_) => {
            tracing::warn!("Redis {what} timed out; falling back");
            None
        }
    }
}
