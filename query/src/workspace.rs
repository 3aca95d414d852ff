use chrono::{DateTime, Utc};
use hexabase_command::policy::{OrgRole, WorkspaceAccess};
use hexabase_command::workspace::ADMINS_GROUP;
use hexabase_command::{OrganizationId, UserId, WorkspaceId};
use sqlx::{FromRow, PgPool};

use crate::page::{paginate, Page};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct WorkspaceRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "w.id, w.org_id, w.name, w.plan, w.status, w.status_reason, w.created_by, w.created_at, \
     w.updated_at";

/// One workspace of an organization.
pub async fn get(
    pool: &PgPool,
    org: &OrganizationId,
    ws: &WorkspaceId,
) -> sqlx::Result<Option<WorkspaceRow>> {
    sqlx::query_as::<_, WorkspaceRow>(&format!(
        "SELECT {COLUMNS} FROM rm_workspaces w WHERE w.id = $1 AND w.org_id = $2"
    ))
    .bind(ws.as_str())
    .bind(org.as_str())
    .fetch_optional(pool)
    .await
}

/// What `user` is to workspace `ws` of `org` (organization role, `WSAdmins`, any group).
pub async fn access(
    pool: &PgPool,
    org: &OrganizationId,
    ws: &WorkspaceId,
    user: &UserId,
) -> sqlx::Result<WorkspaceAccess> {
    let (org_role, ws_admin, ws_member): (Option<String>, bool, bool) = sqlx::query_as(
        "SELECT (SELECT role FROM rm_organization_members WHERE org_id = $1 AND user_id = $3), \
         EXISTS (SELECT 1 FROM rm_workspace_group_members m \
                 JOIN rm_workspace_groups g ON g.id = m.group_id \
                 WHERE m.ws_id = $2 AND m.user_id = $3 AND g.name = $4 AND g.preset), \
         EXISTS (SELECT 1 FROM rm_workspace_group_members m WHERE m.ws_id = $2 AND m.user_id = $3)",
    )
    .bind(org.as_str())
    .bind(ws.as_str())
    .bind(user.as_str())
    .bind(ADMINS_GROUP)
    .fetch_one(pool)
    .await?;
    Ok(WorkspaceAccess {
        org_role: org_role.as_deref().and_then(OrgRole::parse),
        ws_admin,
        ws_member,
    })
}

/// The workspaces of `org` that `user` may see (all of them for organization admins, those
/// they belong to otherwise), by id, after the `after` cursor.
pub async fn list_visible(
    pool: &PgPool,
    org: &OrganizationId,
    user: &UserId,
    all: bool,
    after: Option<&WorkspaceId>,
    limit: u32,
) -> sqlx::Result<Page<WorkspaceRow>> {
    let rows = sqlx::query_as::<_, WorkspaceRow>(&format!(
        "SELECT {COLUMNS} FROM rm_workspaces w \
         WHERE w.org_id = $1 AND ($2::text IS NULL OR w.id > $2) \
           AND ($3 OR EXISTS (SELECT 1 FROM rm_workspace_group_members m \
                              WHERE m.ws_id = w.id AND m.user_id = $4)) \
         ORDER BY w.id LIMIT $5"
    ))
    .bind(org.as_str())
    .bind(after.map(WorkspaceId::as_str))
    .bind(all)
    .bind(user.as_str())
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    Ok(paginate(rows, limit, |row| row.id.clone()))
}
