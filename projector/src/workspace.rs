//! Read model of workspaces, their groups and the groups' direct members.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use hexabase_command::store::StoredEvent;
use hexabase_command::workspace::{
    Workspace, WorkspaceEvent, WorkspaceStatus, ADMINS_GROUP, MEMBERS_GROUP,
};
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "workspaces";

pub struct WorkspacesProjection;

#[async_trait]
impl Projection for WorkspacesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_workspaces",
            "rm_workspace_groups",
            "rm_workspace_group_members",
        ]
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != Workspace::TYPE {
            return Ok(());
        }
        let payload: WorkspaceEvent = serde_json::from_value(event.payload.clone())
            .map_err(|e| ProjectionError::malformed(event, e))?;
        let ws_id = &event.aggregate_id;
        let at = occurred_at(event);
        match payload {
            WorkspaceEvent::WorkspaceRequested {
                org_id,
                name,
                plan,
                requested_by,
                members_group,
                admins_group,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO rm_workspaces (id, org_id, name, plan, status, created_by, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(ws_id)
                .bind(org_id.as_str())
                .bind(&name)
                .bind(&plan)
                .bind(WorkspaceStatus::Requested.as_str())
                .bind(requested_by.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
                sqlx::query(
                    "INSERT INTO rm_workspace_groups (id, ws_id, name, parent_id, preset, created_at) \
                     VALUES ($1, $2, $3, NULL, true, $5), ($4, $2, $6, $1, true, $5)",
                )
                .bind(members_group.as_str())
                .bind(ws_id)
                .bind(MEMBERS_GROUP)
                .bind(admins_group.as_str())
                .bind(at)
                .bind(ADMINS_GROUP)
                .execute(&mut *db)
                .await?;
                sqlx::query(
                    "INSERT INTO rm_workspace_group_members (group_id, ws_id, user_id, since) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(admins_group.as_str())
                .bind(ws_id)
                .bind(requested_by.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::WorkspaceRenamed { name } => {
                sqlx::query("UPDATE rm_workspaces SET name = $2, updated_at = $3 WHERE id = $1")
                    .bind(ws_id)
                    .bind(&name)
                    .bind(at)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::WorkspacePlanChanged { plan } => {
                sqlx::query("UPDATE rm_workspaces SET plan = $2, updated_at = $3 WHERE id = $1")
                    .bind(ws_id)
                    .bind(&plan)
                    .bind(at)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => {
                sqlx::query("UPDATE rm_workspaces SET status = $2, updated_at = $3 WHERE id = $1")
                    .bind(ws_id)
                    .bind(WorkspaceStatus::Deleting.as_str())
                    .bind(at)
                    .execute(&mut *db)
                    .await?;
            }
        }
        Ok(())
    }
}
