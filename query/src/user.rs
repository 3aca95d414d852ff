use chrono::{DateTime, Utc};
use hexabase_command::UserId;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct IdentityRow {
    pub provider: String,
    pub subject: String,
    pub linked_at: DateTime<Utc>,
}

/// An invitation waiting for the owner of an email address.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct PendingInvitationRow {
    pub org_id: String,
    pub org_name: String,
    pub role: String,
    pub invited_by: String,
    pub invited_at: DateTime<Utc>,
}

pub async fn get(pool: &PgPool, user: &UserId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as::<_, UserRow>(
        "SELECT id, email, email_verified, display_name, registered_at, last_login_at \
         FROM rm_users WHERE id = $1",
    )
    .bind(user.as_str())
    .fetch_optional(pool)
    .await
}

pub async fn identities(pool: &PgPool, user: &UserId) -> sqlx::Result<Vec<IdentityRow>> {
    sqlx::query_as::<_, IdentityRow>(
        "SELECT provider, subject, linked_at FROM rm_user_identities WHERE user_id = $1 \
         ORDER BY linked_at, provider",
    )
    .bind(user.as_str())
    .fetch_all(pool)
    .await
}

/// Pending invitations addressed to `email`, oldest first (at most 100).
pub async fn invitations_for(
    pool: &PgPool,
    email: &str,
) -> sqlx::Result<Vec<PendingInvitationRow>> {
    sqlx::query_as::<_, PendingInvitationRow>(
        "SELECT i.org_id, o.name AS org_name, i.role, i.invited_by, i.invited_at \
         FROM rm_organization_invitations i JOIN rm_organizations o ON o.id = i.org_id \
         WHERE i.email = $1 ORDER BY i.invited_at, i.org_id LIMIT 100",
    )
    .bind(email)
    .fetch_all(pool)
    .await
}
