//! `/api/v1/organizations/{orgId}/workspaces`: an organization's workspaces. Creating one is
//! asynchronous: it is recorded as `Requested` and provisioned later, so `POST` answers 202
//! with a link to follow.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_command::values::DisplayName;
use hexabase_command::{OrganizationId, WorkspaceId};
use hexabase_query::workspace::WorkspaceRow;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List};
use super::security::SignedIn;
use super::written::Written;
use crate::app;
use crate::app::tasks::Progress;

#[derive(Tags)]
enum ApiTags {
    /// Workspaces: an organization's vClusters.
    Workspaces,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateWorkspace {
    /// Display name, 1–100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
    /// A plan id from `GET /api/v1/plans`.
    #[oai(validator(max_length = 64))]
    pub plan: Text,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateWorkspace {
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<Text>,
    #[oai(validator(max_length = 64))]
    pub plan: Option<Text>,
}

/// Why the workspace is suspended (shown as its `status_reason`).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct SuspendWorkspace {
    #[oai(validator(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WorkspaceLinks {
    /// Where to follow the workspace's progress.
    #[oai(rename = "self")]
    pub self_: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WorkspaceView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub plan: String,
    /// `Requested`, `Provisioning`, `Ready`, `Suspending`, `Suspended`, `Resuming`, `Deleting`,
    /// `Deleted` or `Failed`.
    pub status: String,
    /// Why it failed, when `status` is `Failed`.
    pub status_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// While it provisions (one workspace, not lists): the step, its attempts, the last error.
    #[oai(skip_serializing_if_is_none)]
    pub progress: Option<WorkspaceProgress>,
    pub links: WorkspaceLinks,
}

/// Where a workspace's provisioning stands.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WorkspaceProgress {
    /// The provisioning task (`GET /api/v1/tasks/{taskId}` has its steps).
    pub task_id: String,
    /// `running`, or `unwinding` once a step failed for good.
    pub state: String,
    /// The step it is at (or undoing).
    pub step: Option<String>,
    /// Attempts of that step so far.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl From<Progress> for WorkspaceProgress {
    fn from(progress: Progress) -> Self {
        Self {
            task_id: progress.task.id,
            state: progress.task.state,
            step: progress.step,
            attempts: progress.task.attempts,
            next_attempt_at: progress.task.next_attempt_at,
            last_error: progress.task.last_error,
        }
    }
}

