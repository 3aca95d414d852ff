use futures::TryStreamExt;
use hexabase_command::store::stream_all;
use sqlx::PgPool;

use crate::projection::{apply_batch, lock, Mode, Projection, ProjectionError};

/// Events applied together while rebuilding.
const REPLAY_BATCH: usize = 1000;

/// Drop one read model and rebuild it from the event store, in one transaction: readers keep
/// seeing the old model until the new one commits (rows are deleted, not truncated), and the
/// live projector waits on the projection's lock, then skips what the replay already applied.
pub async fn replay(pool: &PgPool, projection: &dyn Projection) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection, Mode::Exclusive).await?;
    for table in projection.tables() {
        // Table names are compile-time constants of the projection, never input.
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM projection_offsets WHERE projection = $1")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let mut events = stream_all(pool);
    let mut count = 0;
    let mut batch = Vec::with_capacity(REPLAY_BATCH);
    while let Some(event) = events.try_next().await? {
        if projection.handles(&event.aggregate_type) {
            batch.push(event);
            count += 1;
        }
        if batch.len() == REPLAY_BATCH {
            apply_batch(projection, &mut tx, &batch).await?;
            batch.clear();
        }
    }
    apply_batch(projection, &mut tx, &batch).await?;
    tx.commit().await?;
    Ok(count)
}
