//! `/api/v1/organizations/{orgId}/workspaces`: thin handlers over the Workspace aggregate and
//! the workspaces read model. Creating a workspace is asynchronous: it is recorded as
//! `Requested` and provisioned later, so `POST` answers 202 with a link to follow.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hexabase_command::organization::{Organization, OrganizationCommand};
use hexabase_command::policy::{self, Decision, OrgAction, WorkspaceAccess, WorkspaceAction};
use hexabase_command::store::with_position;
use hexabase_command::values::DisplayName;
use hexabase_command::workspace::{Workspace, WorkspaceCommand, WorkspaceError};
use hexabase_command::{CommandMetadata, GroupId, OrganizationId, UserId, WorkspaceId};
use hexabase_projector::workspace as ws_projection;
use hexabase_query::organization as org_query;
use hexabase_query::workspace::{self as ws_query, WorkspaceRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::page;
use super::security::SignedIn;

#[derive(Tags)]
enum ApiTags {
    /// Workspaces: an organization's vClusters.
    Workspaces,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Display name, 1–100 characters.
    #[oai(validator(max_length = 200))]
    pub name: String,
    /// A plan id from `GET /api/v1/plans`.
    #[oai(validator(max_length = 64))]
    pub plan: String,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateWorkspace {
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    #[oai(validator(max_length = 64))]
    pub plan: Option<String>,
}

#[derive(Debug, Object)]
pub struct WorkspaceLinks {
    /// Where to follow the workspace's progress.
    #[oai(rename = "self")]
    pub self_: String,
}

#[derive(Debug, Object)]
pub struct WorkspaceView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub plan: String,
    /// `Requested`, `Provisioning`, `Ready`, `Suspended`, `Deleting`, `Deleted` or `Failed`.
    pub status: String,
    /// Why it failed, when `status` is `Failed`.
    pub status_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: WorkspaceLinks,
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
        }
    }
}

#[derive(Debug, Object)]
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

