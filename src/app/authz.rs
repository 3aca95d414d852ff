//! Who may do what, decided by the one policy (`hexabase_command::policy`) on the caller's
//! access as the read models know it: an organization (the caller's role), a workspace (org
//! admin, WSAdmin, member of its groups), a project (its admins too). What the caller may not
//! know exists answers 404; what they may see but not do, 403.

use cqrs_es::Aggregate;
use cqrs_es::AggregateError;
use hexabase_command::organization::{Organization, OrganizationCommand};
use hexabase_command::policy::{
    self, Decision, OrgAction, ProjectAction, WorkspaceAccess, WorkspaceAction,
};
use hexabase_command::store::{head_position, with_position};
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{CommandMetadata, OrganizationId, ProjectId, UserId, WorkspaceId};
use hexabase_query::organization as org_query;
use hexabase_query::workspace::{self as ws_query, WorkspaceRow};

use super::App;
use crate::error::{Error, Result};

/// Times a workspace command is decided again after losing a race to another event.
const CONFLICT_ATTEMPTS: u32 = 4;

pub(super) fn workspace_not_found() -> Error {
    Error::not_found("workspace not found")
}

/// `row` if the policy lets the caller with `access` do `action` in the workspace.
fn allow(
    row: WorkspaceRow,
    access: WorkspaceAccess,
    action: WorkspaceAction,
) -> Result<WorkspaceRow> {
    match policy::decide_workspace(access, action) {
        Decision::Allowed => Ok(row),
        Decision::Forbidden => Err(Error::forbidden(
            "only organization admins and the workspace's WSAdmins may do this",
        )),
        Decision::NotFound => Err(workspace_not_found()),
    }
}

impl App {
    /// Whether the caller's role in `org` allows `action`.
    pub(super) async fn authorize_org(
        &self,
        org: &OrganizationId,
        user: &UserId,
        action: OrgAction,
    ) -> Result<()> {
        match self.org_decision(org, user, action).await? {
            Decision::Allowed => Ok(()),
            Decision::Forbidden => Err(Error::forbidden("only organization admins may do this")),
            Decision::NotFound => Err(Error::not_found("organization not found")),
        }
    }

    /// The policy's decision on the caller's role in `org`.
    pub(super) async fn org_decision(
        &self,
        org: &OrganizationId,
        user: &UserId,
        action: OrgAction,
    ) -> Result<Decision> {
        let role = org_query::role_of(&self.pool, org, user).await?;
        Ok(policy::decide(role, action))
    }

    /// The workspace `ws` of organization `org`, if the caller may do `action` in it.
    pub(super) async fn authorize_workspace_of(
        &self,
        org: &OrganizationId,
        ws: &WorkspaceId,
        user: &UserId,
        action: WorkspaceAction,
    ) -> Result<WorkspaceRow> {
        let (row, access) = ws_query::get_with_access(&self.pool, ws, user)
            .await?
            .filter(|(row, _)| row.org_id == org.as_str())
            .ok_or_else(workspace_not_found)?;
        allow(row, access, action)
    }

    /// The workspace `ws` (of whichever organization), if the caller may do `action` in it.
    pub(super) async fn authorize_workspace(
        &self,
        ws: &WorkspaceId,
        user: &UserId,
        action: WorkspaceAction,
    ) -> Result<WorkspaceRow> {
        let (row, access) = ws_query::get_with_access(&self.pool, ws, user)
            .await?
            .ok_or_else(workspace_not_found)?;
        allow(row, access, action)
    }

    /// The workspace of `project` and the caller's access to it, if the caller may do `action`
    /// in the project (workspace administrators and, to manage, the project's admins).
    pub(super) async fn authorize_project(
        &self,
        project: &ProjectId,
        user: &UserId,
        action: ProjectAction,
    ) -> Result<(WorkspaceId, WorkspaceAccess)> {
        let not_found = || Error::not_found("project not found");
        let pool = &self.pool;
        let ws_id = ws_query::project_workspace(pool, project)
            .await?
            .ok_or_else(not_found)?;
        let ws = WorkspaceId::parse(&ws_id).map_err(|_| not_found())?;
        let (_, access) = ws_query::get_with_access(pool, &ws, user)
            .await?
            .ok_or_else(not_found)?;
        let project_admin = action == ProjectAction::Manage
            && !policy::administers_workspace(access)
            && ws_query::project_admin(pool, &ws, project, user).await?;
        match policy::decide_project(access, project_admin, action) {
            Decision::Allowed => {}
            Decision::Forbidden => {
                return Err(Error::forbidden(
                    "only organization admins, WSAdmins and the project's admins may do this",
                ))
            }
            Decision::NotFound => return Err(not_found()),
        }
        ws_query::project(pool, &ws, project)
            .await?
            .ok_or_else(not_found)?;
        Ok((ws, access))
    }

    /// Run a command on workspace `ws`; the position of the last event it recorded. The
    /// workspace's sagas record on it too: a command that lost the race to one of their
    /// events is decided again on the state that includes it (as a client re-reading and
    /// retrying would), a few times.
    pub(super) async fn execute_workspace(
        &self,
        ws: &WorkspaceId,
        command: WorkspaceCommand,
        metadata: CommandMetadata,
    ) -> Result<Option<i64>> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (result, position) = with_position(self.workspaces.execute_with_metadata(
                ws.as_str(),
                command.clone(),
                metadata.clone().into_map(),
            ))
            .await;
            match result {
                Err(AggregateError::AggregateConflict) if attempts < CONFLICT_ATTEMPTS => continue,
                result => {
                    result?;
                    return Ok(position);
                }
            }
        }
    }

    /// Run a command on organization `org`; the position of the last event it recorded, or of
    /// the organization's latest event when the command changed nothing.
    pub(super) async fn execute_organization(
        &self,
        org: &OrganizationId,
        command: OrganizationCommand,
        metadata: CommandMetadata,
    ) -> Result<Option<i64>> {
        let (result, position) = with_position(self.organizations.execute_with_metadata(
            org.as_str(),
            command,
            metadata.into_map(),
        ))
        .await;
        result?;
        match position {
            Some(position) => Ok(Some(position)),
            None => Ok(head_position(&self.pool, Organization::TYPE, org.as_str()).await?),
        }
    }
}
