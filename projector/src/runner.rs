use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::StreamExt;
use hexabase_command::store::StoredEvent;
use sqlx::PgPool;

use crate::projection::{apply, Applied, Projection, ProjectionError};
use crate::stream::EventStream;

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
    let mut messages = consumer.messages().await.map_err(js_err)?;
    tracing::info!(projection = projection.name(), "projection running");
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = messages.next() => match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::warn!(projection = projection.name(), error = %e, "consumer error");
                    continue;
                }
                None => return Err(js_err("consumer stream ended")),
            },
        };
        let outcome = match serde_json::from_slice::<StoredEvent>(&message.payload) {
            Ok(event) => handle(&pool, projection.as_ref(), &event).await,
            Err(e) => Err(ProjectionError::Malformed {
                position: -1,
                event_type: message.subject.to_string(),
                reason: e.to_string(),
            }),
        };
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
        if let Err(e) = ack {
            // Not fatal: an unacknowledged message is redelivered and applying it is idempotent.
            tracing::warn!(projection = projection.name(), error = %e, "ack failed");
        }
    }
}

async fn handle(
    pool: &PgPool,
    projection: &dyn Projection,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    let applied = apply(projection, &mut tx, event).await?;
    tx.commit().await?;
    if let Applied::Applied { .. } = applied {
        let lag = (Utc::now() - event.recorded_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        metrics::histogram!("hexabase_projection_lag_seconds", "projection" => projection.name())
            .record(lag.max(0.0));
    }
    Ok(())
}
