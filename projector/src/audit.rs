//! The auditors' view: every event that concerns an organization, with who did it and when.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use hexabase_command::credential::{Credential, CredentialEvent};
use hexabase_command::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID, REQUEST_ID};
use hexabase_command::organization::Organization;
use hexabase_command::store::StoredEvent;
use hexabase_command::workspace::{Workspace, WorkspaceEvent};
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "audit";

pub struct AuditProjection;

/// The organization an event belongs to: an organization's own events; a workspace's (and so
/// its groups', projects', roles' and assignments') through the organization its first event
/// named, remembered in `rm_audit_scopes`; a workspace token's through its payload. Other
/// aggregates (users, keyrings) belong to none.
async fn organization_of(
    db: &mut PgConnection,
    event: &StoredEvent,
) -> Result<Option<String>, ProjectionError> {
    if event.aggregate_type == Organization::TYPE {
        return Ok(Some(event.aggregate_id.clone()));
    }
    if event.aggregate_type == Credential::TYPE {
        let payload: CredentialEvent = serde_json::from_value(event.payload.clone())
            .map_err(|e| ProjectionError::malformed(event, e))?;
        let CredentialEvent::WorkspaceTokenIssued { org_id, .. } = payload;
        return Ok(Some(org_id.to_string()));
    }
    if event.aggregate_type != Workspace::TYPE {
        return Ok(None);
    }
    let payload: WorkspaceEvent = serde_json::from_value(event.payload.clone())
        .map_err(|e| ProjectionError::malformed(event, e))?;
    if let WorkspaceEvent::WorkspaceRequested { org_id, .. } = payload {
        sqlx::query(
            "INSERT INTO rm_audit_scopes (aggregate_type, aggregate_id, org_id) VALUES ($1, $2, $3)",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(org_id.as_str())
        .execute(&mut *db)
        .await?;
        return Ok(Some(org_id.to_string()));
    }
    Ok(sqlx::query_scalar(
        "SELECT org_id FROM rm_audit_scopes WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .fetch_optional(&mut *db)
    .await?)
}

#[async_trait]
impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_audit_events", "rm_audit_scopes"]
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Organization::TYPE, Workspace::TYPE, Credential::TYPE]
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let Some(org_id) = organization_of(db, event).await? else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO rm_audit_events (position, org_id, aggregate_type, aggregate_id, sequence, \
             event_type, event_version, payload, actor, request_id, correlation_id, causation_id, \
             occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(event.position)
        .bind(&org_id)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence)
        .bind(&event.event_type)
        .bind(&event.event_version)
        .bind(&event.payload)
        .bind(event.meta(ACTOR))
        .bind(event.meta(REQUEST_ID))
        .bind(event.meta(CORRELATION_ID))
        .bind(event.meta(CAUSATION_ID))
        .bind(occurred_at(event))
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}
