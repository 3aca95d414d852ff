use std::collections::HashMap;

use async_trait::async_trait;
use hexabase_command::store::{aggregate_events, StoredEvent};
pub use hexabase_query::read_model::ByPosition;
use hexabase_query::read_model::ReadModel;
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

/// A read model built from events. `apply_events` runs inside the transaction that also moves
/// the projection's checkpoints, so a row is written exactly when its event is marked applied.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// What it builds: its name, tables, aggregate types and how progress is recorded.
    fn model(&self) -> &'static ReadModel;
    fn name(&self) -> &'static str {
        self.model().name
    }
    /// Tables owned by this projection; `replay` empties them before rebuilding.
    fn tables(&self) -> &'static [&'static str] {
        self.model().tables
    }
    /// The aggregate types whose events this projection reads; the others never reach
    /// `apply_event` and leave no checkpoint.
    fn aggregate_types(&self) -> &'static [&'static str] {
        self.model().aggregate_types
    }
    fn handles(&self, aggregate_type: &str) -> bool {
        self.model().handles(aggregate_type)
    }
    /// Aggregate types applied by position instead of in order (see `ByPosition`); `None`:
    /// every type in order, behind a checkpoint per aggregate.
    fn by_position(&self) -> Option<ByPosition> {
        self.model().by_position
    }
    /// Whether events of `aggregate_type` are applied by position (see `ByPosition`).
    fn applies_by_position(&self, aggregate_type: &str) -> bool {
        self.model().applies_by_position(aggregate_type)
    }
    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;
    /// Apply new events, in order per aggregate. One by one unless the projection writes a
    /// batch in fewer statements.
    async fn apply_events(
        &self,
        db: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply_event(&mut *db, event).await?;
        }
        Ok(())
    }
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

/// What one batch did.
#[derive(Debug, Default)]
pub struct Applied<'e> {
    /// The batch's events applied now.
    pub applied: Vec<&'e StoredEvent>,
    /// Earlier events fetched from the store first, because they had not arrived.
    pub caught_up: usize,
    /// Events applied before: redeliveries (of the types applied in order; one applied by
    /// position again is counted as applied, and writes nothing).
    pub duplicates: usize,
}

/// One aggregate's events within a batch, in sequence order.
struct Run<'e> {
    aggregate_type: &'e str,
    aggregate_id: &'e str,
    events: Vec<&'e StoredEvent>,
}

impl Run<'_> {
    /// Sequences 1, 2, … n without a hole: the whole history so far of a new aggregate.
    fn starts_history(&self) -> bool {
        self.events
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i as i64 + 1)
    }
}

type Key<'a> = (&'a str, &'a str);

