//! The saga log in Postgres (`sagas`, `saga_steps`): each saga's parameters and state, each
//! step's attempts, times, output and last error. Every change is one statement or one
//! transaction, so the log is always a state a runner can resume from.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hexabase_command::store::StoredEvent;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};

/// A saga to record (once per trigger).
#[derive(Debug, Clone)]
pub struct NewSaga {
    pub kind: &'static str,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// `event:<position>`, `maintenance:<period>`: what started it.
    pub trigger: String,
    /// Its place among the aggregate's sagas (the triggering event's position).
    pub position: i64,
    pub params: Value,
    pub correlation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SagaRow {
    pub id: String,
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub trigger: String,
    pub position: i64,
    pub params: Value,
    pub state: String,
    pub step: i32,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub failure: Option<String>,
    pub failed_step: Option<String>,
    pub unwind_noted: bool,
    pub correlation_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StepRow {
    pub step: i32,
    pub name: String,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, aggregate_type, aggregate_id, trigger, position, params, state, \
     step, attempts, next_attempt_at, last_error, failure, failed_step, unwind_noted, \
     correlation_id, created_at, updated_at, finished_at";

/// A fresh saga id (`task-…`, sorting by creation time).
pub fn new_id() -> String {
    hexabase_command::TaskId::generate().to_string()
}

/// Record `saga` unless its trigger already started one; the new saga's id.
pub async fn start(pool: &PgPool, saga: &NewSaga) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "INSERT INTO sagas (id, kind, aggregate_type, aggregate_id, trigger, position, params, \
                            state, correlation_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8) \
         ON CONFLICT (kind, aggregate_id, trigger) DO NOTHING RETURNING id",
    )
    .bind(new_id())
    .bind(saga.kind)
    .bind(&saga.aggregate_type)
    .bind(&saga.aggregate_id)
    .bind(&saga.trigger)
    .bind(saga.position)
    .bind(&saga.params)
    .bind(&saga.correlation_id)
    .fetch_optional(pool)
    .await
}

/// The highest event position that started a saga of this aggregate.
pub async fn last_event_trigger(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT max(position) FROM sagas \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND trigger LIKE 'event:%'",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await
}

/// The aggregate's first unfinished saga: its sagas run one at a time, in order.
pub async fn next_unfinished(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<SagaRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sagas \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND state IN ('running', 'unwinding') \
         ORDER BY position, created_at, id LIMIT 1"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: &str) -> sqlx::Result<Option<SagaRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sagas WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The outputs of the saga's finished (and not undone) steps, by step name.
pub async fn outputs(pool: &PgPool, id: &str) -> sqlx::Result<BTreeMap<String, Value>> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT name, output FROM saga_steps \
         WHERE saga_id = $1 AND finished_at IS NOT NULL AND undone_at IS NULL \
           AND output IS NOT NULL",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Before a step's action (or undo) runs: one more attempt.
pub async fn begin_step(pool: &PgPool, id: &str, step: i32, name: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE sagas SET attempts = attempts + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO saga_steps (saga_id, step, name, attempts, started_at) \
         VALUES ($1, $2, $3, 1, now()) \
         ON CONFLICT (saga_id, step) DO UPDATE SET attempts = saga_steps.attempts + 1, \
             started_at = coalesce(saga_steps.started_at, now())",
    )
    .bind(id)
    .bind(step)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A step's action succeeded with `output`: the saga moves to the next step.
pub async fn finish_step(pool: &PgPool, id: &str, step: i32, output: &Value) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE saga_steps SET finished_at = now(), output = $3, last_error = NULL \
         WHERE saga_id = $1 AND step = $2",
    )
    .bind(id)
    .bind(step)
    .bind(output)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sagas SET step = $2 + 1, attempts = 0, last_error = NULL, \
                          next_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND state = 'running' AND step = $2",
    )
    .bind(id)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A step (`Some`) or a hook failed for now: try again after `delay`.
