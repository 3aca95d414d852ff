//! Who may do what inside a workspace's vCluster: custom roles and role assignments of a
//! project (`/api/v1/projects/{projectId}/…`) and cluster role assignments of a workspace
//! (`/api/v1/workspaces/{wsId}/clusterroleassignments`). Groups receive roles; people receive
//! groups.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_command::rbac::{PolicyRule, PresetRole, RoleRef};
use hexabase_command::values::DnsLabel;
use hexabase_command::{
    ClusterRoleAssignmentId, GroupId, ProjectId, RoleAssignmentId, RoleId, WorkspaceId,
};
use hexabase_query::workspace::{AssignmentRow, RoleRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List};
use super::security::SignedIn;
use super::written::Written;
use crate::app::roles::ProjectRole as Role;
use crate::error::Error;

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
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct PolicyRuleSpec {
    /// `""` is the core group.
    #[oai(validator(max_items = 20))]
    pub api_groups: Vec<Text>,
    #[oai(validator(max_items = 50))]
    pub resources: Vec<Text>,
    /// get, list, watch, create, update, patch, delete, deletecollection (`*` only for
    /// organization admins and WSAdmins).
    #[oai(validator(max_items = 10))]
    pub verbs: Vec<Text>,
    #[oai(validator(max_items = 50))]
    pub resource_names: Option<Vec<Text>>,
}

