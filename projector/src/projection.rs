use async_trait::async_trait;
use hexabase_command::store::{aggregate_events, StoredEvent};
use sqlx::PgConnection;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {position} ({event_type}) cannot be read: {reason}")]
    Malformed {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error(
        "events of {aggregate_id} between sequence {from} and {to} are missing from the store"
    )]
    Gap {
        aggregate_id: String,
        from: i64,
        to: i64,
    },
}

impl ProjectionError {
    pub fn malformed(event: &StoredEvent, reason: impl ToString) -> Self {
        Self::Malformed {
            position: event.position,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}

/// A read model built from events. `apply_event` runs inside the transaction that also moves
/// the projection's checkpoint, so a row is written exactly when its event is marked applied.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Tables owned by this projection; `replay` empties them before rebuilding.
    fn tables(&self) -> &'static [&'static str];
    /// The aggregate types whose events this projection reads; the others never reach
    /// `apply_event` and leave no checkpoint.
    fn aggregate_types(&self) -> &'static [&'static str];
    fn handles(&self, aggregate_type: &str) -> bool {
        self.aggregate_types().contains(&aggregate_type)
    }
    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live appliers: any number at once.
    Shared,
    /// A replay: alone.
    Exclusive,
}

/// Take the projection's transaction-scoped lock, so a replay and live appliers never
/// interleave (and never deadlock on each other's checkpoint rows).
pub async fn lock(
    db: &mut PgConnection,
    projection: &dyn Projection,
    mode: Mode,
) -> Result<(), ProjectionError> {
    let sql = match mode {
        Mode::Shared => {
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('projection:' || $1, 0))"
        }
        Mode::Exclusive => "SELECT pg_advisory_xact_lock(hashtextextended('projection:' || $1, 0))",
    };
    sqlx::query(sql)
        .bind(projection.name())
        .execute(&mut *db)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now (with `n` earlier events of the aggregate fetched from the store first).
    Applied { caught_up: usize },
    /// Already applied before: a redelivery.
    Duplicate,
}

/// The single apply path: idempotent, ordered per aggregate, safe under redelivery and under
/// several workers sharing one consumer.
///
/// The checkpoint row is locked first, so two workers handling events of one aggregate
/// serialise here. An event that arrives ahead of its predecessors (possible when workers
/// share a consumer) first applies the missing ones from the event store, which is the source
/// of truth.
pub async fn apply(
    projection: &dyn Projection,
    db: &mut PgConnection,
    event: &StoredEvent,
) -> Result<Applied, ProjectionError> {
    // Common cases in one statement each: the next event of a known aggregate, or the first
    // event of a new one. The row lock taken here orders concurrent appliers of one aggregate.
    let advanced = if event.sequence == 1 {
        sqlx::query(
            "INSERT INTO projection_offsets (projection, aggregate_type, aggregate_id, sequence, position) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (projection, aggregate_type, aggregate_id) DO NOTHING",
        )
        .bind(projection.name())
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.position)
        .execute(&mut *db)
        .await?
    } else {
        advance(projection, db, event, event.sequence - 1).await?
    };
    if advanced.rows_affected() == 1 {
        projection.apply_event(&mut *db, event).await?;
        return Ok(Applied::Applied { caught_up: 0 });
    }
    apply_out_of_order(projection, db, event).await
}

/// A redelivery, or an event that overtook its predecessors.
async fn apply_out_of_order(
    projection: &dyn Projection,
    db: &mut PgConnection,
    event: &StoredEvent,
) -> Result<Applied, ProjectionError> {
    let applied: i64 = sqlx::query_scalar(
        "INSERT INTO projection_offsets (projection, aggregate_type, aggregate_id, sequence, position) \
         VALUES ($1, $2, $3, 0, 0) \
         ON CONFLICT (projection, aggregate_type, aggregate_id) \
         DO UPDATE SET sequence = projection_offsets.sequence \
         RETURNING sequence",
    )
    .bind(projection.name())
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .fetch_one(&mut *db)
    .await?;
    if event.sequence <= applied {
        return Ok(Applied::Duplicate);
    }
    let mut caught_up = 0;
    if event.sequence > applied + 1 {
        let missing = aggregate_events(
            &mut *db,
            &event.aggregate_type,
            &event.aggregate_id,
            applied + 1,
            event.sequence - 1,
        )
        .await?;
        if missing.len() as i64 != event.sequence - 1 - applied {
            return Err(ProjectionError::Gap {
                aggregate_id: event.aggregate_id.clone(),
                from: applied + 1,
                to: event.sequence - 1,
            });
        }
        for earlier in &missing {
            projection.apply_event(&mut *db, earlier).await?;
        }
        caught_up = missing.len();
    }
    projection.apply_event(&mut *db, event).await?;
    advance(projection, db, event, applied).await?;
    Ok(Applied::Applied { caught_up })
}

/// Move the checkpoint of `event`'s aggregate to `event`, if it stands at `from`.
async fn advance(
    projection: &dyn Projection,
    db: &mut PgConnection,
    event: &StoredEvent,
    from: i64,
) -> Result<sqlx::postgres::PgQueryResult, ProjectionError> {
    Ok(sqlx::query(
        "UPDATE projection_offsets SET sequence = $4, position = $5, applied_at = clock_timestamp() \
         WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence = $6",
    )
    .bind(projection.name())
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .bind(event.position)
    .bind(from)
    .execute(&mut *db)
    .await?)
}
