//! An aggregate's current state, folded from its events (for decisions a command handler makes
//! before choosing a command, such as which email a user's provider verified).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::Aggregate;
use sqlx::PgPool;

use super::read::{aggregate_events, two_aggregates_events, StoredEvent};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {position} of {aggregate} cannot be read: {reason}")]
    Malformed {
        aggregate: String,
        position: i64,
        reason: String,
    },
}

pub async fn load_state<A: Aggregate>(pool: &PgPool, id: &str) -> Result<A, LoadError> {
    let mut state = A::default();
    apply_all(
        id,
        &mut state,
        aggregate_events(pool, A::TYPE, id, 1, i64::MAX).await?,
    )?;
    Ok(state)
}

/// Apply `events` of `id` to `state`; returns the last sequence applied.
fn apply_all<A: Aggregate>(
    id: &str,
    state: &mut A,
    events: Vec<StoredEvent>,
) -> Result<Option<i64>, LoadError> {
    let mut last = None;
    for event in events {
        let payload: A::Event = event.payload_as().map_err(|e| LoadError::Malformed {
            aggregate: format!("{}/{id}", A::TYPE),
            position: event.position,
            reason: e.to_string(),
        })?;
        state.apply(payload);
        last = Some(event.sequence);
    }
    Ok(last)
}

/// Most aggregates a `StateCache` holds; past it, it starts over.
const CACHED_STATES: usize = 10_000;

/// Aggregates' states kept in memory and brought up to date on every use by reading only the
/// events recorded since — as current as `load_state`, for decisions taken often about
/// aggregates with long histories (who may hold a workspace token).
pub struct StateCache<A> {
    states: Mutex<HashMap<String, (Arc<A>, i64)>>,
}

impl<A> Default for StateCache<A> {
    fn default() -> Self {
        Self {
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl<A: Aggregate + Clone> StateCache<A> {
    /// The cached state of `id` and the sequence it stands at (a default state at 0).
    fn known(&self, id: &str) -> (Arc<A>, i64) {
        self.cached_at(id)
            .unwrap_or_else(|| (Arc::new(A::default()), 0))
    }

    /// `id`'s state caught up (from `after`) with the events recorded since, and the sequence
    /// it now stands at.
    fn advance(
        &self,
        id: &str,
        (state, after): (Arc<A>, i64),
        events: Vec<StoredEvent>,
    ) -> Result<(Arc<A>, i64), LoadError> {
        if events.is_empty() {
            return Ok((state, after));
        }
        let mut next = (*state).clone();
        let last = apply_all(id, &mut next, events)?.unwrap_or(after);
        let next = Arc::new(next);
        if let Ok(mut states) = self.states.lock() {
            if states.len() >= CACHED_STATES {
                states.clear();
            }
            let newer = states.get(id).is_none_or(|(_, seen)| *seen < last);
            if newer {
                states.insert(id.to_owned(), (next.clone(), last));
            }
        }
        Ok((next, last))
    }

    /// `id`'s current state (caught up with every event recorded) and the sequence of its last
    /// event (0: none).
    pub async fn load(&self, pool: &PgPool, id: &str) -> Result<(Arc<A>, i64), LoadError> {
        let known = self.known(id);
        let events = aggregate_events(pool, A::TYPE, id, known.1 + 1, i64::MAX).await?;
        self.advance(id, known, events)
    }

    /// `id`'s state and, in the same query, `other_id`'s from `other` (an aggregate of
    /// another type), both as current as `load` makes them.
    pub async fn load_with<B: Aggregate + Clone>(
        &self,
        pool: &PgPool,
        id: &str,
        other: &StateCache<B>,
        other_id: &str,
    ) -> Result<((Arc<A>, i64), (Arc<B>, i64)), LoadError> {
        let (mine, theirs) = (self.known(id), other.known(other_id));
        let (my_events, their_events) =
            two_aggregates_events(pool, (A::TYPE, id, mine.1), (B::TYPE, other_id, theirs.1))
                .await?;
        Ok((
            self.advance(id, mine, my_events)?,
            other.advance(other_id, theirs, their_events)?,
        ))
    }

    /// The cached state of `id` and the sequence it stands at, not caught up: for what never
    /// changes once recorded, and for decisions whose append checks that it is still current
    /// (`if_unchanged`).
    pub fn cached_at(&self, id: &str) -> Option<(Arc<A>, i64)> {
        self.states
            .lock()
            .ok()
            .and_then(|states| states.get(id).cloned())
    }
}