impl From<PolicyRuleSpec> for PolicyRule {
    fn from(rule: PolicyRuleSpec) -> Self {
        PolicyRule {
            api_groups: super::text::strings(rule.api_groups),
            resources: super::text::strings(rule.resources),
            verbs: super::text::strings(rule.verbs),
            resource_names: super::text::strings(rule.resource_names.unwrap_or_default()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateRole {
    /// A DNS-1123 label, unique in the project and not `admin`, `edit` or `view`.
    #[oai(validator(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Text,
    #[oai(validator(max_items = 50))]
    pub rules: Vec<PolicyRuleSpec>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateRole {
    #[oai(validator(max_items = 50))]
    pub rules: Vec<PolicyRuleSpec>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateAssignment {
    #[oai(validator(pattern = r"^grp-[0-9a-f]{32}$"))]
    pub group_id: Text,
    /// `admin`, `edit`, `view`, or a custom role id of the project.
    #[oai(validator(pattern = r"^(admin|edit|view|role-[0-9a-f]{32})$"))]
    pub role: Text,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateClusterAssignment {
    #[oai(validator(pattern = r"^grp-[0-9a-f]{32}$"))]
    pub group_id: Text,
    /// `admin`, `edit` or `view`.
    #[oai(validator(pattern = r"^(admin|edit|view)$"))]
    pub cluster_role: Text,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
pub struct RbacCreatedItem {
    pub id: String,
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum RbacCreated {
    #[oai(status = 201)]
    Created(Json<RbacCreatedItem>, #[oai(header = "Location")] String),
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProjectRoleList {
    /// The preset roles every project has.
    pub presets: Vec<ProjectRole>,
    /// Custom roles, by id.
    pub items: Vec<ProjectRole>,
    pub next_cursor: Option<String>,
}

impl From<Role> for ProjectRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Preset(role) => preset(role),
            Role::Custom(row) => row.into(),
        }
    }
}

fn rules(body: Vec<PolicyRuleSpec>) -> Vec<PolicyRule> {
    body.into_iter().map(Into::into).collect()
}

fn group_field(raw: &str) -> ApiResult<GroupId> {
    GroupId::parse(raw).map_err(|_| Error::invalid("group_id", "not a group id"))
}

fn created(id: &str, position: i64, location: String) -> RbacCreated {
    RbacCreated::Created(
        Json(RbacCreatedItem {
            id: id.to_owned(),
            position,
        }),
        location,
    )
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let body = body.0;
        let name = DnsLabel::parse("name", &body.name)?;
        let (project, id) = (ProjectId::parse(&project_id)?, RoleId::generate());
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .create_role(&op, &project, &id, name, rules(body.rules))
            .await?;
        let location = format!("/api/v1/projects/{project}/roles/{id}");
        Ok(created(id.as_str(), position, location))
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
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^role-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<ProjectRoleList>> {
        let project = ProjectId::parse(&project_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), RoleId::parse)?;
        let rows = ctx
            .app
            .list_roles(&ctx.op(&auth), &project, page, position.0)
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
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<ProjectRole>> {
        let project = ProjectId::parse(&project_id)?;
        let role = ctx
            .app
            .role(&ctx.op(&auth), &project, &role_id, position.0)
            .await?;
        Ok(Json(role.into()))
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
    ) -> ApiResult<Json<Written>> {
        let (project, id) = (ProjectId::parse(&project_id)?, RoleId::parse(&role_id)?);
        let op = ctx.op(&auth);
        Ok(Written::at(
            ctx.app
                .update_role(&op, &project, id, rules(body.0.rules))
                .await?,
        ))
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
    ) -> ApiResult<Json<Written>> {
        let (project, id) = (ProjectId::parse(&project_id)?, RoleId::parse(&role_id)?);
        Ok(Written::at(
            ctx.app.delete_role(&ctx.op(&auth), &project, id).await?,
        ))
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let group = group_field(&body.group_id)?;
        let role = RoleRef::parse("role", &body.role)?;
        let (project, id) = (ProjectId::parse(&project_id)?, RoleAssignmentId::generate());
        let position = ctx
            .app
            .assign_role(&ctx.op(&auth), &project, &id, group, role)
            .await?;
        let location = format!("/api/v1/projects/{project}/roleassignments/{id}");
        Ok(created(id.as_str(), position, location))
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
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^ra-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<RoleAssignmentView>>> {
        let project = ProjectId::parse(&project_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), RoleAssignmentId::parse)?;
        let op = ctx.op(&auth);
        Ok(List::of(
            ctx.app
                .list_role_assignments(&op, &project, page, position.0)
                .await?,
        ))
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
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<RoleAssignmentView>> {
        let project = ProjectId::parse(&project_id)?;
        let id = RoleAssignmentId::parse(&assignment_id)?;
        let row = ctx
            .app
            .role_assignment(&ctx.op(&auth), &project, &id, position.0)
            .await?;
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
    ) -> ApiResult<Json<Written>> {
        let project = ProjectId::parse(&project_id)?;
        let id = RoleAssignmentId::parse(&assignment_id)?;
        Ok(Written::at(
            ctx.app.unassign_role(&ctx.op(&auth), &project, id).await?,
        ))
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<RbacCreated> {
        let group = group_field(&body.group_id)?;
        let role = PresetRole::parse(&body.cluster_role)
            .ok_or_else(|| Error::invalid("cluster_role", "must be `admin`, `edit` or `view`"))?;
        let (ws, id) = (
            WorkspaceId::parse(&ws_id)?,
            ClusterRoleAssignmentId::generate(),
        );
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .assign_cluster_role(&op, &ws, &id, group, role)
            .await?;
        let location = format!("/api/v1/workspaces/{ws}/clusterroleassignments/{id}");
        Ok(created(id.as_str(), position, location))
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
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^cra-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<RoleAssignmentView>>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), ClusterRoleAssignmentId::parse)?;
        let op = ctx.op(&auth);
        Ok(List::of(
            ctx.app
                .list_cluster_role_assignments(&op, &ws, page, position.0)
                .await?,
        ))
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
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<RoleAssignmentView>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let id = ClusterRoleAssignmentId::parse(&assignment_id)?;
        let row = ctx
            .app
            .cluster_role_assignment(&ctx.op(&auth), &ws, &id, position.0)
            .await?;
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
    ) -> ApiResult<Json<Written>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let id = ClusterRoleAssignmentId::parse(&assignment_id)?;
        Ok(Written::at(
            ctx.app
                .unassign_cluster_role(&ctx.op(&auth), &ws, id)
                .await?,
        ))
    }
}