/// The single apply path, for the live runner and for `replay`: idempotent, ordered per
/// aggregate, safe under redelivery and under several workers sharing one consumer.
///
/// Events of the types the projection applies by position (`Projection::by_position`) skip the
/// checkpoints: they are handed to the projection once each, in position order, ahead of the
/// others.
///
/// A batch costs a few statements whatever its size: every checkpoint it touches is created or
/// locked and read in one (so two workers handling one aggregate serialise there, always in the
/// same order), those that advanced are moved in one, and the projection writes its rows
/// through `apply_events`. An event that arrives ahead of its predecessors first applies the
/// missing ones from the event store, which is the source of truth; an event applied before
/// is skipped.
pub async fn apply_batch<'e>(
    projection: &dyn Projection,
    db: &mut PgConnection,
    events: &'e [StoredEvent],
) -> Result<Applied<'e>, ProjectionError> {
    let (mut by_position, mut ordered): (Vec<&StoredEvent>, Vec<&StoredEvent>) = events
        .iter()
        .filter(|e| projection.handles(&e.aggregate_type))
        .partition(|e| projection.applies_by_position(&e.aggregate_type));
    by_position.sort_by_key(|e| e.position);
    by_position.dedup_by_key(|e| e.position);
    // Aggregates in one order in every transaction, so workers sharing a consumer wait for
    // each other's checkpoint rows instead of deadlocking on them.
    ordered.sort_by(|a, b| {
        (&a.aggregate_type, &a.aggregate_id, a.sequence).cmp(&(
            &b.aggregate_type,
            &b.aggregate_id,
            b.sequence,
        ))
    });
    let received = ordered.len();
    ordered.dedup_by(|a, b| {
        (&a.aggregate_type, &a.aggregate_id, a.sequence)
            == (&b.aggregate_type, &b.aggregate_id, b.sequence)
    });
    let mut outcome = Applied {
        duplicates: received - ordered.len(),
        ..Applied::default()
    };
    outcome.applied.extend(&by_position);
    let mut runs: Vec<Run<'e>> = Vec::new();
    for event in ordered {
        match runs.last_mut() {
            Some(run)
                if run.aggregate_type == event.aggregate_type
                    && run.aggregate_id == event.aggregate_id =>
            {
                run.events.push(event)
            }
            _ => runs.push(Run {
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                events: vec![event],
            }),
        }
    }
    if runs.is_empty() {
        if !by_position.is_empty() {
            projection.apply_events(&mut *db, &by_position).await?;
        }
        return Ok(outcome);
    }

    // Every checkpoint of the batch in one statement, so in one (sorted) order in every
    // transaction: an aggregate whose whole history is in the batch and that the projection has
    // not seen gets its checkpoint at its last event (nothing more to do for it); any other
    // missing one is created at 0; existing ones are locked and read.
    let last = |r: &Run<'e>| r.events[r.events.len() - 1];
    let fresh = |r: &Run<'e>| r.starts_history().then(|| last(r));
    let checkpoints: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "INSERT INTO projection_offsets (projection, aggregate_type, aggregate_id, sequence, \
                                         position, applied_at) \
         SELECT $1, t, i, s, p, clock_timestamp() \
         FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u(t, i, s, p) \
         ON CONFLICT (projection, aggregate_type, aggregate_id) \
         DO UPDATE SET sequence = projection_offsets.sequence \
         RETURNING aggregate_type, aggregate_id, sequence, xmax = 0 AS inserted",
    )
    .bind(projection.name())
    .bind(runs.iter().map(|r| r.aggregate_type).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.aggregate_id).collect::<Vec<_>>())
    .bind(
        runs.iter()
            .map(|r| fresh(r).map_or(0, |e| e.sequence))
            .collect::<Vec<_>>(),
    )
    .bind(
        runs.iter()
            .map(|r| fresh(r).map_or(0, |e| e.position))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *db)
    .await?;
    // Where each checkpoint stood; `None` when it was just inserted at its run's last event.
    let standing: HashMap<Key, Option<i64>> = checkpoints
        .iter()
        .map(|(t, i, sequence, inserted)| {
            let stood = match (*inserted, *sequence) {
                (true, 0) => Some(0),
                (true, _) => None,
                (false, sequence) => Some(sequence),
            };
            ((t.as_str(), i.as_str()), stood)
        })
        .collect();
    let key_of = |r: &Run<'e>| (r.aggregate_type, r.aggregate_id);
    let is_new = |r: &Run<'e>| matches!(standing.get(&key_of(r)), Some(None));

    // What each other aggregate still needs, from the batch or, past a hole, from the store.
    let mut fetched: HashMap<Key, Vec<StoredEvent>> = HashMap::new();
    let mut pending: HashMap<Key, Vec<&StoredEvent>> = HashMap::new();
    for run in runs.iter().filter(|r| !is_new(r)) {
        let key = key_of(run);
        let applied = standing.get(&key).copied().flatten().unwrap_or(0);
        let new: Vec<&StoredEvent> = run
            .events
            .iter()
            .copied()
            .filter(|e| e.sequence > applied)
            .collect();
        outcome.duplicates += run.events.len() - new.len();
        let Some(last) = new.last() else { continue };
        let contiguous = new
            .iter()
            .enumerate()
            .all(|(k, e)| e.sequence == applied + 1 + k as i64);
        if !contiguous {
            let missing = last.sequence - applied;
            let history = aggregate_events(
                &mut *db,
                run.aggregate_type,
                run.aggregate_id,
                applied + 1,
                last.sequence,
            )
            .await?;
            if history.len() as i64 != missing {
                return Err(ProjectionError::Gap {
                    aggregate_id: run.aggregate_id.to_owned(),
                    from: applied + 1,
                    to: last.sequence,
                });
            }
            outcome.caught_up += history.len() - new.len();
            fetched.insert(key, history);
        }
        pending.insert(key, new);
    }

    let mut list: Vec<&StoredEvent> = by_position;
    let mut moved: Vec<&StoredEvent> = Vec::new();
    for run in &runs {
        let key = key_of(run);
        if is_new(run) {
            list.extend(&run.events);
            outcome.applied.extend(&run.events);
            continue;
        }
        let Some(new) = pending.remove(&key) else {
            continue;
        };
        match fetched.get(&key) {
            Some(history) => list.extend(history),
            None => list.extend(&new),
        }
        if let Some(last) = new.last() {
            moved.push(last);
        }
        outcome.applied.extend(new);
    }
    projection.apply_events(&mut *db, &list).await?;
    if !moved.is_empty() {
        sqlx::query(
            "UPDATE projection_offsets o \
             SET sequence = u.s, position = u.p, applied_at = clock_timestamp() \
             FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u(t, i, s, p) \
             WHERE o.projection = $1 AND o.aggregate_type = u.t AND o.aggregate_id = u.i",
        )
        .bind(projection.name())
        .bind(
            moved
                .iter()
                .map(|e| e.aggregate_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            moved
                .iter()
                .map(|e| e.aggregate_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(moved.iter().map(|e| e.sequence).collect::<Vec<_>>())
        .bind(moved.iter().map(|e| e.position).collect::<Vec<_>>())
        .execute(&mut *db)
        .await?;
    }
    Ok(outcome)
}
