//! `/api/v1/workspaces/{wsId}/groups`: a workspace's groups (hierarchical) and their members.
//! Workspace members read them; organization admins and WSAdmins change them.

use chrono::{DateTime, Utc};
use hexabase_command::policy::WorkspaceAction;
use hexabase_command::values::GroupName;
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{GroupId, OrganizationId, UserId};
use hexabase_query::organization as org_query;
use hexabase_query::workspace::{self as ws_query, GroupRow};
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
    /// Groups of a workspace: who is who in its vCluster.
    Groups,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateGroup {
    /// 1–63 letters, digits, `-`, `_`, `.`; unique in the workspace.
    #[oai(validator(max_length = 100))]
    pub name: String,
    /// The parent group (default: `WorkspaceMembers`). Members of a group count as members of
    /// its ancestors.
    #[oai(validator(max_length = 100))]
    pub parent_id: Option<String>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateGroup {
    #[oai(validator(max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(max_length = 100))]
    pub parent_id: Option<String>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct AddMember {
    /// A member of the workspace's organization (`hxb-usr-…`).
    #[oai(validator(max_length = 100))]
    pub user_id: String,
}

#[derive(Debug, Object)]
pub struct Group {
    pub id: String,
    pub ws_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// `WorkspaceMembers` and `WSAdmins` come with every workspace and stay.
    pub preset: bool,
    pub created_at: DateTime<Utc>,
}

impl From<GroupRow> for Group {
    fn from(row: GroupRow) -> Self {
        Self {
            id: row.id,
            ws_id: row.ws_id,
            name: row.name,
            parent_id: row.parent_id,
            preset: row.preset,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct GroupList {
    pub items: Vec<Group>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct GroupMember {
    pub user_id: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct GroupMemberList {
    pub items: Vec<GroupMember>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct CreatedGroup {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub position: i64,
}

#[derive(Debug, Object)]
pub struct GroupWritten {
    /// Position of the last event recorded (absent when nothing changed).
    pub position: Option<i64>,
}

#[derive(ApiResponse)]
pub enum GroupCreated {
    #[oai(status = 201)]
    Created(Json<CreatedGroup>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum MemberAdded {
    #[oai(status = 201)]
    Created(Json<GroupWritten>),
}

fn group_id(raw: &str) -> ApiResult<GroupId> {
    Ok(GroupId::parse(raw)?)
}

fn parent_id(raw: Option<&str>) -> ApiResult<Option<GroupId>> {
    raw.map(|p| GroupId::parse(p).map_err(|_| ApiError::invalid("parent_id", "not a group id")))
        .transpose()
}

pub struct GroupsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Groups")]
impl GroupsApi {
    /// Create a group (organization admins, WSAdmins).
    #[oai(
        path = "/workspaces/:ws_id/groups",
        method = "post",
        operation_id = "createGroup"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        body: Json<CreateGroup>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<GroupCreated> {
        let name = GroupName::parse("name", &body.name)?;
        let parent = parent_id(body.parent_id.as_deref())?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let id = GroupId::generate();
        let command = WorkspaceCommand::CreateGroup {
            id: id.clone(),
            name: name.clone(),
            parent: parent.clone(),
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal()))
            .await?
            .unwrap_or_default();
        let location = format!("/api/v1/workspaces/{ws}/groups/{id}");
        Ok(GroupCreated::Created(
            Json(CreatedGroup {
                id: id.to_string(),
                name: name.to_string(),
                parent_id: parent.map(|p| p.to_string()),
                position,
            }),
            location,
        ))
    }

    /// The workspace's groups, by id (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/groups",
        method = "get",
        operation_id = "listGroups"
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
    ) -> ApiResult<Json<GroupList>> {
        consistent(&ctx, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), GroupId::parse)?;
        let (ws, _) = scope(&ctx, &ws_id, &auth.principal().user, WorkspaceAction::Read).await?;
        let rows = ws_query::groups(&ctx.state.pool, &ws, after.as_ref(), limit).await?;
        Ok(Json(GroupList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// One group (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id",
        method = "get",
        operation_id = "getGroup"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Group>> {
        consistent(&ctx, position.0).await?;
        let (ws, _) = scope(&ctx, &ws_id, &auth.principal().user, WorkspaceAction::Read).await?;
        let row = ws_query::group(&ctx.state.pool, &ws, &group_id(&group)?)
            .await?
            .ok_or_else(|| ApiError::not_found("group not found"))?;
        Ok(Json(row.into()))
    }

    /// Rename a group or move it below another (organization admins, WSAdmins; not the preset
    /// groups; no cycles).
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id",
        method = "patch",
        operation_id = "updateGroup"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
        body: Json<UpdateGroup>,
    ) -> ApiResult<Json<GroupWritten>> {
        let id = group_id(&group)?;
        let name = body
            .name
            .as_deref()
            .map(|n| GroupName::parse("name", n))
            .transpose()?;
        let parent = parent_id(body.parent_id.as_deref())?;
        if name.is_none() && parent.is_none() {
            return Err(ApiError::invalid(
                "name",
                "give `name`, `parent_id` or both",
            ));
        }
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::UpdateGroup { id, name, parent };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(GroupWritten { position }))
    }

    /// Delete a group (organization admins, WSAdmins): refused for the preset groups and while
    /// it has child groups.
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id",
        method = "delete",
        operation_id = "deleteGroup"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
    ) -> ApiResult<Json<GroupWritten>> {
        let id = group_id(&group)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::DeleteGroup { id };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(GroupWritten { position }))
    }

    /// Add a member of the organization to the group (organization admins, WSAdmins).
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id/members",
        method = "post",
        operation_id = "addGroupMember"
    )]
    async fn add_member(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
        body: Json<AddMember>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<MemberAdded> {
        let id = group_id(&group)?;
        let member = UserId::parse(&body.user_id)
            .map_err(|_| ApiError::invalid("user_id", "not a user id"))?;
        let user = &auth.principal().user;
        let (ws, row) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let org = OrganizationId::parse(&row.org_id)?;
        if org_query::role_of(&ctx.state.pool, &org, &member)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                "user_id",
                "only members of the workspace's organization can join its groups",
            ));
        }
        let command = WorkspaceCommand::AddGroupMember {
            group: id,
            user: member,
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(MemberAdded::Created(Json(GroupWritten { position })))
    }

    /// The group's direct members, by user id (workspace members).
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id/members",
        method = "get",
        operation_id = "listGroupMembers"
    )]
    // One parameter per path and query field is how poem-openapi documents them.
    #[allow(clippy::too_many_arguments)]
    async fn members(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<GroupMemberList>> {
        consistent(&ctx, position.0).await?;
        let id = group_id(&group)?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), UserId::parse)?;
        let (ws, _) = scope(&ctx, &ws_id, &auth.principal().user, WorkspaceAction::Read).await?;
        ws_query::group(&ctx.state.pool, &ws, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("group not found"))?;
        let rows = ws_query::group_members(&ctx.state.pool, &id, after.as_ref(), limit).await?;
        Ok(Json(GroupMemberList {
            items: rows
                .items
                .into_iter()
                .map(|m| GroupMember {
                    user_id: m.user_id,
                    since: m.since,
                })
                .collect(),
            next_cursor: rows.next,
        }))
    }

    /// Remove a member from the group (organization admins, WSAdmins; never the last WSAdmin).
    #[oai(
        path = "/workspaces/:ws_id/groups/:group_id/members/:user_id",
        method = "delete",
        operation_id = "removeGroupMember"
    )]
    async fn remove_member(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        #[oai(name = "group_id")] group: Path<String>,
        #[oai(name = "user_id")] member: Path<String>,
    ) -> ApiResult<Json<GroupWritten>> {
        let id = group_id(&group)?;
        let member = UserId::parse(&member)?;
        let user = &auth.principal().user;
        let (ws, _) = scope(&ctx, &ws_id, user, WorkspaceAction::Update).await?;
        let command = WorkspaceCommand::RemoveGroupMember {
            group: id,
            user: member,
        };
        let position = execute(&ctx, &ws, command, ctx.metadata(auth.principal())).await?;
        Ok(Json(GroupWritten { position }))
    }
}
