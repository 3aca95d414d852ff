use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::{FutureExt, StreamExt};
use hexabase_command::store::StoredEvent;
use sqlx::PgPool;

use crate::projection::{apply_batch, lock, Mode, Projection, ProjectionError};
use crate::stream::EventStream;

/// How long a busy projection gathers events before it writes them.
const LINGER: Duration = Duration::from_millis(5);

/// Most events applied in one transaction.
const MAX_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_err(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::JetStream(e.to_string())
}

/// Name of the durable consumer through which `projection` reads one aggregate type.
pub fn consumer_name(projection: &dyn Projection, aggregate_type: &str) -> String {
    format!("{}-{aggregate_type}", projection.name())
}

/// Consume the event stream into one projection until `shutdown` resolves.
///
/// One durable consumer per aggregate type the projection reads, filtered by subject, so
/// JetStream delivers only the events the projection needs (an aggregate's events share one
/// subject and keep their order). Consumers are named after the projection and the type, so
/// every worker running this projection shares them (each message goes to one of them) and
/// progress survives restarts. A message is acknowledged only after its transaction committed;
/// failures are retried.
pub async fn run_projection(
    pool: PgPool,
    js: jetstream::Context,
    events: EventStream,
    projection: Arc<dyn Projection>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let stream = events.ensure(&js).await.map_err(js_err)?;
    // Before one consumer per aggregate type, each projection had one consumer on every
    // subject, named after it; left alone it would keep its state on the server for good.
    if stream.consumer_info(projection.name()).await.is_ok() {
        match stream.delete_consumer(projection.name()).await {
            Ok(_) => tracing::info!(
                projection = projection.name(),
                "removed the projection's consumer of the earlier layout"
            ),
            // Another worker starting at the same time removed it first.
            Err(e) => {
                tracing::debug!(projection = projection.name(), error = %e, "consumer not removed")
            }
        }
    }
    let shutdown = shutdown.shared();
    let consumers = projection.aggregate_types().iter().map(|aggregate_type| {
        consume(
            &pool,
            &stream,
            &events,
            projection.as_ref(),
            aggregate_type,
            shutdown.clone(),
        )
    });
    futures::future::try_join_all(consumers).await?;
    Ok(())
}

async fn consume(
    pool: &PgPool,
    stream: &jetstream::stream::Stream,
    events: &EventStream,
    projection: &dyn Projection,
    aggregate_type: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let name = consumer_name(projection, aggregate_type);
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: events.subjects_of(aggregate_type),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(js_err)?;
    // Whatever has arrived is applied in one transaction (up to a bound), so a backlog drains
    // at batch speed while a single event still goes through at once.
    let mut messages = consumer
        .messages()
        .await
        .map_err(js_err)?
        .ready_chunks(MAX_BATCH);
    tracing::info!(
        projection = projection.name(),
        aggregate_type,
        "projection running"
    );
    tokio::pin!(shutdown);
    loop {
        let mut batch = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = messages.next() => match next {
                Some(batch) => batch,
                None => return Err(js_err("consumer stream ended")),
            },
        };
        // Several at once means a busy stream: gather a little more before writing.
        if batch.len() > 1 {
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while batch.len() < MAX_BATCH {
                tokio::select! {
                    () = &mut linger => break,
                    next = messages.next() => match next {
                        Some(more) => batch.extend(more),
                        None => break,
                    },
                }
            }
        }
        let mut received = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for item in batch {
            let message = match item {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(projection = projection.name(), error = %e, "consumer error");
                    continue;
                }
            };
            match serde_json::from_slice::<StoredEvent>(&message.payload) {
                Ok(event) => {
                    received.push(message);
                    events.push(event);
                }
                // A message that is not an event will never become one: drop it, loudly. (The
                // event store is the source of truth; a real event is re-read from there by
                // the gap fill of its aggregate's next event, or by `replay`.)
                Err(e) => {
                    metrics::counter!("hexabase_projection_errors_total", "projection" => projection.name()).increment(1);
                    tracing::error!(projection = projection.name(), subject = %message.subject, error = %e, "unreadable message dropped");
                    acknowledge(projection, message.ack_with(AckKind::Term).await);
                }
            }
        }
        if events.is_empty() {
            continue;
        }
        // One transaction for the batch; if it fails, each event alone, so one bad event
        // neither blocks nor repeats the others.
        let outcomes = match handle_batch(pool, projection, &events).await {
            Ok(()) => events.iter().map(|_| Ok(())).collect(),
            Err(_) => {
                let mut outcomes = Vec::with_capacity(events.len());
                for event in &events {
                    outcomes
                        .push(handle_batch(pool, projection, std::slice::from_ref(event)).await);
                }
                outcomes
            }
        };
        for (message, outcome) in received.iter().zip(outcomes) {
            let ack = match outcome {
                Ok(()) => message.ack().await,
                Err(e) => {
                    metrics::counter!("hexabase_projection_errors_total", "projection" => projection.name()).increment(1);
                    tracing::error!(projection = projection.name(), error = %e, "apply failed; will retry");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            };
            acknowledge(projection, ack);
        }
    }
}

/// Not fatal: an unacknowledged message is redelivered and applying it is idempotent.
fn acknowledge<E: std::fmt::Display>(projection: &dyn Projection, ack: Result<(), E>) {
    if let Err(e) = ack {
        tracing::warn!(projection = projection.name(), error = %e, "ack failed");
    }
}

async fn handle_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection, Mode::Shared).await?;
    let outcome = apply_batch(projection, &mut tx, events).await?;
    tx.commit().await?;
    let now = Utc::now();
    for event in outcome.applied {
        let lag = (now - event.recorded_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        metrics::histogram!("hexabase_projection_lag_seconds", "projection" => projection.name())
            .record(lag.max(0.0));
    }
    Ok(())
}
