//! Workspaces: an organization's clusters. A workspace is requested (recorded first by its
//! organization, then by itself), read with its lifecycle status, renamed or moved to another
//! plan, and deleted; its kubeconfig names its API server and the credential plugin.

use hexabase_command::organization::OrganizationCommand;
use hexabase_command::policy::{Decision, OrgAction, WorkspaceAction};
use hexabase_command::values::DisplayName;
use hexabase_command::workspace::{WorkspaceCommand, WorkspaceStatus};
use hexabase_command::{GroupId, OrganizationId, WorkspaceId};
use hexabase_identity::issuer;
use hexabase_query::workspace::{self as ws_query, WorkspaceRow};
use hexabase_query::Page;
use serde_json::Value;

use super::tasks::Progress;
use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

/// A workspace whose request (or deletion) is recorded; the rest happens asynchronously.
pub struct AcceptedWorkspace {
    pub id: WorkspaceId,
    pub org_id: OrganizationId,
    pub name: String,
    pub plan: String,
    pub status: WorkspaceStatus,
    /// Position of the recorded event.
    pub position: i64,
}

impl App {
    /// Request a workspace on `plan` (organization admins): the organization records it first
    /// (deciding whether the caller may), then the workspace itself, with its preset groups.
    pub async fn request_workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        name: DisplayName,
        plan: &str,
    ) -> Result<AcceptedWorkspace> {
        let plan = self.available_plan(plan)?;
        self.require_paid_for(op, org, &plan).await?;
        let ws = WorkspaceId::generate();
        let attach = OrganizationCommand::AttachWorkspace {
            workspace_id: ws.clone(),
            actor: op.user().clone(),
        };
        self.organizations
            .execute_with_metadata(org.as_str(), attach, op.metadata().into_map())
            .await?;
        let request = WorkspaceCommand::RequestWorkspace {
            id: ws.clone(),
            org_id: org.clone(),
            name: name.clone(),
            plan: plan.clone(),
            members_group: GroupId::generate(),
            admins_group: GroupId::generate(),
            actor: op.user().clone(),
        };
        let position = match self.execute_workspace(&ws, request, op.metadata()).await {
            Ok(position) => position.unwrap_or_default(),
            Err(e) => {
                let detach = OrganizationCommand::DetachWorkspace {
                    workspace_id: ws.clone(),
                };
                if let Err(undo) = self
                    .organizations
                    .execute_with_metadata(org.as_str(), detach, op.metadata().into_map())
                    .await
                {
                    tracing::error!(workspace = %ws, error = %undo, "cannot detach a workspace whose request failed");
                }
                return Err(e);
            }
        };
        Ok(AcceptedWorkspace {
            id: ws,
            org_id: org.clone(),
            name: name.to_string(),
            plan,
            status: WorkspaceStatus::Requested,
            position,
        })
    }

    /// The workspaces of `org` the caller may see: all of them for organization admins, the
    /// ones they belong to otherwise.
    pub async fn list_workspaces(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        page: PageRequest<WorkspaceId>,
        position: Option<i64>,
    ) -> Result<Page<WorkspaceRow>> {
        self.consistent_workspace(position).await?;
        let all = match self
            .org_decision(org, op.user(), OrgAction::CreateWorkspace)
            .await?
        {
            Decision::Allowed => true,
            Decision::Forbidden => false,
            Decision::NotFound => return Err(Error::not_found("organization not found")),
        };
        Ok(ws_query::list_visible(
            &self.pool,
            org,
            op.user(),
            all,
            page.after.as_ref(),
            page.limit,
        )
        .await?)
    }

    /// The workspace, and where its provisioning stands while it runs.
    pub async fn workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
        position: Option<i64>,
    ) -> Result<(WorkspaceRow, Option<Progress>)> {
        self.consistent_workspace(position).await?;
        let row = self
            .authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Read)
            .await?;
        let progress = self.provisioning(ws.as_str()).await?;
        Ok((row, progress))
    }

    /// Rename the workspace and/or move it to another available plan.
    pub async fn update_workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
        name: Option<DisplayName>,
        plan: Option<&str>,
    ) -> Result<Option<i64>> {
        let plan = plan.map(|p| self.available_plan(p)).transpose()?;
        if name.is_none() && plan.is_none() {
            return Err(Error::invalid("name", "give `name`, `plan` or both"));
        }
        self.authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Update)
            .await?;
        if let Some(plan) = &plan {
            self.require_paid_for(op, org, plan).await?;
        }
        let mut position = None;
        if let Some(name) = name {
            let command = WorkspaceCommand::RenameWorkspace { name };
            position = self
                .execute_workspace(ws, command, op.metadata())
                .await?
                .or(position);
        }
        if let Some(plan) = plan {
            let command = WorkspaceCommand::ChangePlan { plan };
            position = self
                .execute_workspace(ws, command, op.metadata())
                .await?
                .or(position);
        }
        Ok(position)
    }

    /// Request the workspace's deletion; it is torn down asynchronously.
    pub async fn delete_workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
    ) -> Result<AcceptedWorkspace> {
        let row = self
            .authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Delete)
            .await?;
        let command = WorkspaceCommand::RequestDeletion {
            actor: op.user().clone(),
        };
        let position = self
            .execute_workspace(ws, command, op.metadata())
            .await?
            .unwrap_or_default();
        Ok(AcceptedWorkspace {
            id: ws.clone(),
            org_id: org.clone(),
            name: row.name,
            plan: row.plan,
            status: WorkspaceStatus::Deleting,
            position,
        })
    }

    /// Suspend the workspace's cluster (organization admins): recorded as requested, stopped
    /// asynchronously. Asking again while it is suspending or suspended records nothing.
    pub async fn suspend_workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
        reason: Option<String>,
    ) -> Result<AcceptedWorkspace> {
        let command = WorkspaceCommand::RequestSuspension {
            actor: Some(op.user().clone()),
            reason,
        };
        self.suspend_or_resume(op, org, ws, command, WorkspaceStatus::Suspending)
            .await
    }

    /// Resume a suspended workspace's cluster (organization admins), asynchronously; asking
    /// while it is resuming or running records nothing.
    pub async fn resume_workspace(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
    ) -> Result<AcceptedWorkspace> {
        self.authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Suspend)
            .await?;
        self.require_not_billing_suspended(org).await?;
        let command = WorkspaceCommand::RequestResumption {
            actor: Some(op.user().clone()),
        };
        self.suspend_or_resume(op, org, ws, command, WorkspaceStatus::Resuming)
            .await
    }

    async fn suspend_or_resume(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
        command: WorkspaceCommand,
        asked: WorkspaceStatus,
    ) -> Result<AcceptedWorkspace> {
        let row = self
            .authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Suspend)
            .await?;
        let recorded = self.execute_workspace(ws, command, op.metadata()).await?;
        let (status, position) = match recorded {
            Some(position) => (asked, position),
            // Nothing new: as the workspace is.
            None => (WorkspaceStatus::parse(&row.status).unwrap_or(asked), 0),
        };
        Ok(AcceptedWorkspace {
            id: ws.clone(),
            org_id: org.clone(),
            name: row.name,
            plan: row.plan,
            status,
            position,
        })
    }

    /// A kubeconfig for the workspace's API server, whose user is the credential plugin; a
    /// conflict while the workspace has no API server yet.
    pub async fn kubeconfig(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        ws: &WorkspaceId,
    ) -> Result<Value> {
        let row = self
            .authorize_workspace_of(org, ws, op.user(), WorkspaceAction::Read)
            .await?;
        let (Some(server), Some(ca)) = (row.api_server.as_deref(), row.api_server_ca.as_deref())
        else {
            return Err(Error::conflict(format!(
                "the workspace has no API server yet (status {}); it gets one when provisioning \
                 completes",
                row.status
            )));
        };
        Ok(issuer::kubeconfig(
            &self.settings.http.public_url,
            ws,
            server,
            ca,
        ))
    }
}
