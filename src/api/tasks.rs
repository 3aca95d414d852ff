//! `/api/v1/workspaces/{wsId}/tasks` and `/api/v1/tasks/{taskId}`: the sagas that provision,
//! reconcile and delete a workspace's cluster, with their steps, attempts and errors.

use chrono::{DateTime, Utc};
use hexabase_command::{TaskId, WorkspaceId};
use hexabase_sagas::engine::log::{SagaRow, StepRow};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List, Order};
use super::security::SignedIn;
use crate::app::tasks::TaskDetail;

#[derive(Tags)]
enum ApiTags {
    /// Tasks: what the control plane does to a workspace's cluster, step by step.
    Tasks,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Task {
    pub id: String,
    /// `workspace.provision`, `workspace.reconcile`, `workspace.delete`.
    pub kind: String,
    pub workspace_id: String,
    /// `running`, `unwinding` (a step failed for good; the finished ones are being undone),
    /// `done` or `failed`.
    pub state: String,
    /// What started it (`event:<position>` or `maintenance:<period>`).
    pub trigger: String,
    /// Attempts of the current step so far.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Why it is unwinding or failed.
    pub failure: Option<String>,
    pub failed_step: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<SagaRow> for Task {
    fn from(row: SagaRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            workspace_id: row.aggregate_id,
            state: row.state,
            trigger: row.trigger,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            failure: row.failure,
            failed_step: row.failed_step,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TaskStep {
    pub name: String,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was undone (the task unwound).
    pub undone_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<StepRow> for TaskStep {
    fn from(row: StepRow) -> Self {
        Self {
            name: row.name,
            attempts: row.attempts,
            started_at: row.started_at,
            finished_at: row.finished_at,
            undone_at: row.undone_at,
            last_error: row.last_error,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TaskView {
    #[oai(flatten)]
    pub task: Task,
    /// The steps it has reached, in order.
    pub steps: Vec<TaskStep>,
}

impl From<TaskDetail> for TaskView {
    fn from(detail: TaskDetail) -> Self {
        Self {
            task: detail.task.into(),
            steps: detail.steps.into_iter().map(Into::into).collect(),
        }
    }
}

pub struct TasksApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Tasks")]
impl TasksApi {
    /// The workspace's tasks, oldest first (whoever may read the workspace).
    #[oai(
        path = "/workspaces/:ws_id/tasks",
        method = "get",
        operation_id = "listTasks"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^task-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// `oldest` (default) or `newest` first.
        order: Query<Option<Order>>,
    ) -> ApiResult<Json<List<Task>>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), TaskId::parse)?;
        let newest_first = order.0 == Some(Order::Newest);
        Ok(List::of(
            ctx.app
                .list_tasks(&ctx.op(&auth), &ws, page, newest_first)
                .await?,
        ))
    }

    /// One task with its steps.
    #[oai(path = "/tasks/:task_id", method = "get", operation_id = "getTask")]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "task_id")] task_id: Path<String>,
    ) -> ApiResult<Json<TaskView>> {
        let id = TaskId::parse(&task_id)?;
        Ok(Json(ctx.app.task(&ctx.op(&auth), &id).await?.into()))
    }
}
