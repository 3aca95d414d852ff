//! `/api/v1/workspaces/{wsId}/projects`: a workspace's projects — each a namespace of its
//! vCluster — with an optional parent (a hierarchy, never a cycle), names unique per workspace,
//! and the plan's project limit. Workspace members read them; organization admins and WSAdmins
//! change them.

use chrono::{DateTime, Utc};
use hexabase_command::policy::WorkspaceAction;
use hexabase_command::values::DnsLabel;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{ProjectId, WorkspaceId};
use hexabase_query::workspace::{self as ws_query, ProjectRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::page;
use super::security::SignedIn;
use super::workspace::{consistent, execute, scope};

#[derive(Tags)]
enum ApiTags {
    /// Projects: namespaces of a workspace's vCluster.
    Projects,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateProject {
    /// The namespace name: a DNS-1123 label, unique in the workspace.
    #[oai(validator(max_length = 100))]
    pub name: String,
    /// A parent project of the same workspace.
    #[oai(validator(max_length = 100))]
    pub parent_id: Option<String>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateProject {
    /// Another project of the workspace to put this one below, or `null` for the top. (A
    /// namespace cannot be renamed.)
    pub parent_id: MaybeUndefined<String>,
}

#[derive(Debug, Object)]
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
pub struct ProjectList {
    pub items: Vec<Project>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct CreatedProject {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub position: i64,
}

#[derive(Debug, Object)]
pub struct ProjectWritten {
    /// Position of the last event recorded (absent when nothing changed).
    pub position: Option<i64>,
}

#[derive(ApiResponse)]
pub enum ProjectCreated {
    #[oai(status = 201)]
    Created(Json<CreatedProject>, #[oai(header = "Location")] String),
}

fn parent_id(raw: Option<&str>) -> ApiResult<Option<ProjectId>> {
    raw.map(|p| ProjectId::parse(p).map_err(|_| ApiError::invalid("parent_id", "not a project id")))
        .transpose()
}

/// Record which workspace a new project belongs to (before its first event); undone if the
/// project is refused.
async fn register(ctx: &Ctx, project: &ProjectId, ws: &WorkspaceId) -> ApiResult<()> {
    sqlx::query("INSERT INTO project_directory (project_id, ws_id) VALUES ($1, $2)")
        .bind(project.as_str())
        .bind(ws.as_str())
        .execute(&ctx.state.pool)
        .await?;
    Ok(())
}

async fn unregister(ctx: &Ctx, project: &ProjectId) {
    let removed = sqlx::query("DELETE FROM project_directory WHERE project_id = $1")
        .bind(project.as_str())
        .execute(&ctx.state.pool)
        .await;
    if let Err(e) = removed {
        tracing::error!(project = %project, error = %e, "cannot forget a refused project");
    }
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
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<ProjectCreated> {
        let name = DnsLabel::parse("name", &body.name)?;
        let parent = parent_id(body.parent_id.as_deref())?;
        let user = &auth.principal().user;
        let (ws, row) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let max_projects = ctx
            .state
            .settings
            .plans
            .get(&row.plan)
            .map(|plan| plan.max_projects)
            .unwrap_or(0);
        let id = ProjectId::generate();
        register(&ctx, &id, &ws).await?;
        let command = WorkspaceCommand::CreateProject {
            id: id.clone(),
            name: name.clone(),
            parent: parent.clone(),
            max_projects,
        };
        let position = match execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await {
            Ok(position) => position.unwrap_or_default(),
            Err(e) => {
                unregister(&ctx, &id).await;
                return Err(e);
            }
        };
        let location = format!("/api/v1/workspaces/{ws}/projects/{id}");
        Ok(ProjectCreated::Created(
            Json(CreatedProject {
                id: id.to_string(),
                name: name.to_string(),
                parent_id: parent.map(|p| p.to_string()),
                position,
            }),
            location,
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
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<ProjectList>> {
        consistent(&ctx, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), ProjectId::parse)?;
        let (ws, _) = scope(&ctx, &ws_id, &auth.principal().user, WorkspaceAction::Read).await?;
        let rows = ws_query::projects(&ctx.state.pool, &ws, after.as_ref(), limit).await?;
        Ok(Json(ProjectList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
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
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Project>> {
        consistent(&ctx, position.0).await?;
        let id = ProjectId::parse(&project)?;
        let (ws, _) = scope(&ctx, &ws_id, &auth.principal().user, WorkspaceAction::Read).await?;
        let row = ws_query::project(&ctx.state.pool, &ws, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("project not found"))?;
        Ok(Json(row.into()))
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
    ) -> ApiResult<Json<ProjectWritten>> {
        let id = ProjectId::parse(&project)?;
        let parent = match &body.parent_id {
            MaybeUndefined::Undefined => {
                return Err(ApiError::invalid("parent_id", "give `parent_id` (or null)"))
            }
            MaybeUndefined::Null => None,
            MaybeUndefined::Value(p) => parent_id(Some(p))?,
        };
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::MoveProject { id, parent };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(ProjectWritten { position }))
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
    ) -> ApiResult<Json<ProjectWritten>> {
        let id = ProjectId::parse(&project)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::DeleteProject { id };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(ProjectWritten { position }))
    }
}
