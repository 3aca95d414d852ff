//! The outbox relay: publishes committed events to JetStream, then marks them sent.
//!
//! Each pass walks the outbox partitions. A partition is worked under a transaction-scoped
//! advisory lock, so any number of relays can run: they split the partitions between them, and
//! one aggregate (always in one partition) is published by one relay at a time, in position
//! order. A crash between publishing and marking leaves rows unsent; they are published again
//! with the same `Nats-Msg-Id` and JetStream drops the duplicates.

use std::future::Future;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use async_nats::HeaderMap;
use hexabase_command::store::{StoredEvent, OUTBOX_CHANNEL, OUTBOX_PARTITIONS};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::stream::EventStream;

/// Advisory-lock namespace of the outbox partitions.
const LOCK_NAMESPACE: i32 = 0x4842_4f42; // "HBOB"

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("event {0} cannot be serialised: {1}")]
    Encode(i64, serde_json::Error),
}

#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    events: EventStream,
    batch: i64,
    poll_interval: Duration,
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context, events: EventStream) -> Self {
        Self {
            pool,
            js,
            events,
            batch: 500,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Run until `shutdown` resolves: drain, then sleep until the outbox trigger notifies (or
    /// the poll interval passes, in case a notification was missed).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        self.events
            .ensure(&self.js)
            .await
            .map_err(|e| RelayError::JetStream(e.to_string()))?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(OUTBOX_CHANNEL).await?;
        tracing::info!(stream = %self.events.stream, "outbox relay running");
        tokio::pin!(shutdown);
        loop {
            let published = match self.drain().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "relay pass failed; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    0
                }
            };
            if published > 0 {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = listener.recv() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One pass over every partition this relay can lock; returns how many events it published.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        for partition in 0..OUTBOX_PARTITIONS {
            let mut tx = self.pool.begin().await?;
            let Some(events) = self.claim(&mut tx, partition).await? else {
                continue;
            };
            if events.is_empty() {
                continue;
            }
            self.publish(&events).await?;
            mark_sent(&mut tx, &events).await?;
            tx.commit().await?;
            metrics::counter!("hexabase_outbox_published_total").increment(events.len() as u64);
            published += events.len();
        }
        Ok(published)
    }

    /// Lock a partition for this transaction and read its unsent events in position order.
    /// `None` when another relay holds the partition.
    pub async fn claim(
        &self,
        tx: &mut PgConnection,
        partition: i16,
    ) -> Result<Option<Vec<StoredEvent>>, RelayError> {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
            .bind(LOCK_NAMESPACE)
            .bind(i32::from(partition))
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let events = sqlx::query_as::<_, StoredEvent>(
            "SELECT e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                    e.event_version, e.payload, e.metadata, e.recorded_at \
             FROM outbox o JOIN events e ON e.position = o.position \
             WHERE o.partition = $1 AND o.sent_at IS NULL \
             ORDER BY o.position LIMIT $2",
        )
        .bind(partition)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Some(events))
    }

    /// Publish in order and wait for every acknowledgement. Publishes are pipelined on one
    /// connection, which keeps their order.
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<(), RelayError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, event.position.to_string().as_str());
            let body =
                serde_json::to_vec(event).map_err(|e| RelayError::Encode(event.position, e))?;
            let ack = self
                .js
                .publish_with_headers(self.events.subject_for(event), headers, body.into())
                .await
                .map_err(|e| RelayError::JetStream(e.to_string()))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| RelayError::JetStream(e.to_string()))?;
        }
        Ok(())
    }
}

pub async fn mark_sent(tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), RelayError> {
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE position = ANY($1)")
        .bind(&positions)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Events committed but not yet published (the `hexabase_outbox_backlog` gauge).
pub async fn backlog(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
}
