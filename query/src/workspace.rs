use chrono::{DateTime, Utc};
use hexabase_command::policy::{OrgRole, WorkspaceAccess};
use hexabase_command::workspace::ADMINS_GROUP;
use hexabase_command::{GroupId, OrganizationId, ProjectId, UserId, WorkspaceId};
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
    /// The vCluster's API server and its CA, once provisioning recorded them.
    pub api_server: Option<String>,
    pub api_server_ca: Option<String>,
}

const COLUMNS: &str =
    "w.id, w.org_id, w.name, w.plan, w.status, w.status_reason, w.created_by, w.created_at, \
     w.updated_at, w.api_server, w.api_server_ca";

/// One keyset page of `select` (a `SELECT … FROM table` of this module): the rows whose
/// `scope.0` column is `scope.1`, ordered by the `key` column, after `after`. Table and column
/// names are this module's constants; values are bound.
async fn keyset<T>(
    pool: &PgPool,
    select: &str,
    scope: (&str, &str),
    key: &str,
    after: Option<&str>,
    limit: u32,
    key_of: impl Fn(&T) -> String,
) -> sqlx::Result<Page<T>>
where
    T: for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let (column, value) = scope;
    let rows = sqlx::query_as::<_, T>(&format!(
        "{select} WHERE {column} = $1 AND ($2::text IS NULL OR {key} > $2) \
         ORDER BY {key} LIMIT $3"
    ))
    .bind(value)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    Ok(paginate(rows, limit, key_of))
}

#[derive(FromRow)]
struct RowWithAccess {
    #[sqlx(flatten)]
    row: WorkspaceRow,
    org_role: Option<String>,
    ws_admin: bool,
    ws_member: bool,
}

/// A workspace by id, with what `user` is to it (`access`) — in one round trip.
pub async fn get_with_access(
    pool: &PgPool,
    ws: &WorkspaceId,
    user: &UserId,
) -> sqlx::Result<Option<(WorkspaceRow, WorkspaceAccess)>> {
    let found: Option<RowWithAccess> = sqlx::query_as(&format!(
        "WITH RECURSIVE admin_groups AS ( \
             SELECT id FROM rm_workspace_groups WHERE ws_id = $1 AND preset AND name = $3 \
             UNION SELECT g.id FROM rm_workspace_groups g JOIN admin_groups a ON g.parent_id = a.id) \
         SELECT {COLUMNS}, \
         (SELECT role FROM rm_organization_members m WHERE m.org_id = w.org_id AND m.user_id = $2) \
           AS org_role, \
         EXISTS (SELECT 1 FROM rm_workspace_group_members m \
                 WHERE m.ws_id = $1 AND m.user_id = $2 \
                   AND m.group_id IN (SELECT id FROM admin_groups)) AS ws_admin, \
         EXISTS (SELECT 1 FROM rm_workspace_group_members m WHERE m.ws_id = $1 AND m.user_id = $2) \
           AS ws_member \
         FROM rm_workspaces w WHERE w.id = $1"
    ))
    .bind(ws.as_str())
    .bind(user.as_str())
    .bind(ADMINS_GROUP)
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|f| {
        let access = WorkspaceAccess {
            org_role: f.org_role.as_deref().and_then(OrgRole::parse),
            ws_admin: f.ws_admin,
            ws_member: f.ws_member,
        };
        (f.row, access)
    }))
}

