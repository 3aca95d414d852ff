//! `hexabase verify`: recompute every aggregate's hash chain and cross-check the outbox, which
//! keeps a copy of each event's hash, so edited, reordered and deleted events are all named.

use std::fmt;

use futures::TryStreamExt;
use serde_json::Value;
use sqlx::PgPool;

use super::chain::{event_hash, ChainInput, HASH_KEY};
use super::read::stream_all_by_aggregate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub position: Option<i64>,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} sequence {}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )?;
        if let Some(position) = self.position {
            write!(f, " (position {position})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub events: u64,
    pub aggregates: u64,
    pub violations: Vec<Violation>,
}

pub async fn verify(pool: &PgPool) -> sqlx::Result<Report> {
    let mut report = Report::default();
    let mut stream = stream_all_by_aggregate(pool);
    let mut current: Option<(String, String)> = None;
    let mut prev_hash = String::new();
    let mut expected_sequence = 1;
    while let Some(event) = stream.try_next().await? {
        report.events += 1;
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        if current.as_ref() != Some(&key) {
            current = Some(key);
            report.aggregates += 1;
            prev_hash = String::new();
            expected_sequence = 1;
        }
        let violation = |problem: String| Violation {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            position: Some(event.position),
            problem,
        };
        if event.sequence != expected_sequence {
            report.violations.push(violation(format!(
                "expected sequence {expected_sequence}: events before it are missing"
            )));
        }
        // The store's `json` columns only ever hold valid JSON.
        let (payload, metadata) = (
            event.payload_as::<Value>().unwrap_or_default(),
            event.metadata_value().unwrap_or_default(),
        );
        let recomputed = event_hash(&ChainInput {
            prev_hash: &prev_hash,
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence,
            event_type: &event.event_type,
            event_version: &event.event_version,
            payload: &payload,
            metadata: &metadata,
        });
        let stored = metadata.get(HASH_KEY).and_then(Value::as_str);
        match stored {
            Some(stored) if stored == recomputed => {}
            Some(_) => report.violations.push(violation(
                "content does not match its hash: the event or one before it was changed".into(),
            )),
            None => report
                .violations
                .push(violation("event has no hash".into())),
        }
        // Continue the chain from what is stored, so one edit is reported once, not for every
        // later event of the aggregate.
        prev_hash = stored.unwrap_or_default().to_owned();
        expected_sequence = event.sequence + 1;
    }

    let mut orphans = sqlx::query_as::<_, (String, String, i64, i64, Option<String>, bool)>(
        "SELECT o.aggregate_type, o.aggregate_id, o.sequence, o.position, o.hash, \
                e.aggregate_id IS NULL \
         FROM outbox o LEFT JOIN events e \
           ON e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id \
          AND e.sequence = o.sequence \
         WHERE e.aggregate_id IS NULL OR e.metadata->>'hash' IS DISTINCT FROM o.hash \
         ORDER BY o.position",
    )
    .fetch(pool);
    while let Some((aggregate_type, aggregate_id, sequence, position, _, deleted)) =
        orphans.try_next().await?
    {
        let problem = if deleted {
            "event was deleted (the outbox recorded it)"
        } else {
            "hash differs from the one recorded in the outbox"
        };
        report.violations.push(Violation {
            aggregate_type,
            aggregate_id,
            sequence,
            position: Some(position),
            problem: problem.into(),
        });
    }
    report.violations.sort_by(|a, b| {
        (&a.aggregate_type, &a.aggregate_id, a.sequence).cmp(&(
            &b.aggregate_type,
            &b.aggregate_id,
            b.sequence,
        ))
    });
    report.violations.dedup();
    Ok(report)
}
