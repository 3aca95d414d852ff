//! Read model of organizations, their members and pending invitations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hexabase_command::metadata::TIME;
use hexabase_command::organization::{Organization, OrganizationEvent};
use hexabase_command::policy::OrgRole;
use hexabase_command::store::StoredEvent;
use hexabase_query::read_model::{self, ReadModel};
use sqlx::PgConnection;

use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = read_model::ORGANIZATIONS.name;

pub struct OrganizationsProjection;

/// When the command that caused the event ran (falls back to the commit time).
pub fn occurred_at(event: &StoredEvent) -> DateTime<Utc> {
    event
        .meta(TIME)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(event.recorded_at)
}

#[async_trait]
impl Projection for OrganizationsProjection {
    fn model(&self) -> &'static ReadModel {
        &read_model::ORGANIZATIONS
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_events(db, &[event]).await
    }

    /// Organizations created one after another are written together, two rows each (the
    /// organization and its creator as admin) in one statement; other events one by one, in
    /// order.
    async fn apply_events(
        &self,
        db: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut created = Created::default();
        for event in events {
            if event.aggregate_type != Organization::TYPE {
                continue;
            }
            let payload = event
                .payload_as::<OrganizationEvent>()
                .map_err(|e| ProjectionError::malformed(event, e))?;
            match payload {
                OrganizationEvent::OrganizationCreated {
                    name, created_by, ..
                } => created.push(event, name, created_by.to_string()),
                payload => {
                    created.write(&mut *db).await?;
                    apply(&mut *db, event, payload).await?;
                }
            }
        }
        created.write(db).await
    }
}

/// Organizations created, column by column.
#[derive(Default)]
struct Created<'e> {
    id: Vec<&'e str>,
    name: Vec<String>,
    created_by: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

impl<'e> Created<'e> {
    fn push(&mut self, event: &'e StoredEvent, name: String, created_by: String) {
        self.id.push(&event.aggregate_id);
        self.name.push(name);
        self.created_by.push(created_by);
        self.at.push(occurred_at(event));
    }

    async fn write(&mut self, db: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.id.is_empty() {
            return Ok(());
        }
        let created = std::mem::take(self);
        sqlx::query(
            "WITH created AS ( \
               INSERT INTO rm_organizations (id, name, created_by, created_at, updated_at) \
               SELECT i, n, c, t, t FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
                 AS u(i, n, c, t) \
               RETURNING id, created_by, created_at) \
             INSERT INTO rm_organization_members (org_id, user_id, role, since) \
             SELECT id, created_by, $5, created_at FROM created",
        )
        .bind(created.id)
        .bind(created.name)
        .bind(created.created_by)
        .bind(created.at)
        .bind(OrgRole::Admin.as_str())
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}

/// Any event but a creation.
async fn apply(
    db: &mut PgConnection,
    event: &StoredEvent,
    payload: OrganizationEvent,
) -> Result<(), ProjectionError> {
    let org_id = &event.aggregate_id;
    let at = occurred_at(event);
    match payload {
        OrganizationEvent::OrganizationCreated {
            name, created_by, ..
        } => {
            let mut created = Created::default();
            created.push(event, name, created_by.to_string());
            created.write(db).await?;
        }
        OrganizationEvent::OrganizationRenamed { name } => {
            sqlx::query("UPDATE rm_organizations SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(org_id)
                .bind(&name)
                .bind(at)
                .execute(&mut *db)
                .await?;
        }
        OrganizationEvent::UserInvited {
            email,
            role,
            invited_by,
        } => {
            sqlx::query(
                    "INSERT INTO rm_organization_invitations (org_id, email, role, invited_by, invited_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(org_id)
                .bind(&email)
                .bind(role.as_str())
                .bind(invited_by.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
        }
        OrganizationEvent::InvitationAccepted {
            email,
            user_id,
            role,
        } => {
            sqlx::query("DELETE FROM rm_organization_invitations WHERE org_id = $1 AND email = $2")
                .bind(org_id)
                .bind(&email)
                .execute(&mut *db)
                .await?;
            sqlx::query(
                "INSERT INTO rm_organization_members (org_id, user_id, role, since) \
                     VALUES ($1, $2, $3, $4)",
            )
            .bind(org_id)
            .bind(user_id.as_str())
            .bind(role.as_str())
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::MemberRoleChanged { user_id, role } => {
            sqlx::query(
                "UPDATE rm_organization_members SET role = $3 WHERE org_id = $1 AND user_id = $2",
            )
            .bind(org_id)
            .bind(user_id.as_str())
            .bind(role.as_str())
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::OrganizationDeleted { .. } => {
            for table in [
                "rm_organization_members",
                "rm_organization_invitations",
                "rm_billing",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1"))
                    .bind(org_id)
                    .execute(&mut *db)
                    .await?;
            }
            sqlx::query("DELETE FROM rm_organizations WHERE id = $1")
                .bind(org_id)
                .execute(&mut *db)
                .await?;
        }
        billing @ (OrganizationEvent::BillingCustomerRequested
        | OrganizationEvent::BillingCustomerCreated { .. }
        | OrganizationEvent::SubscriptionActivated { .. }
        | OrganizationEvent::SubscriptionChanged { .. }
        | OrganizationEvent::SubscriptionCanceled { .. }
        | OrganizationEvent::PaymentSucceeded { .. }
        | OrganizationEvent::PaymentFailed { .. }
        | OrganizationEvent::BillingSuspended { .. }) => {
            crate::billing::apply(db, org_id, at, billing).await?;
        }
        // The workspaces projection keeps the organization's workspaces.
        OrganizationEvent::WorkspaceAttached { .. }
        | OrganizationEvent::WorkspaceDetached { .. } => {}
        OrganizationEvent::MemberRemoved { user_id } => {
            sqlx::query("DELETE FROM rm_organization_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id.as_str())
                .execute(&mut *db)
                .await?;
        }
    }
    Ok(())
}
