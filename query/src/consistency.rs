//! Reading your own writes: a write answers with the position of its event; a read that passes
//! it waits (bounded) until the projections it reads from reflect everything up to that event.

use std::time::Duration;

use hexabase_command::store::{event_at, StoredEvent};
use sqlx::PgPool;
use tokio::time::Instant;

use crate::read_model::{self, ReadModel};

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("no event has position {0}")]
    UnknownPosition(i64),
    #[error("the read model has not caught up with position {0} yet; retry shortly")]
    NotYet(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Wait until `projection` has applied the event at `position` (and so every earlier event of
/// its aggregate); returns that event.
pub async fn wait_for(
    pool: &PgPool,
    projection: &str,
    position: i64,
    deadline: Instant,
) -> Result<StoredEvent, WaitError> {
    let event = event_at(pool, position)
        .await?
        .ok_or(WaitError::UnknownPosition(position))?;
    let found = read_model::by_name(projection);
    if !found.is_none_or(|p| p.handles(&event.aggregate_type)) {
        // Nothing of that aggregate is in this read model: it reflects the event already.
        return Ok(event);
    }
    reach(
        pool,
        projection,
        found,
        (&event.aggregate_type, &event.aggregate_id),
        event.sequence,
        position,
        deadline,
    )
    .await?;
    Ok(event)
}

/// Wait until `projection` has applied every event of one aggregate recorded at or before
/// `position` — for reads that also depend on another aggregate than the one written (a
/// workspace read checks the caller's membership of the organization).
pub async fn wait_for_aggregate(
    pool: &PgPool,
    projection: &str,
    aggregate: (&str, &str),
    position: i64,
    deadline: Instant,
) -> Result<(), WaitError> {
    let sequence: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND position <= $3 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate.0)
    .bind(aggregate.1)
    .bind(position)
    .fetch_optional(pool)
    .await?;
    match sequence {
        Some(sequence) => {
            let found = read_model::by_name(projection);
            reach(
                pool, projection, found, aggregate, sequence, position, deadline,
            )
            .await
        }
        None => Ok(()),
    }
}

/// `found`: the read model named `projection`, when there is one by that name.
async fn reach(
    pool: &PgPool,
    projection: &str,
    found: Option<&ReadModel>,
    (aggregate_type, aggregate_id): (&str, &str),
    sequence: i64,
    position: i64,
    deadline: Instant,
) -> Result<(), WaitError> {
    let by_position = found
        .filter(|p| p.applies_by_position(aggregate_type))
        .and_then(|p| p.by_position);
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = match by_position {
            Some(by_position) => {
                applied_by_position(
                    pool,
                    by_position.table,
                    aggregate_type,
                    aggregate_id,
                    sequence,
                )
                .await?
            }
            None => {
                let applied: Option<i64> = sqlx::query_scalar(
                    "SELECT sequence FROM projection_offsets \
                     WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
                )
                .bind(projection)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(pool)
                .await?;
                applied.is_some_and(|seq| seq >= sequence)
            }
        };
        if reached {
            return Ok(());
        }
        if Instant::now() + pause > deadline {
            return Err(WaitError::NotYet(position));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Events applied by position move no checkpoint but leave a row keyed by it in `table`: every
/// event of the aggregate up to `sequence` must have its row.
async fn applied_by_position(
    pool: &PgPool,
    table: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> sqlx::Result<bool> {
    // `table` is the projection's own constant, never input.
    let query = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM events e \
            WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.sequence <= $3 \
              AND NOT EXISTS (SELECT 1 FROM {table} a WHERE a.position = e.position))"
    );
    sqlx::query_scalar(&query)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_one(pool)
        .await
}
