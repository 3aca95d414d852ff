//! The auditors' view: every event that concerns an organization, with who did it and when.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use hexabase_command::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID, REQUEST_ID};
use hexabase_command::organization::Organization;
use hexabase_command::store::StoredEvent;
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "audit";

pub struct AuditProjection;

/// The organization an event belongs to. Aggregates below an organization (workspaces and
/// what they contain) will name it in their payloads.
fn organization_of(event: &StoredEvent) -> Option<&str> {
    if event.aggregate_type == Organization::TYPE {
        return Some(&event.aggregate_id);
    }
    None
}

#[async_trait]
impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_audit_events"]
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let Some(org_id) = organization_of(event) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO rm_audit_events (position, org_id, aggregate_type, aggregate_id, sequence, \
             event_type, event_version, payload, actor, request_id, correlation_id, causation_id, \
             occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(event.position)
        .bind(org_id)
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
