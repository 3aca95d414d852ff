//! The event store: postgres-es underneath, a hash chain on top, an outbox beside it.
//!
//! `ChainedRepository` wraps postgres-es's repository: before events are persisted it links
//! each to its predecessor by hash, and it appends them in one statement. The outbox row is written by a trigger on the events table,
//! so it commits or rolls back with the events themselves (postgres-es opens its own transaction
//! inside `persist`, which leaves no other place to do it atomically).

pub mod chain;
mod read;
mod repository;
mod state;
pub mod verify;

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use sqlx::PgPool;

pub use read::{
    aggregate_events, event_at, head_position, nodes_promised, stream_all, two_aggregates_events,
    StoredEvent,
};
pub use repository::{if_unchanged, with_position, ChainedRepository, EventStoreBusy, ReadAt};
pub use state::{load_state, LoadError, StateCache};

/// Channel the outbox trigger notifies on commit, so relays wake without polling.
pub const OUTBOX_CHANNEL: &str = "hexabase_outbox";

pub type Cqrs<A> = CqrsFramework<A, PersistedEventStore<ChainedRepository, A>>;

pub fn cqrs<A>(pool: PgPool, services: A::Services) -> Cqrs<A>
where
    A: Aggregate,
{
    let store = PersistedEventStore::new_event_store(ChainedRepository::new(pool));
    CqrsFramework::new(store, vec![], services)
}

/// The event store of one aggregate type, for `create`.
pub type Store<A> = PersistedEventStore<ChainedRepository, A>;

pub fn store<A: Aggregate>(pool: PgPool) -> Store<A> {
    PersistedEventStore::new_event_store(ChainedRepository::new(pool))
}

/// Run `command` on the new aggregate `id` — an id the caller has just generated — without
/// reading the store first. Should `id` have events after all, the append is refused as a
/// conflict (`AggregateConflict`), exactly as if it had been read.
pub async fn create<A: Aggregate>(
    store: &Store<A>,
    id: &str,
    command: A::Command,
    services: &A::Services,
    metadata: HashMap<String, String>,
) -> Result<(), AggregateError<A::Error>> {
    let mut aggregate = A::default();
    let sink = EventSink::default();
    aggregate
        .handle(command, services, &sink)
        .await
        .map_err(AggregateError::UserError)?;
    let events = sink.collect().await;
    let context = EventStoreAggregateContext {
        aggregate_id: id.to_owned(),
        aggregate: A::default(),
        current_sequence: 0,
        current_snapshot: None,
    };
    store.commit(events, context, metadata).await?;
    Ok(())
}
