use chrono::{DateTime, Utc};
use hexabase_command::policy::OrgRole;
use hexabase_command::{OrganizationId, UserId};
use sqlx::{FromRow, PgPool};

use crate::page::{paginate, Page};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller's role in it.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub role: String,
    pub since: DateTime<Utc>,
}

/// A member with what the users read model knows of them (nothing until they first sign in).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MemberProfileRow {
    #[sqlx(flatten)]
    pub member: MemberRow,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct InvitationRow {
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub invited_at: DateTime<Utc>,
}

/// The organizations `user` belongs to, oldest first, after the `after` cursor (an org id).
pub async fn list_for_user(
    pool: &PgPool,
    user: &UserId,
    after: Option<&OrganizationId>,
    limit: u32,
) -> sqlx::Result<Page<OrganizationRow>> {
    let rows = sqlx::query_as::<_, OrganizationRow>(
        "SELECT o.id, o.name, o.created_by, o.created_at, o.updated_at, m.role \
         FROM rm_organization_members m JOIN rm_organizations o ON o.id = m.org_id \
         WHERE m.user_id = $1 AND ($2::text IS NULL OR m.org_id > $2) \
         ORDER BY m.org_id LIMIT $3",
    )
    .bind(user.as_str())
    .bind(after.map(OrganizationId::as_str))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    Ok(paginate(rows, limit, |row| row.id.clone()))
}

/// One organization as seen by `user`; `None` when it does not exist or `user` is no member.
pub async fn get_for_user(
    pool: &PgPool,
    org: &OrganizationId,
    user: &UserId,
) -> sqlx::Result<Option<OrganizationRow>> {
    sqlx::query_as::<_, OrganizationRow>(
        "SELECT o.id, o.name, o.created_by, o.created_at, o.updated_at, m.role \
         FROM rm_organizations o JOIN rm_organization_members m ON m.org_id = o.id \
         WHERE o.id = $1 AND m.user_id = $2",
    )
    .bind(org.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await
}

pub async fn role_of(
    pool: &PgPool,
    org: &OrganizationId,
    user: &UserId,
) -> sqlx::Result<Option<OrgRole>> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM rm_organization_members WHERE org_id = $1 AND user_id = $2",
    )
    .bind(org.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(role.as_deref().and_then(OrgRole::parse))
}

pub async fn members(pool: &PgPool, org: &OrganizationId) -> sqlx::Result<Vec<MemberRow>> {
    sqlx::query_as::<_, MemberRow>(
        "SELECT user_id, role, since FROM rm_organization_members WHERE org_id = $1 ORDER BY user_id",
    )
    .bind(org.as_str())
    .fetch_all(pool)
    .await
}

/// The members of `org` by user id, after the `after` cursor (a user id).
pub async fn members_page(
    pool: &PgPool,
    org: &OrganizationId,
    after: Option<&UserId>,
    limit: u32,
) -> sqlx::Result<Page<MemberProfileRow>> {
    let rows = sqlx::query_as::<_, MemberProfileRow>(
        "SELECT m.user_id, m.role, m.since, u.email, u.display_name \
         FROM rm_organization_members m LEFT JOIN rm_users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND ($2::text IS NULL OR m.user_id > $2) \
         ORDER BY m.user_id LIMIT $3",
    )
    .bind(org.as_str())
    .bind(after.map(UserId::as_str))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    Ok(paginate(rows, limit, |row| row.member.user_id.clone()))
}

pub async fn invitations(pool: &PgPool, org: &OrganizationId) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as::<_, InvitationRow>(
        "SELECT email, role, invited_by, invited_at FROM rm_organization_invitations \
         WHERE org_id = $1 ORDER BY email",
    )
    .bind(org.as_str())
    .fetch_all(pool)
    .await
}
