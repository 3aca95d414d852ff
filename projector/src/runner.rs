use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::StreamExt;
use hexabase_command::store::StoredEvent;
use sqlx::PgPool;

use crate::projection::{apply, lock, Applied, Mode, Projection, ProjectionError};
use crate::stream::EventStream;

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

/// Consume the event stream into one projection until `shutdown` resolves.
///
/// The consumer is durable and named after the projection, so every worker running this
/// projection shares it (each message goes to one of them) and progress survives restarts.
/// A message is acknowledged only after its transaction committed; failures are retried.
pub async fn run_projection(
    pool: PgPool,
    js: jetstream::Context,
    events: EventStream,
    projection: Arc<dyn Projection>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let stream = events.ensure(&js).await.map_err(js_err)?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            projection.name(),
            consumer::pull::Config {
                durable_name: Some(projection.name().to_owned()),
                filter_subject: events.all_subjects(),
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
    tracing::info!(projection = projection.name(), "projection running");
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = messages.next() => match next {
                Some(batch) => batch,
                None => return Err(js_err("consumer stream ended")),
            },
        };
        let mut received = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                // Events of aggregates this projection does not read: nothing to write.
                Ok(message) if !reads(projection.as_ref(), &events, &message.subject) => {
                    if let Err(e) = message.ack().await {
                        tracing::warn!(projection = projection.name(), error = %e, "ack failed");
                    }
                }
                Ok(message) => received.push(message),
                Err(e) => {
                    tracing::warn!(projection = projection.name(), error = %e, "consumer error")
                }
            }
        }
        if received.is_empty() {
            continue;
        }
        let events: Vec<Result<StoredEvent, ProjectionError>> = received
            .iter()
            .map(|message| {
                serde_json::from_slice::<StoredEvent>(&message.payload).map_err(|e| {
                    ProjectionError::Malformed {
                        position: -1,
                        event_type: message.subject.to_string(),
                        reason: e.to_string(),
                    }
                })
            })
            .collect();
        // One transaction for the batch; if it fails, each event alone, so one bad event
        // neither blocks nor repeats the others.
        let outcomes = match handle_batch(&pool, projection.as_ref(), &events).await {
            Ok(()) => events.iter().map(|_| Ok(())).collect(),
            Err(_) => {
                let mut outcomes = Vec::with_capacity(events.len());
                for event in &events {
                    outcomes.push(
                        handle_batch(&pool, projection.as_ref(), std::slice::from_ref(event)).await,
                    );
                }
                outcomes
            }
        };
        for (message, outcome) in received.iter().zip(outcomes) {
            let ack = match outcome {
                Ok(()) => message.ack().await,
                // A message that is not an event will never become one: drop it, loudly. (The
                // event store is the source of truth; a real event is re-read from there by
                // the gap fill of its aggregate's next event, or by `replay`.)
                Err(e @ ProjectionError::Malformed { position: -1, .. }) => {
                    metrics::counter!("hexabase_projection_errors_total", "projection" => projection.name()).increment(1);
                    tracing::error!(projection = projection.name(), error = %e, "unreadable message dropped");
                    message.ack_with(AckKind::Term).await
                }
                Err(e) => {
                    metrics::counter!("hexabase_projection_errors_total", "projection" => projection.name()).increment(1);
                    tracing::error!(projection = projection.name(), error = %e, "apply failed; will retry");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            };
            if let Err(e) = ack {
                // Not fatal: an unacknowledged message is redelivered and applying it is idempotent.
                tracing::warn!(projection = projection.name(), error = %e, "ack failed");
            }
        }
    }
}

/// Whether the message on `subject` (`{prefix}.{AggregateType}.{id}`) is for `projection`;
/// anything unexpected is, so that it is looked at.
fn reads(projection: &dyn Projection, events: &EventStream, subject: &str) -> bool {
    subject
        .strip_prefix(events.subject_prefix.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split('.').next())
        .is_none_or(|aggregate_type| projection.handles(aggregate_type))
}

async fn handle_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    events: &[Result<StoredEvent, ProjectionError>],
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection, Mode::Shared).await?;
    // Aggregates in one order in every transaction, so workers sharing the consumer wait for
    // each other's checkpoint rows instead of deadlocking on them.
    let mut ordered: Vec<&Result<StoredEvent, ProjectionError>> = events.iter().collect();
    ordered.sort_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => (&a.aggregate_type, &a.aggregate_id, a.sequence).cmp(&(
            &b.aggregate_type,
            &b.aggregate_id,
            b.sequence,
        )),
        _ => std::cmp::Ordering::Equal,
    });
    let mut applied = Vec::with_capacity(events.len());
    for event in ordered {
        let event = event.as_ref().map_err(|e| ProjectionError::Malformed {
            position: -1,
            event_type: String::new(),
            reason: e.to_string(),
        })?;
        if let Applied::Applied { .. } = apply(projection, &mut tx, event).await? {
            applied.push(event.recorded_at);
        }
    }
    tx.commit().await?;
    let now = Utc::now();
    for recorded_at in applied {
        let lag = (now - recorded_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        metrics::histogram!("hexabase_projection_lag_seconds", "projection" => projection.name())
            .record(lag.max(0.0));
    }
    Ok(())
}
