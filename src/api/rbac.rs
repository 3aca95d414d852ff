//! Who may do what inside a workspace's vCluster: custom roles and role assignments of a
//! project (`/api/v1/projects/{projectId}/…`) and cluster role assignments of a workspace
//! (`/api/v1/workspaces/{wsId}/clusterroleassignments`). Groups receive roles; people receive
//! groups.

use chrono::{DateTime, Utc};
use hexabase_command::policy::{self, Decision, ProjectAction, WorkspaceAccess, WorkspaceAction};
use hexabase_command::rbac::{PolicyRule, PresetRole, RoleRef};
use hexabase_command::values::DnsLabel;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{
    ClusterRoleAssignmentId, GroupId, ProjectId, RoleAssignmentId, RoleId, UserId, WorkspaceId,
};
use hexabase_query::workspace::{self as ws_query, AssignmentRow, RoleRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::page;
use super::security::SignedIn;
use super::workspace::{consistent, execute, scope};

#[derive(Tags)]
enum ApiTags {
    /// Roles of a project: the presets `admin`, `edit`, `view` and custom ones.
    Roles,
    /// Role assignments: a group gets a role in a project.
    RoleAssignments,
    /// Cluster role assignments: a group gets a preset ClusterRole across the workspace.
    ClusterRoleAssignments,
}

/// A Kubernetes PolicyRule.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PolicyRuleSpec {
    /// `""` is the core group.
    #[oai(validator(max_items = 20))]
    pub api_groups: Vec<String>,
    #[oai(validator(max_items = 50))]
    pub resources: Vec<String>,
    /// get, list, watch, create, update, patch, delete, deletecollection (`*` only for
    /// organization admins and WSAdmins).
    #[oai(validator(max_items = 10))]
    pub verbs: Vec<String>,
    #[oai(validator(max_items = 50))]
    pub resource_names: Option<Vec<String>>,
}

