//! A workspace's groups (a hierarchy below `WorkspaceMembers`) and their members. Workspace
//! members read them; organization admins and WSAdmins change them.

use hexabase_command::policy::WorkspaceAction;
use hexabase_command::values::GroupName;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{GroupId, OrganizationId, UserId, WorkspaceId};
use hexabase_query::organization as org_query;
use hexabase_query::workspace::{self as ws_query, GroupMemberRow, GroupRow};
use hexabase_query::Page;

use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

fn group_not_found() -> Error {
    Error::not_found("group not found")
}

impl App {
    /// Create a group below `parent` (default `WorkspaceMembers`); the position of its event.
    pub async fn create_group(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &GroupId,
        name: GroupName,
        parent: Option<GroupId>,
    ) -> Result<i64> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::CreateGroup {
            id: id.clone(),
            name,
            parent,
        };
        let position = self.execute_workspace(ws, command, op.metadata()).await?;
        Ok(position.unwrap_or_default())
    }

    pub async fn list_groups(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        page: PageRequest<GroupId>,
        position: Option<i64>,
    ) -> Result<Page<GroupRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        Ok(ws_query::groups(&self.pool, ws, page.after.as_ref(), page.limit).await?)
    }

    pub async fn group(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &GroupId,
        position: Option<i64>,
    ) -> Result<GroupRow> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        ws_query::group(&self.pool, ws, id)
            .await?
            .ok_or_else(group_not_found)
    }

    /// Rename a group and/or move it below another (not the presets; no cycles).
    pub async fn update_group(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: GroupId,
        name: Option<GroupName>,
        parent: Option<GroupId>,
    ) -> Result<Option<i64>> {
        if name.is_none() && parent.is_none() {
            return Err(Error::invalid("name", "give `name`, `parent_id` or both"));
        }
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::UpdateGroup { id, name, parent };
        self.execute_workspace(ws, command, op.metadata()).await
    }

    /// Delete a group (not the presets, not while it has child groups or assignments).
    pub async fn delete_group(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: GroupId,
    ) -> Result<Option<i64>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::DeleteGroup { id };
        self.execute_workspace(ws, command, op.metadata()).await
    }

    /// Add a member of the workspace's organization to a group.
    pub async fn add_group_member(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        group: GroupId,
        member: UserId,
    ) -> Result<Option<i64>> {
        let row = self
            .authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let org = OrganizationId::parse(&row.org_id)?;
        if org_query::role_of(&self.pool, &org, &member)
            .await?
            .is_none()
        {
            return Err(Error::invalid(
                "user_id",
                "only members of the workspace's organization can join its groups",
            ));
        }
        let command = WorkspaceCommand::AddGroupMember {
            group,
            user: member,
        };
        self.execute_workspace(ws, command, op.metadata()).await
    }

    /// A group's direct members, by user id.
    pub async fn group_members(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        group: &GroupId,
        page: PageRequest<UserId>,
        position: Option<i64>,
    ) -> Result<Page<GroupMemberRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        ws_query::group(&self.pool, ws, group)
            .await?
            .ok_or_else(group_not_found)?;
        Ok(ws_query::group_members(&self.pool, group, page.after.as_ref(), page.limit).await?)
    }

    /// Remove a member from a group (never the last WSAdmin).
    pub async fn remove_group_member(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        group: GroupId,
        member: UserId,
    ) -> Result<Option<i64>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::RemoveGroupMember {
            group,
            user: member,
        };
        self.execute_workspace(ws, command, op.metadata()).await
    }
}
