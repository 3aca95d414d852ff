//! A workspace's dedicated nodes and its requests for them.

use chrono::{DateTime, Utc};
use hexabase_command::WorkspaceId;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct NodeRow {
    pub node: String,
    pub request_id: String,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct NodeRequestRow {
    pub id: String,
    pub count: i32,
    pub status: String,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn nodes(pool: &PgPool, ws: &WorkspaceId) -> sqlx::Result<Vec<NodeRow>> {
    sqlx::query_as(
        "SELECT node, request_id, assigned_at FROM rm_dedicated_nodes WHERE ws_id = $1 \
         ORDER BY node",
    )
    .bind(ws.as_str())
    .fetch_all(pool)
    .await
}

/// The workspace's latest requests, newest first.
pub async fn requests(
    pool: &PgPool,
    ws: &WorkspaceId,
    limit: i64,
) -> sqlx::Result<Vec<NodeRequestRow>> {
    sqlx::query_as(
        "SELECT id, count, status, reason, requested_by, requested_at, updated_at \
         FROM rm_node_requests WHERE ws_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2",
    )
    .bind(ws.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
}