impl From<PolicyRuleSpec> for PolicyRule {
    fn from(rule: PolicyRuleSpec) -> Self {
        PolicyRule {
            api_groups: rule.api_groups,
            resources: rule.resources,
            verbs: rule.verbs,
            resource_names: rule.resource_names.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateRole {
    /// A DNS-1123 label, unique in the project and not `admin`, `edit` or `view`.
    #[oai(validator(max_length = 100))]
    pub name: String,
    #[oai(validator(max_items = 50))]
    pub rules: Vec<PolicyRuleSpec>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateRole {
    #[oai(validator(max_items = 50))]
    pub rules: Vec<PolicyRuleSpec>,
}

#[derive(Debug, Object)]
pub struct ProjectRole {
    /// A role id, or `admin`/`edit`/`view` for the presets.
    pub id: String,
    pub name: String,
    pub preset: bool,
    /// Custom roles' rules (presets are Kubernetes' own ClusterRoles).
    pub rules: Option<serde_json::Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<RoleRow> for ProjectRole {
    fn from(row: RoleRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            preset: false,
            rules: Some(row.rules.0),
            created_at: Some(row.created_at),
            updated_at: Some(row.updated_at),
        }
    }
}

fn preset(role: PresetRole) -> ProjectRole {
    ProjectRole {
        id: role.as_str().into(),
        name: role.as_str().into(),
        preset: true,
        rules: None,
        created_at: None,
        updated_at: None,
    }
}

#[derive(Debug, Object)]
pub struct ProjectRoleList {
    /// The preset roles every project has.
    pub presets: Vec<ProjectRole>,
    /// Custom roles, by id.
    pub items: Vec<ProjectRole>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateAssignment {
    #[oai(validator(max_length = 100))]
    pub group_id: String,
    /// `admin`, `edit`, `view`, or a custom role id of the project.
    #[oai(validator(max_length = 100))]
    pub role: String,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateClusterAssignment {
    #[oai(validator(max_length = 100))]
    pub group_id: String,
    /// `admin`, `edit` or `view`.
    #[oai(validator(max_length = 20))]
    pub cluster_role: String,
}

#[derive(Debug, Object)]
pub struct RoleAssignmentView {
    pub id: String,
    /// The project (role assignments) or the workspace (cluster role assignments).
    pub scope_id: String,
    pub group_id: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<AssignmentRow> for RoleAssignmentView {
    fn from(row: AssignmentRow) -> Self {
        Self {
            id: row.id,
            scope_id: row.scope_id,
            group_id: row.group_id,
            role: row.role,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct RoleAssignmentList {
    pub items: Vec<RoleAssignmentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct RbacCreatedItem {
    pub id: String,
    pub position: i64,
}

#[derive(Debug, Object)]
pub struct RbacWritten {
    /// Position of the last event recorded (absent when nothing changed).
    pub position: Option<i64>,
}

#[derive(ApiResponse)]
pub enum RbacCreated {
    #[oai(status = 201)]
    Created(Json<RbacCreatedItem>, #[oai(header = "Location")] String),
}

/// The project of a `/projects/{projectId}/…` route, if the caller may do `action` in it.
async fn project_scope(
    ctx: &Ctx,
    project_id: &str,
    user: &UserId,
    action: ProjectAction,
) -> ApiResult<(WorkspaceId, ProjectId, WorkspaceAccess)> {
    let not_found = || ApiError::not_found("project not found");
    let project = ProjectId::parse(project_id)?;
    let pool = &ctx.state.pool;
    let ws_id = ws_query::project_workspace(pool, &project)
        .await?
        .ok_or_else(not_found)?;
    let ws = WorkspaceId::parse(&ws_id).map_err(|_| not_found())?;
    let (_, access) = ws_query::get_with_access(pool, &ws, user)
        .await?
        .ok_or_else(not_found)?;
    let project_admin = action == ProjectAction::Manage
        && !policy::administers_workspace(access)
        && ws_query::project_admin(pool, &ws, &project, user).await?;
    match policy::decide_project(access, project_admin, action) {
        Decision::Allowed => {}
        Decision::Forbidden => {
            return Err(ApiError::forbidden(
                "only organization admins, WSAdmins and the project's admins may do this",
            ))
        }
        Decision::NotFound => return Err(not_found()),
    }
    ws_query::project(pool, &ws, &project)
        .await?
        .ok_or_else(not_found)?;
    Ok((ws, project, access))
}

fn rules(body: Vec<PolicyRuleSpec>) -> Vec<PolicyRule> {
    body.into_iter().map(Into::into).collect()
}

fn group_field(raw: &str) -> ApiResult<GroupId> {
    GroupId::parse(raw).map_err(|_| ApiError::invalid("group_id", "not a group id"))
}

pub struct RbacApi;

#[OpenApi(prefix_path = "/api/v1")]
impl RbacApi {
    /// Create a custom role in the project (workspace administrators, project admins; `*`
    /// only for organization admins and WSAdmins).
    #[oai(
        path = "/projects/:project_id/roles",
        method = "post",
        operation_id = "createRole",
        tag = "ApiTags::Roles"
    )]
    async fn create_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        body: Json<CreateRole>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let body = body.0;
        let name = DnsLabel::parse("name", &body.name)?;
        let user = &auth.principal().user;
        let (ws, project, access) =
            project_scope(&ctx, &project_id, user, ProjectAction::Manage).await?;
        let id = RoleId::generate();
        let command = WorkspaceCommand::CreateRole {
            project: project.clone(),
            id: id.clone(),
            name,
            rules: rules(body.rules),
            allow_wildcards: policy::administers_workspace(access),
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
            .await?
            .unwrap_or_default();
        Ok(RbacCreated::Created(
            Json(RbacCreatedItem {
                id: id.to_string(),
                position,
            }),
            format!("/api/v1/projects/{project}/roles/{id}"),
        ))
    }

    /// The project's roles: the presets and the custom roles (workspace members).
    #[oai(
        path = "/projects/:project_id/roles",
        method = "get",
        operation_id = "listRoles",
        tag = "ApiTags::Roles"
    )]
    async fn list_roles(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<ProjectRoleList>> {
        consistent(&ctx, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), RoleId::parse)?;
        let user = &auth.principal().user;
        let (_, project, _) = project_scope(&ctx, &project_id, user, ProjectAction::Read).await?;
        let rows = ws_query::roles(
            &ctx.state.pool,
            &project,
            after.as_ref().map(RoleId::as_str),
            limit,
        )
        .await?;
        Ok(Json(ProjectRoleList {
            presets: PresetRole::ALL.into_iter().map(preset).collect(),
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// One role: a preset (`admin`, `edit`, `view`) or a custom role id (workspace members).
    #[oai(
        path = "/projects/:project_id/roles/:role_id",
        method = "get",
        operation_id = "getRole",
        tag = "ApiTags::Roles"
    )]
    async fn get_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        #[oai(name = "role_id")] role_id: Path<String>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<ProjectRole>> {
        consistent(&ctx, position.0).await?;
        let user = &auth.principal().user;
        let (_, project, _) = project_scope(&ctx, &project_id, user, ProjectAction::Read).await?;
        if let Some(role) = PresetRole::parse(&role_id) {
            return Ok(Json(preset(role)));
        }
        let id = RoleId::parse(&role_id)?;
        let row = ws_query::role(&ctx.state.pool, &project, id.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("role not found"))?;
        Ok(Json(row.into()))
    }

    /// Replace a custom role's rules (workspace administrators, project admins).
    #[oai(
        path = "/projects/:project_id/roles/:role_id",
        method = "patch",
        operation_id = "updateRole",
        tag = "ApiTags::Roles"
    )]
    async fn update_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        #[oai(name = "role_id")] role_id: Path<String>,
        body: Json<UpdateRole>,
    ) -> ApiResult<Json<RbacWritten>> {
        let id = RoleId::parse(&role_id)?;
        let user = &auth.principal().user;
        let (ws, project, access) =
            project_scope(&ctx, &project_id, user, ProjectAction::Manage).await?;
        let command = WorkspaceCommand::UpdateRole {
            project,
            id,
            rules: rules(body.0.rules),
            allow_wildcards: policy::administers_workspace(access),
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(RbacWritten { position }))
    }

    /// Delete a custom role; refused (409, naming them) while role assignments use it.
    #[oai(
        path = "/projects/:project_id/roles/:role_id",
        method = "delete",
        operation_id = "deleteRole",
        tag = "ApiTags::Roles"
    )]
    async fn delete_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        #[oai(name = "role_id")] role_id: Path<String>,
    ) -> ApiResult<Json<RbacWritten>> {
        let id = RoleId::parse(&role_id)?;
        let user = &auth.principal().user;
        let (ws, project, _) =
            project_scope(&ctx, &project_id, user, ProjectAction::Manage).await?;
        let command = WorkspaceCommand::DeleteRole { project, id };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(RbacWritten { position }))
    }

    /// Give a group a role in the project (workspace administrators, project admins).
    #[oai(
        path = "/projects/:project_id/roleassignments",
        method = "post",
        operation_id = "createRoleAssignment",
        tag = "ApiTags::RoleAssignments"
    )]
    async fn assign(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        body: Json<CreateAssignment>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let group = group_field(&body.group_id)?;
        let role = RoleRef::parse("role", &body.role)?;
        let user = &auth.principal().user;
        let (ws, project, _) =
            project_scope(&ctx, &project_id, user, ProjectAction::Manage).await?;
        let id = RoleAssignmentId::generate();
        let command = WorkspaceCommand::AssignRole {
            project: project.clone(),
            id: id.clone(),
            group,
            role,
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
            .await?
            .unwrap_or_default();
        Ok(RbacCreated::Created(
            Json(RbacCreatedItem {
                id: id.to_string(),
                position,
            }),
            format!("/api/v1/projects/{project}/roleassignments/{id}"),
        ))
    }

    /// The project's role assignments, by id (workspace members).
    #[oai(
        path = "/projects/:project_id/roleassignments",
        method = "get",
        operation_id = "listRoleAssignments",
        tag = "ApiTags::RoleAssignments"
    )]
    async fn list_assignments(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<RoleAssignmentList>> {
        consistent(&ctx, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), RoleAssignmentId::parse)?;
        let user = &auth.principal().user;
        let (_, project, _) = project_scope(&ctx, &project_id, user, ProjectAction::Read).await?;
        let rows = ws_query::role_assignments(
            &ctx.state.pool,
            &project,
            after.as_ref().map(RoleAssignmentId::as_str),
            limit,
        )
        .await?;
        Ok(Json(RoleAssignmentList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// One role assignment (workspace members).
    #[oai(
        path = "/projects/:project_id/roleassignments/:assignment_id",
        method = "get",
        operation_id = "getRoleAssignment",
        tag = "ApiTags::RoleAssignments"
    )]
    async fn get_assignment(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        #[oai(name = "assignment_id")] assignment_id: Path<String>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<RoleAssignmentView>> {
        consistent(&ctx, position.0).await?;
        let id = RoleAssignmentId::parse(&assignment_id)?;
        let user = &auth.principal().user;
        let (_, project, _) = project_scope(&ctx, &project_id, user, ProjectAction::Read).await?;
        let row = ws_query::role_assignment(&ctx.state.pool, &project, id.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("role assignment not found"))?;
        Ok(Json(row.into()))
    }

    /// Take a role back (workspace administrators, project admins).
    #[oai(
        path = "/projects/:project_id/roleassignments/:assignment_id",
        method = "delete",
        operation_id = "deleteRoleAssignment",
        tag = "ApiTags::RoleAssignments"
    )]
    async fn unassign(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "project_id")] project_id: Path<String>,
        #[oai(name = "assignment_id")] assignment_id: Path<String>,
    ) -> ApiResult<Json<RbacWritten>> {
        let id = RoleAssignmentId::parse(&assignment_id)?;
        let user = &auth.principal().user;
        let (ws, project, _) =
            project_scope(&ctx, &project_id, user, ProjectAction::Manage).await?;
        let command = WorkspaceCommand::UnassignRole { project, id };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(RbacWritten { position }))
    }

    /// Give a group a preset ClusterRole across the workspace (organization admins, WSAdmins).
    #[oai(
        path = "/workspaces/:ws_id/clusterroleassignments",
        method = "post",
        operation_id = "createClusterRoleAssignment",
        tag = "ApiTags::ClusterRoleAssignments"
    )]
    async fn assign_cluster_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<CreateClusterAssignment>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let group = group_field(&body.group_id)?;
        let role = PresetRole::parse(&body.cluster_role).ok_or_else(|| {
            ApiError::invalid("cluster_role", "must be `admin`, `edit` or `view`")
        })?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let id = ClusterRoleAssignmentId::generate();
        let command = WorkspaceCommand::AssignClusterRole {
            id: id.clone(),
            group,
            role,
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
            .await?
            .unwrap_or_default();
        Ok(RbacCreated::Created(
            Json(RbacCreatedItem {
                id: id.to_string(),
                position,
            }),
            format!("/api/v1/workspaces/{ws}/clusterroleassignments/{id}"),
        ))
    }

    /// The workspace's cluster role assignments, by id (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/clusterroleassignments",
        method = "get",
        operation_id = "listClusterRoleAssignments",
        tag = "ApiTags::ClusterRoleAssignments"
    )]
    async fn list_cluster_assignments(
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
    ) -> ApiResult<Json<RoleAssignmentList>> {
        consistent(&ctx, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), ClusterRoleAssignmentId::parse)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Read).await?;
        let rows = ws_query::cluster_role_assignments(
            &ctx.state.pool,
            &ws,
            after.as_ref().map(ClusterRoleAssignmentId::as_str),
            limit,
        )
        .await?;
        Ok(Json(RoleAssignmentList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// One cluster role assignment (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/clusterroleassignments/:assignment_id",
        method = "get",
        operation_id = "getClusterRoleAssignment",
        tag = "ApiTags::ClusterRoleAssignments"
    )]
    async fn get_cluster_assignment(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "assignment_id")] assignment_id: Path<String>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<RoleAssignmentView>> {
        consistent(&ctx, position.0).await?;
        let id = ClusterRoleAssignmentId::parse(&assignment_id)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Read).await?;
        let row = ws_query::cluster_role_assignment(&ctx.state.pool, &ws, id.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("cluster role assignment not found"))?;
        Ok(Json(row.into()))
    }

    /// Take a cluster role back (organization admins, WSAdmins).
    #[oai(
        path = "/workspaces/:ws_id/clusterroleassignments/:assignment_id",
        method = "delete",
        operation_id = "deleteClusterRoleAssignment",
        tag = "ApiTags::ClusterRoleAssignments"
    )]
    async fn unassign_cluster_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "assignment_id")] assignment_id: Path<String>,
    ) -> ApiResult<Json<RbacWritten>> {
        let id = ClusterRoleAssignmentId::parse(&assignment_id)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::UnassignClusterRole { id };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(RbacWritten { position }))
    }
}