impl From<WorkspaceRow> for WorkspaceView {
    fn from(row: WorkspaceRow) -> Self {
        Self {
            links: WorkspaceLinks {
                self_: link(&row.org_id, &row.id),
            },
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            plan: row.plan,
            status: row.status,
            status_reason: row.status_reason,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            progress: None,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AcceptedWorkspace {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub plan: String,
    /// `Requested` (or `Deleting`): the change is recorded; provisioning follows.
    pub status: String,
    /// Position of the recorded event (pass as `position` to read it back).
    pub position: i64,
    pub links: WorkspaceLinks,
}

#[derive(ApiResponse)]
pub enum WorkspaceAccepted {
    /// Recorded; the workspace is provisioned (or torn down) asynchronously.
    #[oai(status = 202)]
    Accepted(Json<AcceptedWorkspace>, #[oai(header = "Location")] String),
}

fn link(org: &str, ws: &str) -> String {
    format!("/api/v1/organizations/{org}/workspaces/{ws}")
}

impl From<app::AcceptedWorkspace> for WorkspaceAccepted {
    fn from(accepted: app::AcceptedWorkspace) -> Self {
        let location = link(accepted.org_id.as_str(), accepted.id.as_str());
        Self::Accepted(
            Json(AcceptedWorkspace {
                id: accepted.id.to_string(),
                org_id: accepted.org_id.to_string(),
                name: accepted.name,
                plan: accepted.plan,
                status: accepted.status.as_str().to_owned(),
                position: accepted.position,
                links: WorkspaceLinks {
                    self_: location.clone(),
                },
            }),
            location,
        )
    }
}

fn ids(org_id: &str, ws_id: &str) -> ApiResult<(OrganizationId, WorkspaceId)> {
    Ok((OrganizationId::parse(org_id)?, WorkspaceId::parse(ws_id)?))
}

pub struct WorkspacesApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Workspaces")]
impl WorkspacesApi {
    /// Request a workspace (organization admins). Answers 202 at once with the workspace in
    /// state `Requested` and a link to follow; provisioning happens asynchronously.
    #[oai(
        path = "/organizations/:org_id/workspaces",
        method = "post",
        operation_id = "createWorkspace"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        body: Json<CreateWorkspace>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<WorkspaceAccepted> {
        let org = OrganizationId::parse(&org_id)?;
        let name = DisplayName::parse("name", &body.name)?;
        let op = ctx.op(&auth);
        Ok(ctx
            .app
            .request_workspace(&op, &org, name, &body.plan)
            .await?
            .into())
    }

    /// The workspaces of the organization the caller may see (all of them for organization
    /// admins, the ones they belong to otherwise), by id.
    #[oai(
        path = "/organizations/:org_id/workspaces",
        method = "get",
        operation_id = "listWorkspaces"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^ws-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<WorkspaceView>>> {
        let org = OrganizationId::parse(&org_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), WorkspaceId::parse)?;
        let rows = ctx
            .app
            .list_workspaces(&ctx.op(&auth), &org, page, position.0)
            .await?;
        Ok(List::of(rows))
    }

    /// One workspace, with its lifecycle status.
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id",
        method = "get",
        operation_id = "getWorkspace"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<WorkspaceView>> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        let op = ctx.op(&auth);
        let (row, progress) = ctx.app.workspace(&op, &org, &ws, position.0).await?;
        let mut view = WorkspaceView::from(row);
        view.progress = progress.map(Into::into);
        Ok(Json(view))
    }

    /// Rename the workspace or change its plan (organization admins, WSAdmins).
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id",
        method = "patch",
        operation_id = "updateWorkspace"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<UpdateWorkspace>,
    ) -> ApiResult<Json<Written>> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        let name = body
            .name
            .as_deref()
            .map(|n| DisplayName::parse("name", n))
            .transpose()?;
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .update_workspace(&op, &org, &ws, name, body.plan.as_deref())
            .await?;
        Ok(Written::at(position))
    }

    /// Delete the workspace (organization admins, WSAdmins): recorded as requested and torn
    /// down asynchronously; answers 202 with the workspace in state `Deleting`.
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id",
        method = "delete",
        operation_id = "deleteWorkspace"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
    ) -> ApiResult<WorkspaceAccepted> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        Ok(ctx
            .app
            .delete_workspace(&ctx.op(&auth), &org, &ws)
            .await?
            .into())
    }

    /// Suspend the workspace (organization admins): its cluster's control plane is stopped
    /// and its workloads removed, its data and endpoint kept. Answers 202 with the workspace
    /// `Suspending` (`Suspended` once done); 409 unless it is `Ready` (or already suspending
    /// or suspended, which changes nothing).
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id/suspend",
        method = "post",
        operation_id = "suspendWorkspace"
    )]
    async fn suspend(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<SuspendWorkspace>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<WorkspaceAccepted> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        let reason = body.0.reason.map(|r| r.trim().to_owned());
        Ok(ctx
            .app
            .suspend_workspace(&ctx.op(&auth), &org, &ws, reason)
            .await?
            .into())
    }

    /// Resume a suspended workspace (organization admins): its cluster starts again with the
    /// same data and endpoint. Answers 202 with the workspace `Resuming` (`Ready` once its API
    /// server answers); 409 unless it is suspending or suspended (or already running).
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id/resume",
        method = "post",
        operation_id = "resumeWorkspace"
    )]
    async fn resume(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<WorkspaceAccepted> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        Ok(ctx
            .app
            .resume_workspace(&ctx.op(&auth), &org, &ws)
            .await?
            .into())
    }

    /// A kubeconfig for the workspace's vCluster (members of the workspace): the cluster is the
    /// vCluster's API server and CA; the user is the `hexabase kubectl-credential` exec plugin,
    /// which fetches short-lived workspace tokens — never a certificate or a static token. 409
    /// while the workspace has no API server yet.
    #[oai(
        path = "/organizations/:org_id/workspaces/:ws_id/kubeconfig",
        method = "get",
        operation_id = "getWorkspaceKubeconfig"
    )]
    async fn kubeconfig(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "ws_id")] ws_id: Path<String>,
    ) -> ApiResult<Json<serde_json::Value>> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        Ok(Json(ctx.app.kubeconfig(&ctx.op(&auth), &org, &ws).await?))
    }
}
