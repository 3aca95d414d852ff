//! Reading your own writes: a write answers with the position of its event; a read that passes
//! it waits (bounded) until the projection it reads from has applied that event.

use std::time::Duration;

use hexabase_command::store::event_at;
use sqlx::PgPool;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("no event has position {0}")]
    UnknownPosition(i64),
    #[error("the read model has not caught up with position {0} yet; retry shortly")]
    NotYet(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn wait_for(
    pool: &PgPool,
    projection: &str,
    position: i64,
    timeout: Duration,
) -> Result<(), WaitError> {
    let event = event_at(pool, position)
        .await?
        .ok_or(WaitError::UnknownPosition(position))?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let applied: Option<i64> = sqlx::query_scalar(
            "SELECT sequence FROM projection_offsets \
             WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
        )
        .bind(projection)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .fetch_optional(pool)
        .await?;
        if applied.is_some_and(|seq| seq >= event.sequence) {
            return Ok(());
        }
        if Instant::now() + pause > deadline {
            return Err(WaitError::NotYet(position));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
