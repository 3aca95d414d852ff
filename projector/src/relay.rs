//! The outbox relay: publishes committed events to JetStream, then moves its cursors past them.
//!
//! The outbox is split into partitions, each with a cursor: every row of the partition at or
//! below it has been published. A pass locks the cursors no other relay holds, so any number of
//! relays can run: they split the partitions between them, and one aggregate (always in one
//! partition) is published by one relay at a time, in position order. Events become visible in
//! position order (appends are serialised by a lock in the event store), so a cursor never
//! passes an event that commits later. A crash between publishing and moving the cursor leaves
//! the events behind it; they are published again with the same `Nats-Msg-Id` and JetStream
//! drops the duplicates.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::FutureExt;
use hexabase_command::store::{StoredEvent, OUTBOX_CHANNEL};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::stream::EventStream;

/// How long a busy relay waits after a notification before it claims.
const LINGER: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("event {0} cannot be serialised: {1}")]
    Encode(i64, serde_json::Error),
}

/// The task subject an event also travels on, if it starts work elsewhere (sagas).
pub type TaskRoute = Arc<dyn Fn(&StoredEvent) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    events: EventStream,
    tasks: Option<TaskRoute>,
    batch: i64,
    poll_interval: Duration,
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context, events: EventStream) -> Self {
        Self {
            pool,
            js,
            events,
            tasks: None,
            batch: 500,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Also publish each event `route` names a task subject for on that subject (with the
    /// message id `task-<position>`), so the workers' task consumer hears of it. Its stream must
    /// exist before the relay runs.
    pub fn with_tasks(mut self, route: TaskRoute) -> Self {
        self.tasks = Some(route);
        self
    }

    /// At most `batch` events a pass (500 by default).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
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
            // Every notification received so far is for a commit the next pass will see: let
            // it answer them all, instead of one pass each finding nothing.
            while let Some(Ok(_)) = listener.recv().now_or_never() {}
        }
    }

    /// Publish one batch; returns how many events it published (0 when there is nothing
    /// this relay may publish now).
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let claim = self.claim(&mut tx).await?;
        // The cursors are released before the next pass: a transaction merely dropped is rolled
        // back only when its connection goes back to the pool, and until then the next pass
        // would find every cursor locked and publish nothing.
        if claim.events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        if let Err(e) = self.publish(&claim.events).await {
            tx.rollback().await?;
            return Err(e);
        }
        claim.advance(&mut tx).await?;
        tx.commit().await?;
        metrics::counter!("hexabase_outbox_published_total").increment(claim.events.len() as u64);
        Ok(claim.events.len())
    }

    /// Read the oldest unpublished events, in position order, of the partitions whose cursors
    /// this transaction can lock; partitions another relay holds are skipped whole. The events
    /// are read by a statement after the locks were taken, so it sees everything a relay that
    /// held them before committed.
    pub async fn claim(&self, tx: &mut PgConnection) -> Result<Claim, RelayError> {
        let cursors: Vec<(i16, i64)> = sqlx::query_as(
            "SELECT partition, position FROM outbox_cursors \
             ORDER BY partition FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(from) = cursors.iter().map(|(_, position)| *position).min() else {
            return Ok(Claim::default());
        };
        // Each locked partition's cursor, indexed by partition (the others never pass).
        let slots = cursors
            .iter()
            .filter_map(|(partition, _)| usize::try_from(*partition).ok())
            .max()
            .map_or(0, |p| p + 1);
        let mut after = vec![i64::MAX; slots];
        for (partition, position) in &cursors {
            if let Some(slot) = usize::try_from(*partition)
                .ok()
                .and_then(|p| after.get_mut(p))
            {
                *slot = *position;
            }
        }
        let events = sqlx::query_as::<_, StoredEvent>(
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, \
                    event_version, payload, metadata, recorded_at \
             FROM events \
             WHERE position = ANY(ARRAY( \
                 SELECT position FROM outbox \
                 WHERE position > $1 AND position > ($2::bigint[])[partition + 1] \
                 ORDER BY position LIMIT $3)) \
             ORDER BY position",
        )
        .bind(from)
        .bind(&after)
        .bind(self.batch)
        // Planned for these cursors each time: a plan cached for any cursor would read the
        // whole outbox.
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Claim {
            partitions: cursors
                .into_iter()
                .map(|(partition, _)| partition)
                .collect(),
            events,
        })
    }

    /// Publish in order and wait for every acknowledgement. Publishes are pipelined on one
    /// connection, which keeps their order.
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<(), RelayError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, event.position.to_string().as_str());
            let body: Bytes = serde_json::to_vec(event)
                .map_err(|e| RelayError::Encode(event.position, e))?
                .into();
            let ack = self
                .js
                .publish_with_headers(self.events.subject_for(event), headers, body.clone())
                .await
                .map_err(|e| RelayError::JetStream(e.to_string()))?;
            acks.push(ack);
            if let Some(subject) = self.tasks.as_ref().and_then(|route| route(event)) {
                let mut headers = HeaderMap::new();
                headers.insert(NATS_MESSAGE_ID, format!("task-{}", event.position).as_str());
                let ack = self
                    .js
                    .publish_with_headers(subject, headers, body)
                    .await
                    .map_err(|e| RelayError::JetStream(e.to_string()))?;
                acks.push(ack);
            }
        }
        for ack in acks {
            ack.await
                .map_err(|e| RelayError::JetStream(e.to_string()))?;
        }
        Ok(())
    }
}

/// Events claimed by one relay pass, and the partitions it holds.
#[derive(Debug, Default)]
pub struct Claim {
    pub partitions: Vec<i16>,
    pub events: Vec<StoredEvent>,
}

impl Claim {
    /// Once the events are published: move every held partition's cursor to the last of them.
    /// The claim read the held partitions in position order up to that event, so none of them
    /// has an unpublished row at or below it, and none can commit there later.
    pub async fn advance(&self, tx: &mut PgConnection) -> Result<(), RelayError> {
        let Some(last) = self.events.iter().map(|e| e.position).max() else {
            return Ok(());
        };
        sqlx::query(
            "UPDATE outbox_cursors SET position = $2 \
             WHERE partition = ANY($1) AND position < $2",
        )
        .bind(&self.partitions)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Events committed but not yet published (the `hexabase_outbox_backlog` gauge).
pub async fn backlog(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM outbox_pending")
        .fetch_one(pool)
        .await
}