pub async fn retry_later(
    pool: &PgPool,
    id: &str,
    step: Option<i32>,
    error: &str,
    delay: Duration,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE sagas SET last_error = $2, updated_at = now(), \
             next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(delay.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    if let Some(step) = step {
        sqlx::query("UPDATE saga_steps SET last_error = $3 WHERE saga_id = $1 AND step = $2")
            .bind(id)
            .bind(step)
            .bind(error)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The step `step_name` failed for good: undo the finished steps.
pub async fn begin_unwind(
    pool: &PgPool,
    id: &str,
    step: i32,
    step_name: &str,
    reason: &str,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE saga_steps SET last_error = $3 WHERE saga_id = $1 AND step = $2")
        .bind(id)
        .bind(step)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE sagas SET state = 'unwinding', failure = $2, failed_step = $3, attempts = 0, \
             last_error = $2, next_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .bind(reason)
    .bind(step_name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The unwinding hook has run.
pub async fn note_unwind(pool: &PgPool, id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET unwind_noted = true, attempts = 0, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Step `step` is undone (or had nothing to undo): the next undo is the step before it.
pub async fn finish_undo(pool: &PgPool, id: &str, step: i32) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE saga_steps SET undone_at = now(), last_error = NULL \
         WHERE saga_id = $1 AND step = $2",
    )
    .bind(id)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE sagas SET step = $2, attempts = 0, last_error = NULL, next_attempt_at = now(), \
             updated_at = now() WHERE id = $1 AND state = 'unwinding' AND step = $2 + 1",
    )
    .bind(id)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The saga ended: `done` (every step ran) or `failed` (unwound).
pub async fn finish(pool: &PgPool, id: &str, state: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sagas SET state = $2, finished_at = now(), updated_at = now(), \
             last_error = CASE WHEN $2 = 'done' THEN NULL ELSE last_error END \
         WHERE id = $1 AND state IN ('running', 'unwinding')",
    )
    .bind(id)
    .bind(state)
    .execute(pool)
    .await?;
    Ok(())
}

/// Later sagas of the same kind on the aggregate that have not started, ended as `done`
/// because `by` (which reads the aggregate's current state) does their work.
pub async fn coalesce(pool: &PgPool, by: &SagaRow) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE sagas SET state = 'done', finished_at = now(), updated_at = now(), \
             last_error = 'coalesced into ' || $1 \
         WHERE kind = $2 AND aggregate_type = $3 AND aggregate_id = $4 AND state = 'running' \
           AND step = 0 AND attempts = 0 AND id <> $1 \
           AND (position, created_at, id) > ($5, $6, $1)",
    )
    .bind(&by.id)
    .bind(&by.kind)
    .bind(&by.aggregate_type)
    .bind(&by.aggregate_id)
    .bind(by.position)
    .bind(by.created_at)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Aggregates with a saga that is due now.
pub async fn due_aggregates(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT aggregate_type, aggregate_id FROM sagas \
         WHERE state IN ('running', 'unwinding') AND next_attempt_at <= now() \
         GROUP BY aggregate_type, aggregate_id ORDER BY min(next_attempt_at) LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An event read by the recovery pass, and what the log holds for it.
#[derive(Debug)]
pub struct ScannedEvent {
    pub event: StoredEvent,
    /// It was recorded longer than the given grace ago.
    pub settled: bool,
    /// A saga of its aggregate started by this event or a later one is recorded (so syncing
    /// the aggregate would record nothing for it).
    pub recorded: bool,
}

/// At most `limit` events after position `after`, in position order, each with whether it is
/// older than `grace` and whether the sagas it may start are recorded.
pub async fn events_after(
    pool: &PgPool,
    after: i64,
    limit: i64,
    grace: Duration,
) -> sqlx::Result<Vec<ScannedEvent>> {
    let rows: Vec<PgRow> = sqlx::query(
        "SELECT e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                e.event_version, e.payload, e.metadata, e.recorded_at, \
                e.recorded_at <= now() - make_interval(secs => $3) AS settled, \
                EXISTS (SELECT 1 FROM sagas s \
                        WHERE s.aggregate_type = e.aggregate_type \
                          AND s.aggregate_id = e.aggregate_id \
                          AND s.trigger LIKE 'event:%' AND s.position >= e.position) AS recorded \
         FROM events e WHERE e.position > $1 ORDER BY e.position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .bind(grace.as_secs_f64())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ScannedEvent {
                event: StoredEvent::from_row(row)?,
                settled: row.try_get("settled")?,
                recorded: row.try_get("recorded")?,
            })
        })
        .collect()
}

/// An aggregate's sagas, oldest first after the saga `after`, or with `newest_first` newest
/// first before it (keyset paging by id, which is time-ordered).
pub async fn of_aggregate(
    pool: &PgPool,
    aggregate_id: &str,
    after: Option<&str>,
    limit: u32,
    newest_first: bool,
) -> sqlx::Result<Vec<SagaRow>> {
    // Only the direction varies, between two fixed texts; every value is a bound parameter.
    let (from, order) = if newest_first {
        ("id < $2", "DESC")
    } else {
        ("id > $2", "ASC")
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sagas WHERE aggregate_id = $1 AND ($2::text IS NULL OR {from}) \
         ORDER BY id {order} LIMIT $3"
    ))
    .bind(aggregate_id)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await
}

/// The steps a saga has reached, in order.
pub async fn steps(pool: &PgPool, id: &str) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as(
        "SELECT step, name, attempts, started_at, finished_at, last_error, undone_at \
         FROM saga_steps WHERE saga_id = $1 ORDER BY step",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// The aggregate's unfinished saga of `kind`, if one runs.
pub async fn running(
    pool: &PgPool,
    kind: &str,
    aggregate_id: &str,
) -> sqlx::Result<Option<SagaRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sagas WHERE kind = $1 AND aggregate_id = $2 \
           AND state IN ('running', 'unwinding') ORDER BY position, created_at LIMIT 1"
    ))
    .bind(kind)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await
}
