//! Reading committed events in the shape that travels on JetStream and feeds projections.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Row};

/// One committed event with its global position.
///
/// The payload and the metadata are kept as the JSON text the store holds: the relay passes
/// them on as they are, and each projection decodes only what it reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Global, gap-tolerant position in the store (assigned at insert); JetStream's
    /// `Nats-Msg-Id` and the value clients pass to read their own writes.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Box<RawValue>,
    pub metadata: Box<RawValue>,
    pub recorded_at: DateTime<Utc>,
    /// The metadata's entries, decoded on first use.
    #[serde(skip)]
    entries: OnceLock<Map<String, Value>>,
}

impl PartialEq for StoredEvent {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
            && self.aggregate_type == other.aggregate_type
            && self.aggregate_id == other.aggregate_id
            && self.sequence == other.sequence
            && self.event_type == other.event_type
            && self.event_version == other.event_version
            && self.payload.get() == other.payload.get()
            && self.metadata.get() == other.metadata.get()
            && self.recorded_at == other.recorded_at
    }
}

impl StoredEvent {
    /// A metadata entry that is a string (all of ours are).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.entries
            .get_or_init(|| serde_json::from_str(self.metadata.get()).unwrap_or_default())
            .get(key)
            .and_then(Value::as_str)
    }

    /// The payload decoded as `T` (the aggregate's event type).
    pub fn payload_as<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.payload.get())
    }

    /// The metadata as a JSON value.
    pub fn metadata_value(&self) -> serde_json::Result<Value> {
        serde_json::from_str(self.metadata.get())
    }
}

impl FromRow<'_, PgRow> for StoredEvent {
    fn from_row(row: &PgRow) -> sqlx::Result<Self> {
        Ok(Self {
            position: row.try_get("position")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get::<Json<Box<RawValue>>, _>("payload")?.0,
            metadata: row.try_get::<Json<Box<RawValue>>, _>("metadata")?.0,
            recorded_at: row.try_get("recorded_at")?,
            entries: OnceLock::new(),
        })
    }
}

const COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, event_type, \
                       event_version, payload, metadata, recorded_at";

pub async fn event_at(db: impl PgExecutor<'_>, position: i64) -> sqlx::Result<Option<StoredEvent>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM events WHERE position = $1"))
        .bind(position)
        .fetch_optional(db)
        .await
}

/// Events of one aggregate with `from <= sequence <= to`, in sequence order.
pub async fn aggregate_events(
    db: impl PgExecutor<'_>,
    aggregate_type: &str,
    aggregate_id: &str,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND sequence BETWEEN $3 AND $4 ORDER BY sequence"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Events of two aggregates after the given sequences, in one query: those of `a` first, each
/// aggregate's in sequence order.
pub async fn two_aggregates_events(
    db: impl PgExecutor<'_>,
    (a_type, a_id, a_after): (&str, &str, i64),
    (b_type, b_id, b_after): (&str, &str, i64),
) -> sqlx::Result<(Vec<StoredEvent>, Vec<StoredEvent>)> {
    let events: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE (aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3) \
            OR (aggregate_type = $4 AND aggregate_id = $5 AND sequence > $6) \
         ORDER BY aggregate_type = $1 AND aggregate_id = $2 DESC, sequence"
    ))
    .bind(a_type)
    .bind(a_id)
    .bind(a_after)
    .bind(b_type)
    .bind(b_id)
    .bind(b_after)
    .fetch_all(db)
    .await?;
    Ok(events
        .into_iter()
        .partition(|e| e.aggregate_type == a_type && e.aggregate_id == a_id))
}

/// Every event in position order.
pub fn stream_all<'e>(
    db: impl PgExecutor<'e> + 'e,
) -> impl Stream<Item = sqlx::Result<StoredEvent>> + 'e {
    sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, recorded_at FROM events ORDER BY position",
    )
    .fetch(db)
}

/// The position of the newest event of an aggregate (what a client passes to read its write).
pub async fn head_position(
    db: impl PgExecutor<'_>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT max(position) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(db)
    .await
}

/// Every event grouped by aggregate, in sequence order (for `verify`).
pub(crate) fn stream_all_by_aggregate<'e>(
    db: impl PgExecutor<'e> + 'e,
) -> impl Stream<Item = sqlx::Result<StoredEvent>> + 'e {
    sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, recorded_at FROM events \
         ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch(db)
}

/// How many dedicated nodes requests of every workspace were promised and not answered yet
/// (neither assigned nor refused, the workspace not deleted): read from the event store, so a
/// request recorded a moment ago counts at once.
pub async fn nodes_promised(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT coalesce(sum((r.payload->'DedicatedNodesRequested'->>'count')::bigint), 0)::bigint \
         FROM events r \
         WHERE r.aggregate_type = 'Workspace' AND r.event_type = 'DedicatedNodesRequested' \
           AND NOT EXISTS ( \
             SELECT 1 FROM events d \
             WHERE d.aggregate_type = 'Workspace' AND d.aggregate_id = r.aggregate_id \
               AND (d.event_type = 'WorkspaceDeleted' \
                 OR (d.event_type IN ('DedicatedNodesAssigned', 'DedicatedNodesRequestFailed') \
                     AND d.payload->(d.event_type)->>'request' \
                       = r.payload->'DedicatedNodesRequested'->>'request')))",
    )
    .fetch_one(db)
    .await
}
