//! Read model of users and their linked identities.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use hexabase_command::store::StoredEvent;
use hexabase_command::user::{Identity, User, UserEvent};
use hexabase_query::read_model::{self, ReadModel};
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = read_model::USERS.name;

pub struct UsersProjection;

async fn link(
    db: &mut PgConnection,
    user_id: &str,
    identity: &Identity,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO rm_user_identities (user_id, provider, subject, linked_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(&identity.provider)
    .bind(&identity.subject)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for UsersProjection {
    fn model(&self) -> &'static ReadModel {
        &read_model::USERS
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != User::TYPE {
            return Ok(());
        }
        let payload = event
            .payload_as::<UserEvent>()
            .map_err(|e| ProjectionError::malformed(event, e))?;
        let user_id = &event.aggregate_id;
        let at = occurred_at(event);
        match payload {
            UserEvent::UserRegistered {
                identity,
                email,
                email_verified,
                display_name,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO rm_users (id, email, email_verified, display_name, registered_at, \
                     last_login_at) VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(user_id)
                .bind(&email)
                .bind(email_verified)
                .bind(&display_name)
                .bind(at)
                .execute(&mut *db)
                .await?;
                link(db, user_id, &identity, at).await?;
            }
            UserEvent::UserLoggedIn {
                email,
                email_verified,
                display_name,
                ..
            } => {
                sqlx::query(
                    "UPDATE rm_users SET email = $2, email_verified = $3, \
                     display_name = COALESCE($4, display_name), last_login_at = $5 WHERE id = $1",
                )
                .bind(user_id)
                .bind(&email)
                .bind(email_verified)
                .bind(&display_name)
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            UserEvent::IdentityLinked { identity, .. } => {
                link(db, user_id, &identity, at).await?;
            }
        }
        Ok(())
    }
}