/// A workspace by id alone (for routes under `/workspaces/{wsId}`).
pub async fn get_by_id(pool: &PgPool, ws: &WorkspaceId) -> sqlx::Result<Option<WorkspaceRow>> {
    sqlx::query_as::<_, WorkspaceRow>(&format!(
        "SELECT {COLUMNS} FROM rm_workspaces w WHERE w.id = $1"
    ))
    .bind(ws.as_str())
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct GroupRow {
    pub id: String,
    pub ws_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub preset: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn groups(
    pool: &PgPool,
    ws: &WorkspaceId,
    after: Option<&GroupId>,
    limit: u32,
) -> sqlx::Result<Page<GroupRow>> {
    keyset(
        pool,
        "SELECT id, ws_id, name, parent_id, preset, created_at FROM rm_workspace_groups",
        ("ws_id", ws.as_str()),
        "id",
        after.map(GroupId::as_str),
        limit,
        |row: &GroupRow| row.id.clone(),
    )
    .await
}

pub async fn group(
    pool: &PgPool,
    ws: &WorkspaceId,
    id: &GroupId,
) -> sqlx::Result<Option<GroupRow>> {
    sqlx::query_as::<_, GroupRow>(
        "SELECT id, ws_id, name, parent_id, preset, created_at FROM rm_workspace_groups \
         WHERE ws_id = $1 AND id = $2",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct GroupMemberRow {
    pub user_id: String,
    pub since: DateTime<Utc>,
}

/// The direct members of a group, by user id.
pub async fn group_members(
    pool: &PgPool,
    group: &GroupId,
    after: Option<&UserId>,
    limit: u32,
) -> sqlx::Result<Page<GroupMemberRow>> {
    keyset(
        pool,
        "SELECT user_id, since FROM rm_workspace_group_members",
        ("group_id", group.as_str()),
        "user_id",
        after.map(UserId::as_str),
        limit,
        |row: &GroupMemberRow| row.user_id.clone(),
    )
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub ws_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn projects(
    pool: &PgPool,
    ws: &WorkspaceId,
    after: Option<&ProjectId>,
    limit: u32,
) -> sqlx::Result<Page<ProjectRow>> {
    keyset(
        pool,
        "SELECT id, ws_id, name, parent_id, created_at, updated_at FROM rm_projects",
        ("ws_id", ws.as_str()),
        "id",
        after.map(ProjectId::as_str),
        limit,
        |row: &ProjectRow| row.id.clone(),
    )
    .await
}

pub async fn project(
    pool: &PgPool,
    ws: &WorkspaceId,
    id: &ProjectId,
) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as::<_, ProjectRow>(
        "SELECT id, ws_id, name, parent_id, created_at, updated_at FROM rm_projects \
         WHERE ws_id = $1 AND id = $2",
    )
    .bind(ws.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
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

/// The workspace a project belongs to (from the command side's directory).
pub async fn project_workspace(pool: &PgPool, project: &ProjectId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT ws_id FROM project_directory WHERE project_id = $1")
        .bind(project.as_str())
        .fetch_optional(pool)
        .await
}

/// Whether `user` is in a group (or below one) granted `admin` on the project or the `admin`
/// cluster role of the workspace.
pub async fn project_admin(
    pool: &PgPool,
    ws: &WorkspaceId,
    project: &ProjectId,
    user: &UserId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "WITH RECURSIVE granted AS ( \
             SELECT group_id AS id FROM rm_role_assignments WHERE project_id = $2 AND role = 'admin' \
             UNION SELECT group_id FROM rm_cluster_role_assignments \
                   WHERE ws_id = $1 AND cluster_role = 'admin'), \
         below AS (SELECT id FROM granted \
                   UNION SELECT g.id FROM rm_workspace_groups g JOIN below b ON g.parent_id = b.id) \
         SELECT EXISTS (SELECT 1 FROM rm_workspace_group_members m \
                        WHERE m.ws_id = $1 AND m.user_id = $3 \
                          AND m.group_id IN (SELECT id FROM below))",
    )
    .bind(ws.as_str())
    .bind(project.as_str())
    .bind(user.as_str())
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RoleRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub rules: sqlx::types::Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn roles(
    pool: &PgPool,
    project: &ProjectId,
    after: Option<&str>,
    limit: u32,
) -> sqlx::Result<Page<RoleRow>> {
    keyset(
        pool,
        "SELECT id, project_id, name, rules, created_at, updated_at FROM rm_roles",
        ("project_id", project.as_str()),
        "id",
        after,
        limit,
        |row: &RoleRow| row.id.clone(),
    )
    .await
}

pub async fn role(pool: &PgPool, project: &ProjectId, id: &str) -> sqlx::Result<Option<RoleRow>> {
    sqlx::query_as::<_, RoleRow>(
        "SELECT id, project_id, name, rules, created_at, updated_at FROM rm_roles \
         WHERE project_id = $1 AND id = $2",
    )
    .bind(project.as_str())
    .bind(id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AssignmentRow {
    pub id: String,
    /// The project (role assignments) or the workspace (cluster role assignments).
    pub scope_id: String,
    pub group_id: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

pub async fn role_assignments(
    pool: &PgPool,
    project: &ProjectId,
    after: Option<&str>,
    limit: u32,
) -> sqlx::Result<Page<AssignmentRow>> {
    keyset(
        pool,
        "SELECT id, project_id AS scope_id, group_id, role, created_at FROM rm_role_assignments",
        ("project_id", project.as_str()),
        "id",
        after,
        limit,
        |row: &AssignmentRow| row.id.clone(),
    )
    .await
}

pub async fn role_assignment(
    pool: &PgPool,
    project: &ProjectId,
    id: &str,
) -> sqlx::Result<Option<AssignmentRow>> {
    sqlx::query_as::<_, AssignmentRow>(
        "SELECT id, project_id AS scope_id, group_id, role, created_at FROM rm_role_assignments \
         WHERE project_id = $1 AND id = $2",
    )
    .bind(project.as_str())
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn cluster_role_assignments(
    pool: &PgPool,
    ws: &WorkspaceId,
    after: Option<&str>,
    limit: u32,
) -> sqlx::Result<Page<AssignmentRow>> {
    keyset(
        pool,
        "SELECT id, ws_id AS scope_id, group_id, cluster_role AS role, created_at \
         FROM rm_cluster_role_assignments",
        ("ws_id", ws.as_str()),
        "id",
        after,
        limit,
        |row: &AssignmentRow| row.id.clone(),
    )
    .await
}

pub async fn cluster_role_assignment(
    pool: &PgPool,
    ws: &WorkspaceId,
    id: &str,
) -> sqlx::Result<Option<AssignmentRow>> {
    sqlx::query_as::<_, AssignmentRow>(
        "SELECT id, ws_id AS scope_id, group_id, cluster_role AS role, created_at \
         FROM rm_cluster_role_assignments WHERE ws_id = $1 AND id = $2",
    )
    .bind(ws.as_str())
    .bind(id)
    .fetch_optional(pool)
    .await
}