#[derive(Debug, Object)]
pub struct WorkspaceList {
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct UpdatedWorkspace {
    pub position: Option<i64>,
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

impl From<AggregateError<WorkspaceError>> for ApiError {
    fn from(e: AggregateError<WorkspaceError>) -> Self {
        match e {
            AggregateError::UserError(e) => match e {
                WorkspaceError::NotFound
                | WorkspaceError::GroupNotFound(_)
                | WorkspaceError::ProjectNotFound(_)
                | WorkspaceError::NotInGroup(_)
                | WorkspaceError::RoleNotFound(_)
                | WorkspaceError::AssignmentNotFound(_)
                | WorkspaceError::ClusterAssignmentNotFound(_) => Self::not_found(e.to_string()),
                WorkspaceError::InvalidEndpoint => Self::invalid("server", e.to_string()),
                WorkspaceError::InvalidRules(message) => Self::invalid("rules", message),
                WorkspaceError::AlreadyExists
                | WorkspaceError::BeingDeleted
                | WorkspaceError::GroupNameTaken(_)
                | WorkspaceError::PresetGroup(_)
                | WorkspaceError::GroupHasChildren(_)
                | WorkspaceError::GroupCycle
                | WorkspaceError::AlreadyInGroup(_)
                | WorkspaceError::LastWsAdmin
                | WorkspaceError::ProjectNameTaken(_)
                | WorkspaceError::ProjectLimit(_)
                | WorkspaceError::ProjectHasChildren(_)
                | WorkspaceError::ProjectCycle
                | WorkspaceError::RoleNameTaken(_)
                | WorkspaceError::InUse(_)
                | WorkspaceError::AlreadyAssigned(_) => Self::conflict(e.to_string()),
            },
            AggregateError::AggregateConflict => {
                Self::conflict("the workspace was changed concurrently; re-read it and retry")
            }
            other => Self::command_failed(other),
        }
    }
}

/// A plan new workspaces may choose.
fn plan(ctx: &Ctx, id: &str) -> ApiResult<String> {
    match ctx.state.settings.plans.get(id) {
        Some(plan) if plan.available => Ok(id.to_owned()),
        _ => Err(ApiError::invalid(
            "plan",
            format!("`{id}` is not an available plan (see GET /api/v1/plans)"),
        )),
    }
}

fn ids(org_id: &str, ws_id: &str) -> ApiResult<(OrganizationId, WorkspaceId)> {
    Ok((OrganizationId::parse(org_id)?, WorkspaceId::parse(ws_id)?))
}

/// The workspace as the caller may see it, checked against `action` by the policy.
async fn authorized(
    ctx: &Ctx,
    org: &OrganizationId,
    ws: &WorkspaceId,
    user: &UserId,
    action: WorkspaceAction,
) -> ApiResult<WorkspaceRow> {
    let (row, access) = ws_query::get_with_access(&ctx.state.pool, ws, user)
        .await?
        .filter(|(row, _)| row.org_id == org.as_str())
        .ok_or_else(workspace_not_found)?;
    allow(row, access, action)
}

pub(super) async fn execute(
    ctx: &Ctx,
    ws: &WorkspaceId,
    command: WorkspaceCommand,
    metadata: CommandMetadata,
) -> ApiResult<Option<i64>> {
    let (result, position) = with_position(ctx.state.workspaces.execute_with_metadata(
        ws.as_str(),
        command,
        metadata.into_map(),
    ))
    .await;
    result?;
    Ok(position)
}

/// The workspace of a `/workspaces/{wsId}/…` route, if the caller may do `action` in it.
pub(super) async fn scope(
    ctx: &Ctx,
    ws_id: &str,
    user: &UserId,
    action: WorkspaceAction,
) -> ApiResult<(WorkspaceId, WorkspaceRow)> {
    let ws = WorkspaceId::parse(ws_id)?;
    let (row, access) = ws_query::get_with_access(&ctx.state.pool, &ws, user)
        .await?
        .ok_or_else(workspace_not_found)?;
    let row = allow(row, access, action)?;
    Ok((ws, row))
}

fn workspace_not_found() -> ApiError {
    ApiError::not_found("workspace not found")
}

/// `row` if the policy lets the caller with `access` do `action` in the workspace.
fn allow(
    row: WorkspaceRow,
    access: WorkspaceAccess,
    action: WorkspaceAction,
) -> ApiResult<WorkspaceRow> {
    match policy::decide_workspace(access, action) {
        Decision::Allowed => Ok(row),
        Decision::Forbidden => Err(ApiError::forbidden(
            "only organization admins and the workspace's WSAdmins may do this",
        )),
        Decision::NotFound => Err(workspace_not_found()),
    }
}

/// When the caller asked to read its own write: wait for the workspace projection to reach
/// `position`, and for the organization's member list (which authorizes workspace reads) to
/// reflect everything recorded up to there.
pub(super) async fn consistent(ctx: &Ctx, position: Option<i64>) -> ApiResult<()> {
    let Some(position) = position else {
        return Ok(());
    };
    let event = ctx.state.wait_for(ws_projection::NAME, position).await?;
    let org = if event.aggregate_type == Organization::TYPE {
        OrganizationId::parse(&event.aggregate_id).ok()
    } else if event.aggregate_type == Workspace::TYPE {
        let ws = WorkspaceId::parse(&event.aggregate_id)?;
        ws_query::get_by_id(&ctx.state.pool, &ws)
            .await?
            .and_then(|row| OrganizationId::parse(&row.org_id).ok())
    } else {
        None
    };
    if let Some(org) = org {
        ctx.state.wait_for_organization(&org, position).await?;
    }
    Ok(())
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
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<WorkspaceAccepted> {
        let org = OrganizationId::parse(&org_id)?;
        let name = DisplayName::parse("name", &body.name)?;
        let plan = plan(&ctx, &body.plan)?;
        let actor = auth.principal().user.clone();
        let ws = WorkspaceId::generate();
        // The organization records the workspace first (and decides whether the caller may).
        let attach = OrganizationCommand::AttachWorkspace {
            workspace_id: ws.clone(),
            actor: actor.clone(),
        };
        let metadata = ctx.metadata(auth.principal());
        ctx.state
            .organizations
            .execute_with_metadata(org.as_str(), attach, metadata.clone().into_map())
            .await?;
        let request = WorkspaceCommand::RequestWorkspace {
            id: ws.clone(),
            org_id: org.clone(),
            name: name.clone(),
            plan: plan.clone(),
            members_group: GroupId::generate(),
            admins_group: GroupId::generate(),
            actor,
        };
        let position = match execute(&ctx, &ws, request, metadata.clone()).await {
            Ok(position) => position.unwrap_or_default(),
            Err(e) => {
                let detach = OrganizationCommand::DetachWorkspace {
                    workspace_id: ws.clone(),
                };
                if let Err(undo) = ctx
                    .state
                    .organizations
                    .execute_with_metadata(org.as_str(), detach, metadata.into_map())
                    .await
                {
                    tracing::error!(workspace = %ws, error = %undo, "cannot detach a workspace whose request failed");
                }
                return Err(e);
            }
        };
        let location = link(org.as_str(), ws.as_str());
        Ok(WorkspaceAccepted::Accepted(
            Json(AcceptedWorkspace {
                id: ws.to_string(),
                org_id: org.to_string(),
                name: name.to_string(),
                plan,
                status: "Requested".into(),
                position,
                links: WorkspaceLinks {
                    self_: location.clone(),
                },
            }),
            location,
        ))
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
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<WorkspaceList>> {
        consistent(&ctx, position.0).await?;
        let org = OrganizationId::parse(&org_id)?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), WorkspaceId::parse)?;
        let user = &auth.principal().user;
        let role = org_query::role_of(&ctx.state.pool, &org, user).await?;
        let all = match policy::decide(role, OrgAction::CreateWorkspace) {
            Decision::Allowed => true,
            Decision::Forbidden => false,
            Decision::NotFound => return Err(ApiError::not_found("organization not found")),
        };
        let rows =
            ws_query::list_visible(&ctx.state.pool, &org, user, all, after.as_ref(), limit).await?;
        Ok(Json(WorkspaceList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
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
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<WorkspaceView>> {
        consistent(&ctx, position.0).await?;
        let (org, ws) = ids(&org_id, &ws_id)?;
        let row = authorized(
            &ctx,
            &org,
            &ws,
            &auth.principal().user,
            WorkspaceAction::Read,
        )
        .await?;
        Ok(Json(row.into()))
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
    ) -> ApiResult<Json<UpdatedWorkspace>> {
        let (org, ws) = ids(&org_id, &ws_id)?;
        let name = body
            .name
            .as_deref()
            .map(|n| DisplayName::parse("name", n))
            .transpose()?;
        let new_plan = body.plan.as_deref().map(|p| plan(&ctx, p)).transpose()?;
        if name.is_none() && new_plan.is_none() {
            return Err(ApiError::invalid("name", "give `name`, `plan` or both"));
        }
        authorized(
            &ctx,
            &org,
            &ws,
            &auth.principal().user,
            WorkspaceAction::Update,
        )
        .await?;
        let mut position = None;
        if let Some(name) = name {
            let command = WorkspaceCommand::RenameWorkspace { name };
            position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
                .await?
                .or(position);
        }
        if let Some(plan) = new_plan {
            let command = WorkspaceCommand::ChangePlan { plan };
            position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
                .await?
                .or(position);
        }
        Ok(Json(UpdatedWorkspace { position }))
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
        let row = authorized(
            &ctx,
            &org,
            &ws,
            &auth.principal().user,
            WorkspaceAction::Delete,
        )
        .await?;
        let command = WorkspaceCommand::RequestDeletion {
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
            .await?
            .unwrap_or_default();
        let location = link(org.as_str(), ws.as_str());
        Ok(WorkspaceAccepted::Accepted(
            Json(AcceptedWorkspace {
                id: row.id,
                org_id: row.org_id,
                name: row.name,
                plan: row.plan,
                status: "Deleting".into(),
                position,
                links: WorkspaceLinks {
                    self_: location.clone(),
                },
            }),
            location,
        ))
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
        let row = authorized(
            &ctx,
            &org,
            &ws,
            &auth.principal().user,
            WorkspaceAction::Read,
        )
        .await?;
        let (Some(server), Some(ca)) = (row.api_server.as_deref(), row.api_server_ca.as_deref())
        else {
            return Err(ApiError::conflict(format!(
                "the workspace has no API server yet (status {}); it gets one when provisioning \
                 completes",
                row.status
            )));
        };
        Ok(Json(crate::oidc::kubeconfig(
            &ctx.state.settings.http.public_url,
            &ws,
            server,
            ca,
        )))
    }
}
