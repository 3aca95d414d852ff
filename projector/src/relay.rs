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
use hexabase_command::store::{StoredEvent, OUTBOX_CHANNEL};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::stream::EventStream;

/// How long a busy relay waits after a notification before it claims.
const LINGER: Duration = Duration::from_millis(5);

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
            // A full batch may have left more behind; otherwise whatever was committed since
            // the claim has notified, and the wait ends at once.
            if published as i64 >= self.batch {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    () = std::future::ready(()) => continue,
                }
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                received = listener.recv() => {
                    if let Err(e) = received {
                        tracing::warn!(error = %e, "outbox notifications interrupted; reconnecting");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
                () = tokio::time::sleep(self.poll_interval) => {}
            }
            // Under load (the last pass found several), let a few more commits land so that
            // one pass publishes them together; a lone event goes out at once.
            if published > 1 {
                tokio::time::sleep(LINGER).await;
            }
        }
    }

    /// Publish one batch; returns how many events it published (0 when there is nothing
    /// this relay may publish now).
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let events = self.claim(&mut tx).await?;
        if events.is_empty() {
            return Ok(0);
        }
        self.publish(&events).await?;
        mark_sent(&mut tx, &events).await?;
        tx.commit().await?;
        metrics::counter!("hexabase_outbox_published_total").increment(events.len() as u64);
        Ok(events.len())
    }

    /// Read the oldest unsent events, in position order, of the partitions this transaction
    /// can lock; partitions another relay holds are skipped whole. `FOR UPDATE` re-checks
    /// `sent_at` on the newest row version, so rows another relay marked sent after this
    /// statement's snapshot was taken are not published again.
    pub async fn claim(&self, tx: &mut PgConnection) -> Result<Vec<StoredEvent>, RelayError> {
        let events = sqlx::query_as::<_, StoredEvent>(
            "WITH claimed AS ( \
                 SELECT position FROM outbox \
                 WHERE sent_at IS NULL AND pg_try_advisory_xact_lock($1, partition) \
                 ORDER BY position LIMIT $2 FOR UPDATE) \
             SELECT e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                    e.event_version, e.payload, e.metadata, e.recorded_at \
             FROM claimed c JOIN events e ON e.position = c.position \
             ORDER BY e.position",
        )
        .bind(LOCK_NAMESPACE)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        Ok(events)
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
