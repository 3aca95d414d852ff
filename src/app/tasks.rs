//! A workspace's tasks — the sagas that provision, reconcile and delete its cluster — as the
//! saga log has them: kind, state, the step it is at, attempts, the last error, each step's
//! times. Whoever may read the workspace may read its tasks (404 to others, as elsewhere).

use hexabase_command::policy::WorkspaceAction;
use hexabase_command::{TaskId, WorkspaceId};
use hexabase_query::Page;
use hexabase_sagas::engine::log::{self, SagaRow, StepRow};
use hexabase_sagas::workspace::PROVISION;

use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

/// A task with the steps it has reached.
pub struct TaskDetail {
    pub task: SagaRow,
    pub steps: Vec<StepRow>,
}

/// Where a workspace's provisioning stands while it runs.
pub struct Progress {
    pub task: SagaRow,
    /// The step it is at (or undoing).
    pub step: Option<String>,
}

impl App {
    /// The workspace's tasks, oldest first (or newest first).
    pub async fn list_tasks(
        &self,
        op: &OpContext,
        ws: &WorkspaceId,
        page: PageRequest<TaskId>,
        newest_first: bool,
    ) -> Result<Page<SagaRow>> {
        self.authorize_workspace(ws, op.user(), WorkspaceAction::Read)
            .await?;
        let after = page.after.as_ref().map(TaskId::as_str);
        let mut rows =
            log::of_aggregate(&self.pool, ws.as_str(), after, page.limit, newest_first).await?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        Ok(Page { items: rows, next })
    }

    /// One task and its steps.
    pub async fn task(&self, op: &OpContext, id: &TaskId) -> Result<TaskDetail> {
        let not_found = || Error::not_found("task not found");
        let task = log::get(&self.pool, id.as_str())
            .await?
            .ok_or_else(not_found)?;
        let ws = WorkspaceId::parse(&task.aggregate_id).map_err(|_| not_found())?;
        self.authorize_workspace(&ws, op.user(), WorkspaceAction::Read)
            .await
            .map_err(|e| match e {
                Error::Forbidden(_) | Error::NotFound(_) => not_found(),
                other => other,
            })?;
        let steps = log::steps(&self.pool, id.as_str()).await?;
        Ok(TaskDetail { task, steps })
    }

    /// The workspace's running provisioning, if any.
    pub(super) async fn provisioning(&self, ws: &str) -> Result<Option<Progress>> {
        let Some(task) = log::running(&self.pool, PROVISION, ws).await? else {
            return Ok(None);
        };
        let steps = log::steps(&self.pool, &task.id).await?;
        let at = if task.state == "unwinding" {
            task.step - 1
        } else {
            task.step
        };
        let step = steps.into_iter().find(|s| s.step == at).map(|s| s.name);
        Ok(Some(Progress { task, step }))
    }
}
