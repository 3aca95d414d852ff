//! `/api/v1/workspaces/{wsId}/groups`: a workspace's groups (hierarchical) and their members.
//! Workspace members read them; organization admins and WSAdmins change them.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_command::values::GroupName;
use hexabase_command::{GroupId, UserId, WorkspaceId};
use hexabase_query::workspace::{GroupMemberRow, GroupRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List};
use super::security::SignedIn;
use super::written::Written;
use crate::error::Error;

#[derive(Tags)]
enum ApiTags {
    /// Groups of a workspace: who is who in its vCluster.
    Groups,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateGroup {
    /// 1–63 letters, digits, `-`, `_`, `.`; unique in the workspace.
    #[oai(validator(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"))]
    pub name: Text,
    /// The parent group (default: `WorkspaceMembers`). Members of a group count as members of
    /// its ancestors.
    #[oai(validator(pattern = r"^grp-[0-9a-f]{32}$"))]
    pub parent_id: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateGroup {
    #[oai(validator(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"))]
    pub name: Option<Text>,
    #[oai(validator(pattern = r"^grp-[0-9a-f]{32}$"))]
    pub parent_id: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct AddMember {
    /// A member of the workspace's organization (`hxb-usr-…`).
    #[oai(validator(pattern = r"^hxb-usr-[0-9a-f]{32}$"))]
    pub user_id: Text,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
pub struct GroupMember {
    pub user_id: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedGroup {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum GroupCreated {
    #[oai(status = 201)]
    Created(Json<CreatedGroup>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum MemberAdded {
    #[oai(status = 201)]
    Created(Json<Written>),
}

impl From<GroupMemberRow> for GroupMember {
    fn from(row: GroupMemberRow) -> Self {
        Self {
            user_id: row.user_id,
            since: row.since,
        }
    }
}

fn parent_id(raw: Option<&str>) -> ApiResult<Option<GroupId>> {
    raw.map(|p| GroupId::parse(p).map_err(|_| Error::invalid("parent_id", "not a group id")))
        .transpose()
}

/// The workspace and the group a `/workspaces/{wsId}/groups/{groupId}` route names.
fn ids(ws_id: &str, group_id: &str) -> ApiResult<(WorkspaceId, GroupId)> {
    Ok((WorkspaceId::parse(ws_id)?, GroupId::parse(group_id)?))
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<GroupCreated> {
        let name = GroupName::parse("name", &body.name)?;
        let parent = parent_id(body.parent_id.as_deref())?;
        let (ws, id) = (WorkspaceId::parse(&ws_id)?, GroupId::generate());
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .create_group(&op, &ws, &id, name.clone(), parent.clone())
            .await?;
        Ok(GroupCreated::Created(
            Json(CreatedGroup {
                id: id.to_string(),
                name: name.to_string(),
                parent_id: parent.map(|p| p.to_string()),
                position,
            }),
            format!("/api/v1/workspaces/{ws}/groups/{id}"),
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
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^grp-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<Group>>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), GroupId::parse)?;
        Ok(List::of(
            ctx.app
                .list_groups(&ctx.op(&auth), &ws, page, position.0)
                .await?,
        ))
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
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Group>> {
        let (ws, id) = ids(&ws_id, &group)?;
        Ok(Json(
            ctx.app
                .group(&ctx.op(&auth), &ws, &id, position.0)
                .await?
                .into(),
        ))
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
    ) -> ApiResult<Json<Written>> {
        let (ws, id) = ids(&ws_id, &group)?;
        let name = body
            .name
            .as_deref()
            .map(|n| GroupName::parse("name", n))
            .transpose()?;
        let parent = parent_id(body.parent_id.as_deref())?;
        let op = ctx.op(&auth);
        Ok(Written::at(
            ctx.app.update_group(&op, &ws, id, name, parent).await?,
        ))
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
    ) -> ApiResult<Json<Written>> {
        let (ws, id) = ids(&ws_id, &group)?;
        Ok(Written::at(
            ctx.app.delete_group(&ctx.op(&auth), &ws, id).await?,
        ))
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<MemberAdded> {
        let (ws, id) = ids(&ws_id, &group)?;
        let member =
            UserId::parse(&body.user_id).map_err(|_| Error::invalid("user_id", "not a user id"))?;
        let position = ctx
            .app
            .add_group_member(&ctx.op(&auth), &ws, id, member)
            .await?;
        Ok(MemberAdded::Created(Written::at(position)))
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
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^hxb-usr-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<GroupMember>>> {
        let (ws, id) = ids(&ws_id, &group)?;
        let page = page::request(limit.0, cursor.0.as_deref(), UserId::parse)?;
        let op = ctx.op(&auth);
        Ok(List::of(
            ctx.app
                .group_members(&op, &ws, &id, page, position.0)
                .await?,
        ))
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
    ) -> ApiResult<Json<Written>> {
        let (ws, id) = ids(&ws_id, &group)?;
        let member = UserId::parse(&member)?;
        Ok(Written::at(
            ctx.app
                .remove_group_member(&ctx.op(&auth), &ws, id, member)
                .await?,
        ))
    }
}
