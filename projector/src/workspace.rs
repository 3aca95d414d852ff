//! Read model of workspaces, their groups and the groups' direct members.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use hexabase_command::store::StoredEvent;
use hexabase_command::workspace::{
    Workspace, WorkspaceEvent, WorkspaceStatus, ADMINS_GROUP, MEMBERS_GROUP,
};
use hexabase_query::read_model::{self, ReadModel};
use sqlx::PgConnection;

use crate::organization::occurred_at;
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = read_model::WORKSPACES.name;

pub struct WorkspacesProjection;

#[async_trait]
impl Projection for WorkspacesProjection {
    fn model(&self) -> &'static ReadModel {
        &read_model::WORKSPACES
    }

    async fn apply_event(
        &self,
        db: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != Workspace::TYPE {
            return Ok(());
        }
        let payload = event
            .payload_as::<WorkspaceEvent>()
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
            WorkspaceEvent::GroupCreated { id, name, parent } => {
                sqlx::query(
                    "INSERT INTO rm_workspace_groups (id, ws_id, name, parent_id, preset, created_at) \
                     VALUES ($1, $2, $3, $4, false, $5)",
                )
                .bind(id.as_str())
                .bind(ws_id)
                .bind(&name)
                .bind(parent.as_ref().map(|p| p.as_str()))
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::GroupRenamed { id, name } => {
                sqlx::query("UPDATE rm_workspace_groups SET name = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(&name)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::GroupMoved { id, parent } => {
                sqlx::query("UPDATE rm_workspace_groups SET parent_id = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(parent.as_str())
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::GroupDeleted { id } => {
                sqlx::query("DELETE FROM rm_workspace_group_members WHERE group_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *db)
                    .await?;
                sqlx::query("DELETE FROM rm_workspace_groups WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::GroupMemberAdded { group, user } => {
                sqlx::query(
                    "INSERT INTO rm_workspace_group_members (group_id, ws_id, user_id, since) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(group.as_str())
                .bind(ws_id)
                .bind(user.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::GroupMemberRemoved { group, user } => {
                sqlx::query(
                    "DELETE FROM rm_workspace_group_members WHERE group_id = $1 AND user_id = $2",
                )
                .bind(group.as_str())
                .bind(user.as_str())
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::ProjectCreated { id, name, parent } => {
                sqlx::query(
                    "INSERT INTO rm_projects (id, ws_id, name, parent_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(id.as_str())
                .bind(ws_id)
                .bind(&name)
                .bind(parent.as_ref().map(|p| p.as_str()))
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::ProjectMoved { id, parent } => {
                sqlx::query("UPDATE rm_projects SET parent_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(parent.as_ref().map(|p| p.as_str()))
                    .bind(at)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::ProjectDeleted { id } => {
                for statement in [
                    "DELETE FROM rm_role_assignments WHERE project_id = $1",
                    "DELETE FROM rm_roles WHERE project_id = $1",
                    "DELETE FROM rm_projects WHERE id = $1",
                ] {
                    sqlx::query(statement)
                        .bind(id.as_str())
                        .execute(&mut *db)
                        .await?;
                }
            }
            WorkspaceEvent::RoleCreated {
                project,
                id,
                name,
                rules,
            } => {
                sqlx::query(
                    "INSERT INTO rm_roles (id, project_id, ws_id, name, rules, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(id.as_str())
                .bind(project.as_str())
                .bind(ws_id)
                .bind(&name)
                .bind(sqlx::types::Json(&rules))
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::RoleRulesChanged { id, rules, .. } => {
                sqlx::query("UPDATE rm_roles SET rules = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(sqlx::types::Json(&rules))
                    .bind(at)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::RoleDeleted { id, .. } => {
                sqlx::query("DELETE FROM rm_roles WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::RoleAssigned {
                project,
                id,
                group,
                role,
            } => {
                sqlx::query(
                    "INSERT INTO rm_role_assignments (id, project_id, ws_id, group_id, role, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.as_str())
                .bind(project.as_str())
                .bind(ws_id)
                .bind(group.as_str())
                .bind(role.to_string())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::RoleUnassigned { id, .. } => {
                sqlx::query("DELETE FROM rm_role_assignments WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::ClusterRoleAssigned { id, group, role } => {
                sqlx::query(
                    "INSERT INTO rm_cluster_role_assignments (id, ws_id, group_id, cluster_role, \
                     created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.as_str())
                .bind(ws_id)
                .bind(group.as_str())
                .bind(role.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::ClusterRoleUnassigned { id } => {
                sqlx::query("DELETE FROM rm_cluster_role_assignments WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::EndpointAssigned { server, ca_pem } => {
                sqlx::query(
                    "UPDATE rm_workspaces SET api_server = $2, api_server_ca = $3, updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(ws_id)
                .bind(&server)
                .bind(&ca_pem)
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => {
                set_status(db, ws_id, &[], WorkspaceStatus::Deleting, None, at).await?;
            }
            WorkspaceEvent::WorkspaceProvisioningStarted { .. } => {
                let from = [WorkspaceStatus::Requested];
                set_status(db, ws_id, &from, WorkspaceStatus::Provisioning, None, at).await?;
            }
            WorkspaceEvent::WorkspaceProvisioned => {
                let from = [WorkspaceStatus::Provisioning];
                set_status(db, ws_id, &from, WorkspaceStatus::Ready, None, at).await?;
            }
            WorkspaceEvent::WorkspaceProvisioningFailed { reason } => {
                let from = [WorkspaceStatus::Requested, WorkspaceStatus::Provisioning];
                let reason = Some(reason.as_str());
                set_status(db, ws_id, &from, WorkspaceStatus::Failed, reason, at).await?;
            }
            WorkspaceEvent::WorkspaceDeleted => {
                set_status(db, ws_id, &[], WorkspaceStatus::Deleted, None, at).await?;
                // Its nodes went back to the pool with its cluster.
                sqlx::query("DELETE FROM rm_dedicated_nodes WHERE ws_id = $1")
                    .bind(ws_id)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::DedicatedNodesRequested {
                request,
                count,
                requested_by,
            } => {
                sqlx::query(
                    "INSERT INTO rm_node_requests (id, ws_id, count, status, requested_by, \
                     requested_at, updated_at) VALUES ($1, $2, $3, 'Pending', $4, $5, $5) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(request.as_str())
                .bind(ws_id)
                .bind(i32::try_from(count).unwrap_or(i32::MAX))
                .bind(requested_by.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::DedicatedNodesAssigned { request, nodes } => {
                sqlx::query(
                    "UPDATE rm_node_requests SET status = 'Assigned', updated_at = $2 WHERE id = $1",
                )
                .bind(request.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
                sqlx::query(
                    "INSERT INTO rm_dedicated_nodes (node, ws_id, request_id, assigned_at) \
                     SELECT unnest($1::text[]), $2, $3, $4 \
                     ON CONFLICT (node) DO UPDATE SET ws_id = $2, request_id = $3, assigned_at = $4",
                )
                .bind(&nodes)
                .bind(ws_id)
                .bind(request.as_str())
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::DedicatedNodesRequestFailed { request, reason } => {
                sqlx::query(
                    "UPDATE rm_node_requests SET status = 'Failed', reason = $2, updated_at = $3 \
                     WHERE id = $1",
                )
                .bind(request.as_str())
                .bind(&reason)
                .bind(at)
                .execute(&mut *db)
                .await?;
            }
            WorkspaceEvent::DedicatedNodeReleased { node, .. } => {
                sqlx::query("DELETE FROM rm_dedicated_nodes WHERE node = $1 AND ws_id = $2")
                    .bind(&node)
                    .bind(ws_id)
                    .execute(&mut *db)
                    .await?;
            }
            WorkspaceEvent::WorkspaceSuspensionRequested { reason, .. } => {
                let from = [WorkspaceStatus::Ready, WorkspaceStatus::Resuming];
                let reason = reason.as_deref();
                set_status(db, ws_id, &from, WorkspaceStatus::Suspending, reason, at).await?;
            }
            WorkspaceEvent::WorkspaceSuspended => {
                let from = [WorkspaceStatus::Suspending];
                set_status(db, ws_id, &from, WorkspaceStatus::Suspended, None, at).await?;
            }
            WorkspaceEvent::WorkspaceResumptionRequested { .. } => {
                let from = [WorkspaceStatus::Suspended, WorkspaceStatus::Suspending];
                set_status(db, ws_id, &from, WorkspaceStatus::Resuming, None, at).await?;
            }
            WorkspaceEvent::WorkspaceResumed => {
                let from = [WorkspaceStatus::Resuming];
                set_status(db, ws_id, &from, WorkspaceStatus::Ready, None, at).await?;
            }
            // In the history only: the workspace's status does not change until its saga ends.
            WorkspaceEvent::WorkspaceStepFailed { .. } => {}
        }
        Ok(())
    }
}

/// Move the workspace to `status` (with `reason`), if it is in one of `from` (any, when empty):
/// the aggregate's own rules, so a deletion requested during provisioning stays `Deleting`. A
/// workspace that failed or is deleted has no API server any more; a suspended one keeps the
/// reason its suspension was asked for with.
async fn set_status(
    db: &mut PgConnection,
    ws_id: &str,
    from: &[WorkspaceStatus],
    status: WorkspaceStatus,
    reason: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    sqlx::query(
        "UPDATE rm_workspaces SET status = $2, updated_at = $4, \
             status_reason = CASE WHEN $2 = 'Suspended' THEN status_reason ELSE $3 END, \
             api_server = CASE WHEN $2 IN ('Failed', 'Deleted') THEN NULL ELSE api_server END, \
             api_server_ca = CASE WHEN $2 IN ('Failed', 'Deleted') THEN NULL ELSE api_server_ca END \
         WHERE id = $1 AND (cardinality($5::text[]) = 0 OR status = ANY($5))",
    )
    .bind(ws_id)
    .bind(status.as_str())
    .bind(reason)
    .bind(at)
    .bind(&from)
    .execute(&mut *db)
    .await?;
    Ok(())
}
