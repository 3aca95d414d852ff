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

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework};
use sqlx::PgPool;

pub use read::{aggregate_events, event_at, head_position, stream_all, StoredEvent};
pub use repository::{with_position, ChainedRepository};
pub use state::{load_state, LoadError};

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
