use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::StreamExt;
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

/// Name of the durable consumer through which `projection` reads its events.
pub fn consumer_name(projection: &dyn Projection) -> String {
    projection.name().to_owned()
}

/// Names of the consumers of the earlier layout, one per projection and aggregate type.
fn per_type_consumer_name(projection: &dyn Projection, aggregate_type: &str) -> String {
    format!("{}-{aggregate_type}", projection.name())
}

/// Consume the event stream into one projection until `shutdown` resolves.
///
/// One durable consumer per projection, filtered by the subjects of the aggregate types it
/// reads, so JetStream delivers only the events the projection needs (an aggregate's events
/// share one subject and keep their order). The consumer is named after the projection, so
/// every worker running it shares it (each message goes to one of them) and progress survives
/// restarts. A message is acknowledged only after its transaction committed; failures are
/// retried.
pub async fn run_projection(
    pool: PgPool,
    js: jetstream::Context,
    events: EventStream,
    projection: Arc<dyn Projection>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let stream = events.ensure(&js).await.map_err(js_err)?;
    let consumer = consumer(&stream, &events, projection.as_ref()).await?;
    consume(&pool, consumer, projection.as_ref(), shutdown).await
}

/// The projection's consumer; created on first use where the consumers of earlier layouts
/// (one for every subject, or one per aggregate type) had got to, which are then removed.
async fn consumer(
    stream: &jetstream::stream::Stream,
    events: &EventStream,
    projection: &dyn Projection,
) -> Result<consumer::PullConsumer, RunnerError> {
    let name = consumer_name(projection);
    let mut subjects: Vec<String> = projection
        .aggregate_types()
        .iter()
        .map(|t| events.subjects_of(t))
        .collect();
    subjects.sort();
    let mut earlier: Vec<String> = projection
        .aggregate_types()
        .iter()
        .map(|t| per_type_consumer_name(projection, t))
        .collect();
    let current: Option<consumer::PullConsumer> = stream.get_consumer(&name).await.ok();
    if let Some(consumer) = current {
        let mut filters = consumer.cached_info().config.filter_subjects.clone();
        filters.sort();
        if filters == subjects {
            remove(stream, projection, &earlier).await;
            return Ok(consumer);
        }
        // The first layout's consumer of every subject, under the same name.
        earlier.push(name.clone());
    }
    // Resume where the slowest earlier consumer had everything acknowledged: what comes after
    // is delivered again, and what was applied already is skipped as a redelivery.
    let mut floors = Vec::new();
    for old in &earlier {
        let found: Result<consumer::PullConsumer, _> = stream.get_consumer(old).await;
        if let Ok(found) = found {
            floors.push(found.cached_info().ack_floor.stream_sequence);
        }
    }
    // The first layout's consumer holds the name; the others go once their successor exists,
    // so a worker stopped in between leaves a position to resume from.
    if earlier.contains(&name) {
        remove(stream, projection, std::slice::from_ref(&name)).await;
    }
    let deliver_policy = match floors.iter().min() {
        Some(floor) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        },
        None => consumer::DeliverPolicy::All,
    };
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subjects: subjects,
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let consumer = match stream.create_consumer(config).await {
        Ok(consumer) => consumer,
        // Another worker starting at the same time created it first.
        Err(e) => stream.get_consumer(&name).await.map_err(|_| js_err(e))?,
    };
    if !floors.is_empty() {
        earlier.retain(|old| *old != name);
        remove(stream, projection, &earlier).await;
        tracing::info!(
            projection = projection.name(),
            "the projection's consumers of the earlier layout were replaced by one"
        );
    }
    Ok(consumer)
}

/// Remove consumers of an earlier layout (mostly gone already, or removed by another worker).
async fn remove(stream: &jetstream::stream::Stream, projection: &dyn Projection, names: &[String]) {
    for name in names {
        if let Err(e) = stream.delete_consumer(name).await {
            tracing::debug!(projection = projection.name(), consumer = %name, error = %e, "consumer not removed");
        }
    }
}

async fn consume(
    pool: &PgPool,
    consumer: consumer::PullConsumer,
    projection: &dyn Projection,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    // Whatever has arrived is applied in one transaction (up to a bound), so a backlog drains
    // at batch speed while a single event still goes through at once.
    let mut messages = consumer
        .messages()
        .await
        .map_err(js_err)?
        .ready_chunks(MAX_BATCH);
    tracing::info!(projection = projection.name(), "projection running");
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
    let lags =
        metrics::histogram!("hexabase_projection_lag_seconds", "projection" => projection.name());
    for event in outcome.applied {
        let lag = (now - event.recorded_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        lags.record(lag.max(0.0));
    }
    Ok(())
}
