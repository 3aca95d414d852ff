//! `/api/v1/organizations`: thin handlers. Each parses input into domain values, runs one
//! command or one query, and shapes the answer.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hexabase_command::organization::{Organization, OrganizationCommand};
use hexabase_command::policy::{self, Decision, OrgAction, OrgRole};
use hexabase_command::store::{self, head_position, load_state, with_position};
use hexabase_command::user::User;
use hexabase_command::values::{DisplayName, Email};
use hexabase_command::{CommandMetadata, OrganizationId, UserId};
use hexabase_projector::{audit, organization as org_projection};
use hexabase_query::audit::{AuditEventRow, AuditFilter};
use hexabase_query::organization::{InvitationRow, MemberProfileRow, MemberRow, OrganizationRow};
use hexabase_query::{audit as audit_query, organization as org_query};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::page;
use super::security::SignedIn;

#[derive(Tags)]
enum ApiTags {
    /// Organizations: the billing and management units.
    Organizations,
    /// Event history for auditors.
    Audit,
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
#[oai(deny_unknown_fields)]
pub struct CreateOrganization {
    /// Display name, 1–100 characters.
    #[oai(validator(max_length = 200))]
    pub name: String,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// New display name, 1–100 characters.
    #[oai(validator(max_length = 200))]
    pub name: String,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct InviteUser {
    /// Address the invitation is for; accepting requires a login with this verified email.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Role the user gets on accepting (default `member`).
    pub role: Option<Role>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangeRole {
    /// The member's new role.
    pub role: Role,
}

#[derive(Debug, Object)]
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

#[derive(Debug, Object)]
pub struct MemberList {
    pub items: Vec<OrganizationMember>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member's role after a change.
#[derive(Debug, Object)]
pub struct ChangedMember {
    pub user_id: String,
    pub role: Role,
    /// Position of the `MemberRoleChanged` event (of the latest event, when the member already
    /// had the role and nothing was recorded).
    pub position: Option<i64>,
}

#[derive(Debug, Object)]
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
pub struct OrganizationDetail {
    #[oai(flatten)]
    pub organization: OrganizationView,
    pub members: Vec<Member>,
    /// Pending invitations (shown to admins only; empty for members).
    pub invitations: Vec<Invitation>,
}

#[derive(Debug, Object)]
pub struct OrganizationList {
    pub items: Vec<OrganizationView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The result of a write: committed when returned.
#[derive(Debug, Object)]
pub struct Written {
    /// Position of the last event the write recorded. Pass it as `position` to a read to see
    /// the write reflected (the read waits briefly for the read model).
    pub position: Option<i64>,
}

#[derive(Debug, Object)]
pub struct CreatedOrganization {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Position of the `OrganizationCreated` event.
    pub position: i64,
}

#[derive(Debug, Object)]
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

#[derive(Debug, Object)]
pub struct AuditEvent {
    /// Global position; also the paging cursor.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    /// User who caused the event.
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(row: AuditEventRow) -> Self {
        Self {
            position: row.position,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            payload: row.payload,
            actor: row.actor,
            request_id: row.request_id,
            correlation_id: row.correlation_id,
            causation_id: row.causation_id,
            occurred_at: row.occurred_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct AuditEventList {
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

pub struct OrganizationsApi;

async fn execute(
    ctx: &Ctx,
    org: &OrganizationId,
    command: OrganizationCommand,
    metadata: CommandMetadata,
) -> ApiResult<Option<i64>> {
    let (result, position) = with_position(ctx.state.organizations.execute_with_metadata(
        org.as_str(),
        command,
        metadata.into_map(),
    ))
    .await;
    result?;
    match position {
        Some(position) => Ok(Some(position)),
        // Nothing was appended (the command changed nothing): the aggregate's latest event.
        None => Ok(head_position(&ctx.state.pool, Organization::TYPE, org.as_str()).await?),
    }
}

/// When the caller asked to read its own write: wait for `projection` to reach `position` and,
/// for reads of one organization, for its member list (which authorizes them) to reflect
/// everything recorded up to there.
async fn consistent(
    ctx: &Ctx,
    projection: &str,
    org: Option<&OrganizationId>,
    position: Option<i64>,
) -> ApiResult<()> {
    if let Some(position) = position {
        ctx.state.wait_for(projection, position).await?;
        if let Some(org) = org {
            ctx.state.wait_for_organization(org, position).await?;
        }
    }
    Ok(())
}

/// The caller's role from the read model, checked against `action` by the policy.
async fn authorize(
    ctx: &Ctx,
    org: &OrganizationId,
    user: &UserId,
    action: OrgAction,
) -> ApiResult<()> {
    let role = org_query::role_of(&ctx.state.pool, org, user).await?;
    match policy::decide(role, action) {
        Decision::Allowed => Ok(()),
        Decision::Forbidden => Err(ApiError::forbidden("only organization admins may do this")),
        Decision::NotFound => Err(ApiError::not_found("organization not found")),
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl OrganizationsApi {
    /// Create an organization; the caller becomes its admin.
    #[oai(
        path = "/organizations",
        method = "post",
        operation_id = "createOrganization",
        tag = "ApiTags::Organizations"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        body: Json<CreateOrganization>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<CreateOrganizationResponse> {
        let name = DisplayName::parse("name", &body.name)?;
        let id = OrganizationId::generate();
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::CreateOrganization {
            id: id.clone(),
            name: name.clone(),
            actor: auth.principal().user.clone(),
        };
        let (result, position) = with_position(store::create(
            &ctx.state.new_organizations,
            id.as_str(),
            command,
            &(),
            metadata.into_map(),
        ))
        .await;
        result?;
        let position = position.unwrap_or_default();
        let location = format!("/api/v1/organizations/{id}");
        Ok(CreateOrganizationResponse::Created(
            Json(CreatedOrganization {
                id: id.to_string(),
                name: name.to_string(),
                role: Role::Admin,
                position,
            }),
            location,
        ))
    }

    /// List the organizations the caller belongs to, oldest first.
    #[oai(
        path = "/organizations",
        method = "get",
        operation_id = "listOrganizations",
        tag = "ApiTags::Organizations"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<OrganizationList>> {
        consistent(&ctx, org_projection::NAME, None, position.0).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), OrganizationId::parse)?;
        let rows = org_query::list_for_user(
            &ctx.state.pool,
            &auth.principal().user,
            after.as_ref(),
            limit,
        )
        .await?;
        Ok(Json(OrganizationList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// One organization with its members (and, for admins, pending invitations).
    #[oai(
        path = "/organizations/:org_id",
        method = "get",
        operation_id = "getOrganization",
        tag = "ApiTags::Organizations"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<OrganizationDetail>> {
        let org = OrganizationId::parse(&org_id)?;
        consistent(&ctx, org_projection::NAME, Some(&org), position.0).await?;
        let row = org_query::get_for_user(&ctx.state.pool, &org, &auth.principal().user)
            .await?
            .ok_or_else(|| ApiError::not_found("organization not found"))?;
        let members = org_query::members(&ctx.state.pool, &org).await?;
        let invitations = match policy::decide(OrgRole::parse(&row.role), OrgAction::Invite) {
            Decision::Allowed => org_query::invitations(&ctx.state.pool, &org).await?,
            _ => Vec::new(),
        };
        Ok(Json(OrganizationDetail {
            organization: row.into(),
            members: members.into_iter().map(Into::into).collect(),
            invitations: invitations.into_iter().map(Into::into).collect(),
        }))
    }

    /// Rename an organization (admins).
    #[oai(
        path = "/organizations/:org_id",
        method = "patch",
        operation_id = "updateOrganization",
        tag = "ApiTags::Organizations"
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
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::RenameOrganization {
            name,
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &org, command, metadata).await?;
        Ok(Json(Written { position }))
    }

    /// Delete an organization (admins); refused while it has workspaces. Afterwards it is gone
    /// for everyone.
    #[oai(
        path = "/organizations/:org_id",
        method = "delete",
        operation_id = "deleteOrganization",
        tag = "ApiTags::Organizations"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let org = OrganizationId::parse(&org_id)?;
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::DeleteOrganization {
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &org, command, metadata).await?;
        Ok(Json(Written { position }))
    }

    /// The organization's members by user id, with the email and name they signed in with.
    #[oai(
        path = "/organizations/:org_id/users",
        method = "get",
        operation_id = "listMembers",
        tag = "ApiTags::Organizations"
    )]
    async fn list_members(
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
    ) -> ApiResult<Json<MemberList>> {
        let org = OrganizationId::parse(&org_id)?;
        consistent(&ctx, org_projection::NAME, Some(&org), position.0).await?;
        authorize(&ctx, &org, &auth.principal().user, OrgAction::Read).await?;
        let limit = page::limit(limit.0)?;
        let after = page::id_cursor(cursor.0.as_deref(), UserId::parse)?;
        let rows = org_query::members_page(&ctx.state.pool, &org, after.as_ref(), limit).await?;
        Ok(Json(MemberList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }

    /// Invite a user by email (admins).
    #[oai(
        path = "/organizations/:org_id/users",
        method = "post",
        operation_id = "inviteUser",
        tag = "ApiTags::Organizations"
    )]
    async fn invite(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        body: Json<InviteUser>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<InviteResponse> {
        let org = OrganizationId::parse(&org_id)?;
        let email = Email::parse("email", &body.email)?;
        let role = body.role.unwrap_or(Role::Member);
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::InviteUser {
            email: email.clone(),
            role: role.into(),
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &org, command, metadata)
            .await?
            .unwrap_or_default();
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
        operation_id = "acceptInvitation",
        tag = "ApiTags::Organizations"
    )]
    async fn accept_invitation(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<AcceptedInvitation>> {
        let org = OrganizationId::parse(&org_id)?;
        let user = &auth.principal().user;
        let state: User = load_state(&ctx.state.pool, user.as_str())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let email = state.verified_email().ok_or_else(|| {
            ApiError::forbidden(
                "your sign-in did not come with a verified email address, so no invitation can \
                 be accepted",
            )
        })?;
        let command = OrganizationCommand::AcceptInvitation {
            verified_email: Email::parse("email", email)?,
            actor: user.clone(),
        };
        let metadata = ctx.metadata(auth.principal());
        let position = execute(&ctx, &org, command, metadata)
            .await?
            .unwrap_or_default();
        Ok(Json(AcceptedInvitation {
            org_id: org.to_string(),
            position,
        }))
    }

    /// Remove a member (admins; the last admin cannot be removed).
    #[oai(
        path = "/organizations/:org_id/users/:user_id",
        method = "delete",
        operation_id = "removeMember",
        tag = "ApiTags::Organizations"
    )]
    async fn remove_member(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "user_id")] user_id: Path<String>,
    ) -> ApiResult<Json<Written>> {
        let org = OrganizationId::parse(&org_id)?;
        let user = UserId::parse(&user_id)?;
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::RemoveMember {
            user_id: user,
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &org, command, metadata).await?;
        Ok(Json(Written { position }))
    }

    /// Change a member's role (admins; the last admin cannot be demoted).
    #[oai(
        path = "/organizations/:org_id/users/:user_id",
        method = "patch",
        operation_id = "changeMemberRole",
        tag = "ApiTags::Organizations"
    )]
    async fn change_role(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        #[oai(name = "user_id")] user_id: Path<String>,
        body: Json<ChangeRole>,
    ) -> ApiResult<Json<ChangedMember>> {
        let org = OrganizationId::parse(&org_id)?;
        let user = UserId::parse(&user_id)?;
        let metadata = ctx.metadata(auth.principal());
        let command = OrganizationCommand::ChangeMemberRole {
            user_id: user.clone(),
            role: body.role.into(),
            actor: auth.principal().user.clone(),
        };
        let position = execute(&ctx, &org, command, metadata).await?;
        Ok(Json(ChangedMember {
            user_id: user.to_string(),
            role: body.role,
            position,
        }))
    }

    /// The organization's event history, oldest first (admins).
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/organizations/:org_id/events",
        method = "get",
        operation_id = "listOrganizationEvents",
        tag = "ApiTags::Audit"
    )]
    async fn events(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Page size, 1–100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only events of this aggregate type (e.g. `Organization`).
        aggregate_type: Query<Option<String>>,
        /// Only events of this aggregate.
        aggregate_id: Query<Option<String>>,
        /// Only events that occurred at or after this time.
        since: Query<Option<DateTime<Utc>>>,
        /// Only events that occurred before this time.
        until: Query<Option<DateTime<Utc>>>,
        /// Wait until the event at this position is reflected.
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<AuditEventList>> {
        let org = OrganizationId::parse(&org_id)?;
        consistent(&ctx, audit::NAME, Some(&org), position.0).await?;
        authorize(&ctx, &org, &auth.principal().user, OrgAction::ReadHistory).await?;
        let limit = page::limit(limit.0)?;
        let after = page::position_cursor(cursor.0.as_deref())?;
        let filter = AuditFilter {
            aggregate_type: page::text_filter("aggregate_type", aggregate_type.0)?,
            aggregate_id: page::text_filter("aggregate_id", aggregate_id.0)?,
            since: page::time_filter("since", since.0)?,
            until: page::time_filter("until", until.0)?,
        };
        let rows = audit_query::history(&ctx.state.pool, &org, &filter, after, limit).await?;
        Ok(Json(AuditEventList {
            items: rows.items.into_iter().map(Into::into).collect(),
            next_cursor: rows.next,
        }))
    }
}
