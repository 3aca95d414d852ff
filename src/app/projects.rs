//! A workspace's projects — each a namespace of its cluster — with an optional parent (a
//! hierarchy, never a cycle), names unique per workspace, and the plan's project limit.

use hexabase_command::policy::WorkspaceAction;
use hexabase_command::values::DnsLabel;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{ProjectId, WorkspaceId};
use hexabase_query::workspace::{self as ws_query, ProjectRow};
use hexabase_query::Page;

use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

impl App {
    /// Create a project within the plan's project limit; the position of its event.
    pub async fn create_project(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &ProjectId,
        name: DnsLabel,
        parent: Option<ProjectId>,
    ) -> Result<i64> {
        let row = self
            .authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let max_projects = self
            .settings
            .plans
            .get(&row.plan)
            .map(|plan| plan.max_projects)
            .unwrap_or(0);
        self.register_project(id, ws).await?;
        let command = WorkspaceCommand::CreateProject {
            id: id.clone(),
            name,
            parent,
            max_projects,
        };
        match self.execute_workspace(ws, command, op.metadata()).await {
            Ok(position) => Ok(position.unwrap_or_default()),
            Err(e) => {
                self.unregister_project(id).await;
                Err(e)
            }
        }
    }

    /// Record which workspace a new project belongs to (before its first event), so routes
    /// that name only the project find its workspace.
    async fn register_project(&self, project: &ProjectId, ws: &WorkspaceId) -> Result<()> {
        sqlx::query("INSERT INTO project_directory (project_id, ws_id) VALUES ($1, $2)")
            .bind(project.as_str())
            .bind(ws.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unregister_project(&self, project: &ProjectId) {
        let removed = sqlx::query("DELETE FROM project_directory WHERE project_id = $1")
            .bind(project.as_str())
            .execute(&self.pool)
            .await;
        if let Err(e) = removed {
            tracing::error!(project = %project, error = %e, "cannot forget a refused project");
        }
    }

    pub async fn list_projects(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        page: PageRequest<ProjectId>,
        position: Option<i64>,
    ) -> Result<Page<ProjectRow>> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        Ok(ws_query::projects(&self.pool, ws, page.after.as_ref(), page.limit).await?)
    }

    pub async fn project(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: &ProjectId,
        position: Option<i64>,
    ) -> Result<ProjectRow> {
        self.consistent_workspace(position).await?;
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        ws_query::project(&self.pool, ws, id)
            .await?
            .ok_or_else(|| Error::not_found("project not found"))
    }

    /// Move a project below another one (`Some`) or to the top (`None`).
    pub async fn move_project(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: ProjectId,
        parent: Option<ProjectId>,
    ) -> Result<Option<i64>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::MoveProject { id, parent };
        self.execute_workspace(ws, command, op.metadata()).await
    }

    /// Delete a project (not while it has child projects), with its roles and assignments.
    pub async fn delete_project(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        id: ProjectId,
    ) -> Result<Option<i64>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Update)
            .await?;
        let command = WorkspaceCommand::DeleteProject { id };
        self.execute_workspace(ws, command, op.metadata()).await
    }
}
