//! Who may do what inside a workspace's cluster: a project's custom roles and role
//! assignments, and a workspace's cluster role assignments. Groups receive roles; people
//! receive groups. Workspace administrators and a project's admins manage a project's roles;
//! only workspace administrators may use `*` in rules or assign cluster roles.

use hexabase_command::policy::{self, ProjectAction, WorkspaceAction};
use hexabase_command::rbac::{PolicyRule, PresetRole, RoleRef};
use hexabase_command::values::DnsLabel;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{
    ClusterRoleAssignmentId, GroupId, ProjectId, RoleAssignmentId, RoleId, WorkspaceId,
};
use hexabase_query::workspace::{self as ws_query, AssignmentRow, RoleRow};
use hexabase_query::Page;

use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

/// A role of a project: one of the presets every project has, or a custom one.
pub enum ProjectRole {
    Preset(PresetRole),
    Custom(RoleRow),
}

impl App {
    /// Create a custom role in `project`; the position of its event.
    pub async fn create_role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: &RoleId,
        name: DnsLabel,
        rules: Vec<PolicyRule>,
    ) -> Result<i64> {
        let (ws, access) = self
            .authorize_project(project, op.user(), ProjectAction::Manage)
            .await?;
        let command = WorkspaceCommand::CreateRole {
            project: project.clone(),
            id: id.clone(),
            name,
            rules,
            allow_wildcards: policy::administers_workspace(access),
        };
        let position = self.execute_workspace(&ws, command, op.metadata()).await?;
        Ok(position.unwrap_or_default())
    }

    /// The project's custom roles, by id (the presets are `PresetRole::ALL`).
    pub async fn list_roles(
        &self,
        op: &OpContext,
        project: &ProjectId,
        page: PageRequest<RoleId>,
        position: Option<i64>,
    ) -> Result<Page<RoleRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_project(project, op.user(), ProjectAction::Read)
            .await?;
        let after = page.after.as_ref().map(RoleId::as_str);
        Ok(ws_query::roles(&self.pool, project, after, page.limit).await?)
    }

    /// One role of the project: a preset by name or a custom role by id.
    pub async fn role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        role: &str,
        position: Option<i64>,
    ) -> Result<ProjectRole> {
        self.consistent_workspace(position).await?;
        self.authorize_project(project, op.user(), ProjectAction::Read)
            .await?;
        if let Some(preset) = PresetRole::parse(role) {
            return Ok(ProjectRole::Preset(preset));
        }
        let id = RoleId::parse(role)?;
        ws_query::role(&self.pool, project, id.as_str())
            .await?
            .map(ProjectRole::Custom)
            .ok_or_else(|| Error::not_found("role not found"))
    }

    /// Replace a custom role's rules.
    pub async fn update_role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: RoleId,
        rules: Vec<PolicyRule>,
    ) -> Result<Option<i64>> {
        let (ws, access) = self
            .authorize_project(project, op.user(), ProjectAction::Manage)
            .await?;
        let command = WorkspaceCommand::UpdateRole {
            project: project.clone(),
            id,
            rules,
            allow_wildcards: policy::administers_workspace(access),
        };
        self.execute_workspace(&ws, command, op.metadata()).await
    }

    /// Delete a custom role (not while assignments use it).
    pub async fn delete_role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: RoleId,
    ) -> Result<Option<i64>> {
        let (ws, _) = self
            .authorize_project(project, op.user(), ProjectAction::Manage)
            .await?;
        let command = WorkspaceCommand::DeleteRole {
            project: project.clone(),
            id,
        };
        self.execute_workspace(&ws, command, op.metadata()).await
    }

    /// Give `group` `role` in `project`; the position of its event.
    pub async fn assign_role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: &RoleAssignmentId,
        group: GroupId,
        role: RoleRef,
    ) -> Result<i64> {
        let (ws, _) = self
            .authorize_project(project, op.user(), ProjectAction::Manage)
            .await?;
        let command = WorkspaceCommand::AssignRole {
            project: project.clone(),
            id: id.clone(),
            group,
            role,
        };
        let position = self.execute_workspace(&ws, command, op.metadata()).await?;
        Ok(position.unwrap_or_default())
    }

    pub async fn list_role_assignments(
        &self,
        op: &OpContext,
        project: &ProjectId,
        page: PageRequest<RoleAssignmentId>,
        position: Option<i64>,
    ) -> Result<Page<AssignmentRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_project(project, op.user(), ProjectAction::Read)
            .await?;
        let after = page.after.as_ref().map(RoleAssignmentId::as_str);
        Ok(ws_query::role_assignments(&self.pool, project, after, page.limit).await?)
    }

    pub async fn role_assignment(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: &RoleAssignmentId,
        position: Option<i64>,
    ) -> Result<AssignmentRow> {
        self.consistent_workspace(position).await?;
        self.authorize_project(project, op.user(), ProjectAction::Read)
            .await?;
        ws_query::role_assignment(&self.pool, project, id.as_str())
            .await?
            .ok_or_else(|| Error::not_found("role assignment not found"))
    }

    pub async fn unassign_role(
        &self,
        op: &OpContext,
        project: &ProjectId,
        id: RoleAssignmentId,
    ) -> Result<Option<i64>> {
        let (ws, _) = self
            .authorize_project(project, op.user(), ProjectAction::Manage)
            .await?;
        let command = WorkspaceCommand::UnassignRole {
            project: project.clone(),
            id,
        };
        self.execute_workspace(&ws, command, op.metadata()).await
    }

    /// Give `group` a preset cluster role across the workspace; the position of its event.
    pub async fn assign_cluster_role(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &ClusterRoleAssignmentId,
        group: GroupId,
        role: PresetRole,
    ) -> Result<i64> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::AssignClusterRole {
            id: id.clone(),
            group,
            role,
        };
        let position = self.execute_workspace(ws, command, op.metadata()).await?;
        Ok(position.unwrap_or_default())
    }

    pub async fn list_cluster_role_assignments(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        page: PageRequest<ClusterRoleAssignmentId>,
        position: Option<i64>,
    ) -> Result<Page<AssignmentRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        let after = page.after.as_ref().map(ClusterRoleAssignmentId::as_str);
        Ok(ws_query::cluster_role_assignments(&self.pool, ws, after, page.limit).await?)
    }

    pub async fn cluster_role_assignment(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &ClusterRoleAssignmentId,
        position: Option<i64>,
    ) -> Result<AssignmentRow> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        ws_query::cluster_role_assignment(&self.pool, ws, id.as_str())
            .await?
            .ok_or_else(|| Error::not_found("cluster role assignment not found"))
    }

    pub async fn unassign_cluster_role(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: ClusterRoleAssignmentId,
    ) -> Result<Option<i64>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::UnassignClusterRole { id };
        self.execute_workspace(ws, command, op.metadata()).await
    }
}
