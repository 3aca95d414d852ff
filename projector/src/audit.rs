//! The auditors' view: every event that concerns an organization, with who did it and when.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hexabase_command::credential::{Credential, CredentialEvent};
use hexabase_command::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID, REQUEST_ID};
use hexabase_command::organization::Organization;
use hexabase_command::store::StoredEvent;
use hexabase_command::workspace::{Workspace, WorkspaceEvent};
use hexabase_query::read_model::{self, ReadModel};
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = read_model::AUDIT.name;

pub struct AuditProjection;

/// The organization an event belongs to: an organization's own events; a workspace's (and so
/// its groups', projects', roles' and assignments') through the organization its first event
/// named, remembered in `rm_audit_scopes`; a workspace token's through its payload. Other
/// aggregates (users, keyrings) belong to none.
enum Scope {
    Known(String),
    /// A workspace's later event: its organization is in `rm_audit_scopes`.
    Recorded,
    None,
}

fn scope_of(event: &StoredEvent) -> Result<(Scope, bool), ProjectionError> {
    if event.aggregate_type == Organization::TYPE {
        return Ok((Scope::Known(event.aggregate_id.clone()), false));
    }
    if event.aggregate_type == Credential::TYPE {
        let payload = event
            .payload_as::<CredentialEvent>()
            .map_err(|e| ProjectionError::malformed(event, e))?;
        let CredentialEvent::WorkspaceTokenIssued { org_id, .. } = payload;
        return Ok((Scope::Known(org_id.to_string()), false));
    }
    if event.aggregate_type != Workspace::TYPE {
        return Ok((Scope::None, false));
    }
    let payload = event
        .payload_as::<WorkspaceEvent>()
        .map_err(|e| ProjectionError::malformed(event, e))?;
    Ok(match payload {
        WorkspaceEvent::WorkspaceRequested { org_id, .. } => {
            (Scope::Known(org_id.to_string()), true)
        }
        _ => (Scope::Recorded, false),
    })
}

/// Rows of `rm_audit_events`, column by column, written in one statement.
#[derive(Default)]
struct Rows<'e> {
    position: Vec<i64>,
    org_id: Vec<String>,
    aggregate_type: Vec<&'e str>,
    aggregate_id: Vec<&'e str>,
    sequence: Vec<i64>,
    event_type: Vec<&'e str>,
    event_version: Vec<&'e str>,
    payload: Vec<&'e str>,
    actor: Vec<Option<&'e str>>,
    request_id: Vec<Option<&'e str>>,
    correlation_id: Vec<Option<&'e str>>,
    causation_id: Vec<Option<&'e str>>,
    occurred_at: Vec<DateTime<Utc>>,
}

impl<'e> Rows<'e> {
    fn push(&mut self, event: &'e StoredEvent, org_id: String) {
        self.position.push(event.position);
        self.org_id.push(org_id);
        self.aggregate_type.push(&event.aggregate_type);
        self.aggregate_id.push(&event.aggregate_id);
        self.sequence.push(event.sequence);
        self.event_type.push(&event.event_type);
        self.event_version.push(&event.event_version);
        self.payload.push(event.payload.get());
        self.actor.push(event.meta(ACTOR));
        self.request_id.push(event.meta(REQUEST_ID));
        self.correlation_id.push(event.meta(CORRELATION_ID));
        self.causation_id.push(event.meta(CAUSATION_ID));
        self.occurred_at.push(occurred_at(event));
    }

    async fn write(self, db: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.position.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rm_audit_events (position, org_id, aggregate_type, aggregate_id, sequence, \
             event_type, event_version, payload, actor, request_id, correlation_id, causation_id, \
             occurred_at) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
                                  $6::text[], $7::text[], $8::text[]::json[], $9::text[], \
                                  $10::text[], $11::text[], $12::text[], $13::timestamptz[]) \
             ON CONFLICT (position) DO NOTHING",
        )
        .bind(self.position)
        .bind(self.org_id)
        .bind(self.aggregate_type)
        .bind(self.aggregate_id)
        .bind(self.sequence)
        .bind(self.event_type)
        .bind(self.event_version)
        .bind(self.payload)
        .bind(self.actor)
        .bind(self.request_id)
        .bind(self.correlation_id)
        .bind(self.causation_id)
        .bind(self.occurred_at)
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for AuditProjection {
    fn model(&self) -> &'static ReadModel {
        &read_model::AUDIT
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_events(db, &[event]).await
    }

    /// A batch in at most three statements: the scopes of workspaces requested in it, the
    /// scopes of workspaces requested earlier, and the audit rows.
    async fn apply_events(
        &self,
        db: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut scopes: HashMap<&str, String> = HashMap::new();
        let (mut requested_ids, mut requested_orgs) = (Vec::new(), Vec::new());
        let mut decided = Vec::with_capacity(events.len());
        for event in events {
            let (scope, requested) = scope_of(event)?;
            if let (true, Scope::Known(org_id)) = (requested, &scope) {
                scopes.insert(&event.aggregate_id, org_id.clone());
                requested_ids.push(event.aggregate_id.as_str());
                requested_orgs.push(org_id.clone());
            }
            decided.push((*event, scope));
        }
        if !requested_ids.is_empty() {
            sqlx::query(
                "INSERT INTO rm_audit_scopes (aggregate_type, aggregate_id, org_id) \
                 SELECT $1, i, o FROM UNNEST($2::text[], $3::text[]) AS u(i, o)",
            )
            .bind(Workspace::TYPE)
            .bind(&requested_ids)
            .bind(&requested_orgs)
            .execute(&mut *db)
            .await?;
        }
        let earlier: Vec<&str> = decided
            .iter()
            .filter(|(e, s)| {
                matches!(s, Scope::Recorded) && !scopes.contains_key(e.aggregate_id.as_str())
            })
            .map(|(e, _)| e.aggregate_id.as_str())
            .collect();
        let recorded: Vec<(String, String)> = if earlier.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT aggregate_id, org_id FROM rm_audit_scopes \
                 WHERE aggregate_type = $1 AND aggregate_id = ANY($2)",
            )
            .bind(Workspace::TYPE)
            .bind(&earlier)
            .fetch_all(&mut *db)
            .await?
        };
        let recorded: HashMap<&str, &str> = recorded
            .iter()
            .map(|(i, o)| (i.as_str(), o.as_str()))
            .collect();
        let mut rows = Rows::default();
        for (event, scope) in decided {
            let org_id = match scope {
                Scope::Known(org_id) => Some(org_id),
                Scope::Recorded => scopes
                    .get(event.aggregate_id.as_str())
                    .cloned()
                    .or_else(|| {
                        recorded
                            .get(event.aggregate_id.as_str())
                            .map(|o| o.to_string())
                    }),
                Scope::None => None,
            };
            if let Some(org_id) = org_id {
                rows.push(event, org_id);
            }
        }
        rows.write(db).await
    }
}
