use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::chain::{event_hash, ChainInput, HASH_KEY};

tokio::task_local! {
    static LAST_POSITION: Cell<Option<i64>>;
    static UNCHANGED: Vec<ReadAt>;
}

/// An append that could not take its turn in the event store in time (a transaction left open
/// after appending holds the ordering lock): nothing was written, and a later try may succeed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the event store is busy: the append waited too long for its turn; nothing was recorded")]
pub struct EventStoreBusy;

/// The same failure for another command of a failed group: a busy store stays recognisable.
fn shared_failure(error: &PersistenceError) -> PersistenceError {
    match error {
        PersistenceError::ConnectionError(inner) if inner.is::<EventStoreBusy>() => {
            PersistenceError::ConnectionError(Box::new(EventStoreBusy))
        }
        other => PersistenceError::UnknownError(other.to_string().into()),
    }
}

/// An aggregate as a decision read it: its events up to `sequence` (0: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAt {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

/// Run a command decided from other aggregates than its own: its events are appended only if
/// none of `read` has had an event since the decision read it. The check and the append are one
/// statement, so the decision needs no read of its own when its states are cached; if one has
/// moved on, nothing is appended and the command fails as a conflict (`AggregateConflict`), so
/// the caller decides again from the events recorded since.
pub async fn if_unchanged<F: Future>(read: Vec<ReadAt>, command: F) -> F::Output {
    UNCHANGED.scope(read, command).await
}

/// Run a command and learn the global position of the last event it appended (`None` when it
/// appended nothing). cqrs-es returns nothing from `execute`, so the repository reports the
/// position through this task-local slot.
pub async fn with_position<F: Future>(command: F) -> (F::Output, Option<i64>) {
    LAST_POSITION
        .scope(Cell::new(None), async {
            let output = command.await;
            (output, LAST_POSITION.with(Cell::get))
        })
        .await
}

/// postgres-es's repository with every persisted event linked to its predecessor by hash.
///
/// Reads go to postgres-es. Appends without a snapshot (the only kind our stores make) are one
/// multi-row INSERT into the same table: atomic on its own, so the outbox trigger commits with
/// it, and it returns the events' positions without another round trip. Appends that arrive
/// while one is being written go together in the next statement (group commit); if that
/// statement fails, each is tried alone, so one command's conflict never fails another's.
pub struct ChainedRepository {
    pool: PgPool,
    inner: PostgresEventRepository,
    appender: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
}

/// One command's events waiting to be appended, what must not have changed for them to be,
/// and where its outcome goes.
struct Pending {
    events: Vec<SerializedEvent>,
    unchanged: Vec<ReadAt>,
    done: oneshot::Sender<Result<i64, PersistenceError>>,
}

impl Pending {
    /// The position of the last of its events among those written; a command whose events
    /// were all left out because what it read had changed gets a conflict.
    fn outcome(
        &self,
        written: &HashMap<(String, String, i64), i64>,
    ) -> Result<i64, PersistenceError> {
        let last = self
            .events
            .iter()
            .filter_map(|e| {
                let sequence = i64::try_from(e.sequence).ok()?;
                written
                    .get(&(e.aggregate_type.clone(), e.aggregate_id.clone(), sequence))
                    .copied()
            })
            .max();
        match last {
            Some(position) => Ok(position),
            None if !self.unchanged.is_empty() => Err(PersistenceError::OptimisticLockError),
            None => Err(PersistenceError::UnknownError(
                "no event was appended".into(),
            )),
        }
    }
}

/// Most events written by one statement.
const MAX_GROUP: usize = 512;

impl ChainedRepository {
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: PostgresEventRepository::new(pool.clone()),
            pool,
            appender: Mutex::new(None),
        }
    }

    /// Append through the group-commit task (started with the first append, on the caller's
    /// runtime, and again should it have ended with the runtime that ran it).
    async fn append_grouped(
        &self,
        events: Vec<SerializedEvent>,
        unchanged: Vec<ReadAt>,
    ) -> Result<i64, PersistenceError> {
        let appender = {
            let mut slot = self.appender.lock().map_err(|_| {
                PersistenceError::UnknownError("the event appender's lock is poisoned".into())
            })?;
            match slot.as_ref().filter(|sender| !sender.is_closed()) {
                Some(sender) => sender.clone(),
                None => {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    tokio::spawn(group_commit(self.pool.clone(), receiver));
                    *slot = Some(sender.clone());
                    sender
                }
            }
        };
        let (done, outcome) = oneshot::channel();
        let pending = Pending {
            events,
            unchanged,
            done,
        };
        if appender.send(pending).is_err() {
            return Err(PersistenceError::UnknownError(
                "the event appender has stopped".into(),
            ));
        }
        outcome.await.map_err(|_| {
            PersistenceError::UnknownError("the event appender stopped before answering".into())
        })?
    }

    async fn previous_hash(&self, first: &SerializedEvent) -> Result<String, PersistenceError> {
        if first.sequence <= 1 {
            return Ok(String::new());
        }
        let hash: Option<Option<String>> = sqlx::query_scalar(
            "SELECT metadata->>'hash' FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(&first.aggregate_type)
        .bind(&first.aggregate_id)
        .bind(to_i64(first.sequence - 1)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
        match hash {
            Some(Some(hash)) => Ok(hash),
            // The predecessor vanished or lost its hash: another writer won, or the store was
            // tampered with. Either way appending would break the chain.
            _ => Err(PersistenceError::OptimisticLockError),
        }
    }
}

/// Write what is waiting, then what arrived meanwhile, and so on.
async fn group_commit(pool: PgPool, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        let mut size = group[0].events.len();
        while size < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => {
                    size += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        if group.len() > 1 {
            let written = match insert(&pool, &group).await {
                Ok(written) => Some(written),
                // A conflict: nothing was written; each command alone finds out whose it is.
                Err(PersistenceError::OptimisticLockError) => None,
                // Anything else may or may not have been committed: every command of the group
                // gets that answer, as one alone would.
                Err(e) => {
                    for pending in group {
                        let _ = pending.done.send(Err(shared_failure(&e)));
                    }
                    continue;
                }
            };
            if let Some(written) = written {
                for pending in group {
                    let outcome = pending.outcome(&written);
                    let _ = pending.done.send(outcome);
                }
                continue;
            }
        }
        // Alone, or after the group failed: each command on its own.
        for pending in group {
            let outcome = insert(&pool, std::slice::from_ref(&pending))
                .await
                .and_then(|written| pending.outcome(&written));
            let _ = pending.done.send(outcome);
        }
    }
}

/// Appends the events of commands that read no other aggregate.
const APPEND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                        event_version, payload, metadata) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                          $6::text[]::json[], $7::text[]::json[]) \
     RETURNING aggregate_type, aggregate_id, sequence, position";

