//! `/api/v1/workspaces/{wsId}/projects`: a workspace's projects — each a namespace of its
//! cluster — with an optional parent (a hierarchy, never a cycle), names unique per workspace,
//! and the plan's project limit. Workspace members read them; organization admins and WSAdmins
//! change them.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_command::values::DnsLabel;
use hexabase_command::{ProjectId, WorkspaceId};
use hexabase_query::workspace::ProjectRow;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List};
use super::security::SignedIn;
use super::written::Written;
use crate::error::Error;

#[derive(Tags)]
enum ApiTags {
    /// Projects: namespaces of a workspace's vCluster.
    Projects,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateProject {
    /// The namespace name: a DNS-1123 label, unique in the workspace.
    #[oai(validator(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Text,
    /// A parent project of the same workspace.
    #[oai(validator(pattern = r"^prj-[0-9a-f]{32}$"))]
    pub parent_id: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateProject {
    /// Another project of the workspace to put this one below, or `null` for the top. (A
    /// namespace cannot be renamed.)
    #[oai(validator(pattern = r"^prj-[0-9a-f]{32}$"))]
    pub parent_id: MaybeUndefined<Text>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Project {
    pub id: String,
    pub ws_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProjectRow> for Project {
    fn from(row: ProjectRow) -> Self {
        Self {
            id: row.id,
            ws_id: row.ws_id,
            name: row.name,
            parent_id: row.parent_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedProject {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum ProjectCreated {
    #[oai(status = 201)]
    Created(Json<CreatedProject>, #[oai(header = "Location")] String),
}

fn parent_id(raw: Option<&str>) -> ApiResult<Option<ProjectId>> {
    raw.map(|p| ProjectId::parse(p).map_err(|_| Error::invalid("parent_id", "not a project id")))
        .transpose()
}

/// The workspace and the project a `/workspaces/{wsId}/projects/{projectId}` route names.
fn ids(ws_id: &str, project_id: &str) -> ApiResult<(WorkspaceId, ProjectId)> {
    Ok((WorkspaceId::parse(ws_id)?, ProjectId::parse(project_id)?))
}

pub struct ProjectsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Projects")]
impl ProjectsApi {
    /// Create a project (organization admins, WSAdmins), within the plan's project limit.
    #[oai(
        path = "/workspaces/:ws_id/projects",
        method = "post",
        operation_id = "createProject"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<CreateProject>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<ProjectCreated> {
        let name = DnsLabel::parse("name", &body.name)?;
        let parent = parent_id(body.parent_id.as_deref())?;
        let (ws, id) = (WorkspaceId::parse(&ws_id)?, ProjectId::generate());
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .create_project(&op, &ws, &id, name.clone(), parent.clone())
            .await?;
        Ok(ProjectCreated::Created(
            Json(CreatedProject {
                id: id.to_string(),
                name: name.to_string(),
                parent_id: parent.map(|p| p.to_string()),
                position,
            }),
            format!("/api/v1/workspaces/{ws}/projects/{id}"),
        ))
    }

    /// The workspace's projects, by id (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/projects",
        method = "get",
        operation_id = "listProjects"
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
        #[oai(validator(pattern = r"^prj-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<Project>>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), ProjectId::parse)?;
        Ok(List::of(
            ctx.app
                .list_projects(&ctx.op(&auth), &ws, page, position.0)
                .await?,
        ))
    }

    /// One project (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/projects/:project_id",
        method = "get",
        operation_id = "getProject"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "project_id")] project: Path<String>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Project>> {
        let (ws, id) = ids(&ws_id, &project)?;
        Ok(Json(
            ctx.app
                .project(&ctx.op(&auth), &ws, &id, position.0)
                .await?
                .into(),
        ))
    }

    /// Move the project below another one or to the top (organization admins, WSAdmins; no
    /// cycles).
    #[oai(
        path = "/workspaces/:ws_id/projects/:project_id",
        method = "patch",
        operation_id = "updateProject"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "project_id")] project: Path<String>,
        body: Json<UpdateProject>,
    ) -> ApiResult<Json<Written>> {
        let (ws, id) = ids(&ws_id, &project)?;
        let parent = match &body.parent_id {
            MaybeUndefined::Undefined => {
                return Err(Error::invalid("parent_id", "give `parent_id` (or null)"))
            }
            MaybeUndefined::Null => None,
            MaybeUndefined::Value(p) => parent_id(Some(p))?,
        };
        Ok(Written::at(
            ctx.app
                .move_project(&ctx.op(&auth), &ws, id, parent)
                .await?,
        ))
    }

    /// Delete a project (organization admins, WSAdmins); refused while it has child projects.
    #[oai(
        path = "/workspaces/:ws_id/projects/:project_id",
        method = "delete",
        operation_id = "deleteProject"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "project_id")] project: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let (ws, id) = ids(&ws_id, &project)?;
        Ok(Written::at(
            ctx.app.delete_project(&ctx.op(&auth), &ws, id).await?,
        ))
    }
}
