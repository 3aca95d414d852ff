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

/// One command's events waiting to be appended, and where its outcome goes.
struct Pending {
    events: Vec<SerializedEvent>,
    done: oneshot::Sender<Result<i64, PersistenceError>>,
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
    async fn append_grouped(&self, events: Vec<SerializedEvent>) -> Result<i64, PersistenceError> {
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
        if appender.send(Pending { events, done }).is_err() {
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
            let all: Vec<SerializedEvent> = group
                .iter()
                .flat_map(|p| p.events.iter().cloned())
                .collect();
            let written = match insert(&pool, &all).await {
                Ok(written) => Some(written),
                // A conflict: nothing was written; each command alone finds out whose it is.
                Err(PersistenceError::OptimisticLockError) => None,
                // Anything else may or may not have been committed: every command of the group
                // gets that answer, as one alone would.
                Err(e) => {
                    let reason = e.to_string();
                    for pending in group {
                        let _ = pending
                            .done
                            .send(Err(PersistenceError::UnknownError(reason.clone().into())));
                    }
                    continue;
                }
            };
            if let Some(written) = written {
                for pending in group {
                    let last = pending
                        .events
                        .iter()
                        .filter_map(|e| {
                            let sequence = i64::try_from(e.sequence).ok()?;
                            let key = (e.aggregate_type.clone(), e.aggregate_id.clone(), sequence);
                            written.get(&key).copied()
                        })
                        .max()
                        .ok_or_else(|| {
                            PersistenceError::UnknownError("no event was appended".into())
                        });
                    let _ = pending.done.send(last);
                }
                continue;
            }
        }
        // Alone, or after the group failed: each command on its own.
        for pending in group {
            let outcome = insert(&pool, &pending.events).await.and_then(|written| {
                written
                    .into_values()
                    .max()
                    .ok_or_else(|| PersistenceError::UnknownError("no event was appended".into()))
            });
            let _ = pending.done.send(outcome);
        }
    }
}

/// One INSERT of `events`; the position of each, by (type, id, sequence).
async fn insert(
    pool: &PgPool,
    events: &[SerializedEvent],
) -> Result<HashMap<(String, String, i64), i64>, PersistenceError> {
    let mut sequences = Vec::with_capacity(events.len());
    for event in events {
        sequences.push(to_i64(event.sequence)?);
    }
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                              $6::text[]::json[], $7::text[]::json[]) \
         RETURNING aggregate_type, aggregate_id, sequence, position",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(&sequences)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(column(|e| e.payload.to_string()))
    .bind(column(|e| e.metadata.to_string()))
    .fetch_all(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
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
        if snapshot_update.is_some() {
            return self.inner.persist::<A>(&chained, snapshot_update).await;
        }
        let position = self.append_grouped(chained).await?;
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