/// Appends the events of commands (numbered by `$8`) except those of a command one of whose
/// reads (`$9` to `$12`) has had an event since (each aggregate read is looked up by its last
/// event: one index probe each). The function (`schema/migrations/0013`) takes the event
/// store's ordering lock before it reads, so the check sees every event committed before this
/// append's turn; an INSERT alone would read as of its start, before it waited for the lock.
const APPEND_IF_UNCHANGED: &str =
    "SELECT appended_type, appended_id, appended_sequence, appended_position \
     FROM events_append_if_unchanged($1::text[], $2::text[], $3::bigint[], $4::text[], \
                                     $5::text[], $6::text[]::json[], $7::text[]::json[], \
                                     $8::int[], $9::int[], $10::text[], $11::text[], \
                                     $12::bigint[])";

/// One INSERT of the commands' events; the position of each, by (type, id, sequence). A
/// command whose `unchanged` aggregates have had events since is left out whole.
async fn insert(
    pool: &PgPool,
    commands: &[Pending],
) -> Result<HashMap<(String, String, i64), i64>, PersistenceError> {
    let events = || commands.iter().flat_map(|c| c.events.iter());
    let sequences = events()
        .map(|e| to_i64(e.sequence))
        .collect::<Result<Vec<_>, _>>()?;
    let column = |f: fn(&SerializedEvent) -> String| events().map(f).collect::<Vec<_>>();
    // Commands are numbered by their place in the group (`MAX_GROUP` keeps it small).
    let reads = || {
        commands
            .iter()
            .enumerate()
            .flat_map(|(n, c)| c.unchanged.iter().map(move |r| (n as i32, r)))
    };
    let conditional = commands.iter().any(|c| !c.unchanged.is_empty());
    let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(if conditional {
        APPEND_IF_UNCHANGED
    } else {
        APPEND
    })
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(&sequences)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(column(|e| e.payload.to_string()))
    .bind(column(|e| e.metadata.to_string()));
    if conditional {
        let command_of: Vec<i32> = commands
            .iter()
            .enumerate()
            .flat_map(|(n, c)| c.events.iter().map(move |_| n as i32))
            .collect();
        query = query
            .bind(command_of)
            .bind(reads().map(|(n, _)| n).collect::<Vec<_>>())
            .bind(
                reads()
                    .map(|(_, r)| r.aggregate_type.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                reads()
                    .map(|(_, r)| r.aggregate_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(reads().map(|(_, r)| r.sequence).collect::<Vec<_>>());
    }
    let rows = query.fetch_all(pool).await.map_err(|e| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        // lock_not_available: the ordering lock's wait (events_append_in_order) ran out.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
            PersistenceError::ConnectionError(Box::new(EventStoreBusy))
        }
        _ => PersistenceError::ConnectionError(Box::new(e)),
    })?;
    Ok(rows
        .into_iter()
        .map(|(aggregate_type, aggregate_id, sequence, position)| {
            ((aggregate_type, aggregate_id, sequence), position)
        })
        .collect())
}

fn to_i64(sequence: usize) -> Result<i64, PersistenceError> {
    i64::try_from(sequence).map_err(|e| PersistenceError::UnknownError(Box::new(e)))
}

impl PersistedEventRepository for ChainedRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return self.inner.persist::<A>(events, snapshot_update).await;
        };
        let mut prev = self.previous_hash(first).await?;
        let mut chained = Vec::with_capacity(events.len());
        for event in events {
            let mut event = event.clone();
            let hash = event_hash(&ChainInput {
                prev_hash: &prev,
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                sequence: to_i64(event.sequence)?,
                event_type: &event.event_type,
                event_version: &event.event_version,
                payload: &event.payload,
                metadata: &event.metadata,
            });
            if let Value::Object(map) = &mut event.metadata {
                map.insert(HASH_KEY.to_owned(), Value::from(hash.clone()));
            }
            prev = hash;
            chained.push(event);
        }
        let unchanged = UNCHANGED.try_with(Clone::clone).unwrap_or_default();
        if snapshot_update.is_some() {
            if !unchanged.is_empty() {
                return Err(PersistenceError::UnknownError(
                    "an append conditional on other aggregates cannot write a snapshot".into(),
                ));
            }
            return self.inner.persist::<A>(&chained, snapshot_update).await;
        }
        let position = self.append_grouped(chained, unchanged).await?;
        let _ = LAST_POSITION.try_with(|slot| slot.set(Some(position)));
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
