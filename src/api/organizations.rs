//! `/api/v1/organizations`: organizations and their members, each handler a parse, one call
//! of the application layer, and the answer.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_command::policy::OrgRole;
use hexabase_command::values::{DisplayName, Email};
use hexabase_command::{OrganizationId, UserId};
use hexabase_query::organization::{InvitationRow, MemberProfileRow, MemberRow, OrganizationRow};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::page::{self, List};
use super::security::SignedIn;
use super::written::Written;
use crate::app;

#[derive(Tags)]
enum ApiTags {
    /// Organizations: the billing and management units.
    Organizations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

impl From<Role> for OrgRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => OrgRole::Admin,
            Role::Member => OrgRole::Member,
        }
    }
}

fn role_from_str(role: &str) -> Role {
    match OrgRole::parse(role) {
        Some(OrgRole::Admin) => Role::Admin,
        _ => Role::Member,
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CreateOrganization {
    /// Display name, 1–100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct UpdateOrganization {
    /// New display name, 1–100 characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct InviteUser {
    /// Address the invitation is for; accepting requires a login with this verified email.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,63})*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: Text,
    /// Role the user gets on accepting (default `member`).
    pub role: Option<Role>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct ChangeRole {
    /// The member's new role.
    pub role: Role,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller's role in this organization.
    pub role: Role,
}

impl From<OrganizationRow> for OrganizationView {
    fn from(row: OrganizationRow) -> Self {
        Self {
            role: role_from_str(&row.role),
            id: row.id,
            name: row.name,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
    pub since: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Self {
            user_id: row.user_id,
            role: role_from_str(&row.role),
            since: row.since,
        }
    }
}

/// A member as listed, with the email and name of their latest sign-in (null until they first
/// sign in).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrganizationMember {
    #[oai(flatten)]
    pub member: Member,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl From<MemberProfileRow> for OrganizationMember {
    fn from(row: MemberProfileRow) -> Self {
        Self {
            member: row.member.into(),
            email: row.email,
            display_name: row.display_name,
        }
    }
}

/// A member's role after a change.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChangedMember {
    pub user_id: String,
    pub role: Role,
    /// Position of the `MemberRoleChanged` event (of the latest event, when the member already
    /// had the role and nothing was recorded).
    pub position: Option<i64>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub invited_at: DateTime<Utc>,
}

impl From<InvitationRow> for Invitation {
    fn from(row: InvitationRow) -> Self {
        Self {
            email: row.email,
            role: role_from_str(&row.role),
            invited_by: row.invited_by,
            invited_at: row.invited_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrganizationDetail {
    #[oai(flatten)]
    pub organization: OrganizationView,
    pub members: Vec<Member>,
    /// Pending invitations (shown to admins only; empty for members).
    pub invitations: Vec<Invitation>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedOrganization {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Position of the `OrganizationCreated` event.
    pub position: i64,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedInvitation {
    pub email: String,
    pub role: Role,
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum CreateOrganizationResponse {
    /// The organization exists; the caller is its admin.
    #[oai(status = 201)]
    Created(
        Json<CreatedOrganization>,
        #[oai(header = "Location")] String,
    ),
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AcceptedInvitation {
    /// The organization the caller now belongs to, with the invited role.
    pub org_id: String,
    /// Position of the `InvitationAccepted` event.
    pub position: i64,
}

#[derive(ApiResponse)]
pub enum InviteResponse {
    /// The invitation is recorded.
    #[oai(status = 201)]
    Created(Json<CreatedInvitation>),
}

impl From<app::OrganizationDetail> for OrganizationDetail {
    fn from(detail: app::OrganizationDetail) -> Self {
        Self {
            organization: detail.organization.into(),
            members: detail.members.into_iter().map(Into::into).collect(),
            invitations: detail.invitations.into_iter().map(Into::into).collect(),
        }
    }
}

pub struct OrganizationsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Organizations")]
impl OrganizationsApi {
    /// Create an organization; the caller becomes its admin.
    #[oai(
        path = "/organizations",
        method = "post",
        operation_id = "createOrganization"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        body: Json<CreateOrganization>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<CreateOrganizationResponse> {
        let name = DisplayName::parse("name", &body.name)?;
        let id = OrganizationId::generate();
        let position = ctx
            .app
            .create_organization(&ctx.op(&auth), &id, name.clone())
            .await?;
        Ok(CreateOrganizationResponse::Created(
            Json(CreatedOrganization {
                id: id.to_string(),
                name: name.to_string(),
                role: Role::Admin,
                position,
            }),
            format!("/api/v1/organizations/{id}"),
        ))
    }

    /// List the organizations the caller belongs to, oldest first.
    #[oai(
        path = "/organizations",
        method = "get",
        operation_id = "listOrganizations"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^org-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<OrganizationView>>> {
        let page = page::request(limit.0, cursor.0.as_deref(), OrganizationId::parse)?;
        let rows = ctx
            .app
            .list_organizations(&ctx.op(&auth), page, position.0)
            .await?;
        Ok(List::of(rows))
    }

    /// One organization with its members (and, for admins, pending invitations).
    #[oai(
        path = "/organizations/:org_id",
        method = "get",
        operation_id = "getOrganization"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<OrganizationDetail>> {
        let org = OrganizationId::parse(&org_id)?;
        let detail = ctx
            .app
            .organization(&ctx.op(&auth), &org, position.0)
            .await?;
        Ok(Json(detail.into()))
    }

    /// Rename an organization (admins).
    #[oai(
        path = "/organizations/:org_id",
        method = "patch",
        operation_id = "updateOrganization"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        body: Json<UpdateOrganization>,
    ) -> ApiResult<Json<Written>> {
        let org = OrganizationId::parse(&org_id)?;
        let name = DisplayName::parse("name", &body.name)?;
        Ok(Written::at(
            ctx.app
                .rename_organization(&ctx.op(&auth), &org, name)
                .await?,
        ))
    }

    /// Delete an organization (admins); refused while it has workspaces. Afterwards it is gone
    /// for everyone.
    #[oai(
        path = "/organizations/:org_id",
        method = "delete",
        operation_id = "deleteOrganization"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let org = OrganizationId::parse(&org_id)?;
        Ok(Written::at(
            ctx.app.delete_organization(&ctx.op(&auth), &org).await?,
        ))
    }

    /// The organization's members by user id, with the email and name they signed in with.
    #[oai(
        path = "/organizations/:org_id/users",
        method = "get",
        operation_id = "listMembers"
    )]
    async fn list_members(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Page size, 1–100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^hxb-usr-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<List<OrganizationMember>>> {
        let org = OrganizationId::parse(&org_id)?;
        let page = page::request(limit.0, cursor.0.as_deref(), UserId::parse)?;
        let rows = ctx
            .app
            .members(&ctx.op(&auth), &org, page, position.0)
            .await?;
        Ok(List::of(rows))
    }

    /// Invite a user by email (admins).
    #[oai(
        path = "/organizations/:org_id/users",
        method = "post",
        operation_id = "inviteUser"
    )]
    async fn invite(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        body: Json<InviteUser>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<InviteResponse> {
        let org = OrganizationId::parse(&org_id)?;
        let email = Email::parse("email", &body.email)?;
        let role = body.role.unwrap_or(Role::Member);
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .invite(&op, &org, email.clone(), role.into())
            .await?;
        Ok(InviteResponse::Created(Json(CreatedInvitation {
            email: email.to_string(),
            role,
            position,
        })))
    }

    /// Accept the invitation sent to the caller's email: the email of the caller's latest
    /// sign-in, which their identity provider verified, must be the invited one.
    #[oai(
        path = "/organizations/:org_id/invitations/accept",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept_invitation(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<AcceptedInvitation>> {
        let org = OrganizationId::parse(&org_id)?;
        let position = ctx.app.accept_invitation(&ctx.op(&auth), &org).await?;
        Ok(Json(AcceptedInvitation {
            org_id: org.to_string(),
            position,
        }))
    }

    /// Remove a member (admins; the last admin cannot be removed).
    #[oai(
        path = "/organizations/:org_id/users/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove_member(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "user_id")] user_id: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let (org, user) = (OrganizationId::parse(&org_id)?, UserId::parse(&user_id)?);
        Ok(Written::at(
            ctx.app.remove_member(&ctx.op(&auth), &org, user).await?,
        ))
    }

    /// Change a member's role (admins; the last admin cannot be demoted).
    #[oai(
        path = "/organizations/:org_id/users/:user_id",
        method = "patch",
        operation_id = "changeMemberRole"
    )]
    async fn change_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "user_id")] user_id: Path<String>,
        body: Json<ChangeRole>,
    ) -> ApiResult<Json<ChangedMember>> {
        let (org, user) = (OrganizationId::parse(&org_id)?, UserId::parse(&user_id)?);
        let op = ctx.op(&auth);
        let position = ctx
            .app
            .change_member_role(&op, &org, user.clone(), body.role.into())
            .await?;
        Ok(Json(ChangedMember {
            user_id: user.to_string(),
            role: body.role,
            position,
        }))
    }
}
