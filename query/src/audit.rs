use chrono::{DateTime, Utc};
use hexabase_command::OrganizationId;
use serde_json::Value;
use sqlx::{FromRow, PgPool};

use crate::page::{paginate, Page};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AuditEventRow {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Newest first (the cursor then pages back in time); oldest first otherwise.
    pub newest_first: bool,
}

/// An organization's history after the `after` position, oldest first; or, with
/// `filter.newest_first`, before it, newest first.
pub async fn history(
    pool: &PgPool,
    org: &OrganizationId,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: u32,
) -> sqlx::Result<Page<AuditEventRow>> {
    let (from, order) = if filter.newest_first {
        ("position < $2", "DESC")
    } else {
        ("position > $2", "ASC")
    };
    // Only the direction varies, between two fixed texts; every value is a bound parameter.
    let sql = format!(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, actor, request_id, correlation_id, causation_id, occurred_at \
         FROM rm_audit_events \
         WHERE org_id = $1 AND {from} \
           AND ($3::text IS NULL OR aggregate_type = $3) \
           AND ($4::text IS NULL OR aggregate_id = $4) \
           AND ($5::timestamptz IS NULL OR occurred_at >= $5) \
           AND ($6::timestamptz IS NULL OR occurred_at < $6) \
         ORDER BY position {order} LIMIT $7"
    );
    let start = after.unwrap_or(if filter.newest_first { i64::MAX } else { 0 });
    let rows = sqlx::query_as::<_, AuditEventRow>(&sql)
        .bind(org.as_str())
        .bind(start)
        .bind(filter.aggregate_type.as_deref())
        .bind(filter.aggregate_id.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?;
    Ok(paginate(rows, limit, |row| row.position.to_string()))
}
