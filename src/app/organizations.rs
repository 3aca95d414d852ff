//! Organizations and their members: create, read, rename, delete; invite, accept, change
//! roles, remove. Commands decide on the Organization aggregate; reads come from the
//! organizations read model.

use hexabase_command::organization::OrganizationCommand;
use hexabase_command::policy::{self, Decision, OrgAction, OrgRole};
use hexabase_command::store::{self, load_state, with_position};
use hexabase_command::user::User;
use hexabase_command::values::{DisplayName, Email};
use hexabase_command::{OrganizationId, UserId};
use hexabase_projector::organization as org_projection;
use hexabase_query::organization::{
    self as org_query, InvitationRow, MemberProfileRow, MemberRow, OrganizationRow,
};
use hexabase_query::Page;

use super::{App, OpContext, PageRequest};
use crate::error::{Error, Result};

/// One organization as a member sees it.
pub struct OrganizationDetail {
    pub organization: OrganizationRow,
    pub members: Vec<MemberRow>,
    /// Pending invitations: for admins only (empty for members).
    pub invitations: Vec<InvitationRow>,
}

impl App {
    /// Create an organization with the caller as its admin; the position of its event.
    pub async fn create_organization(
        &self,
        op: &OpContext,
        id: &OrganizationId,
        name: DisplayName,
    ) -> Result<i64> {
        let command = OrganizationCommand::CreateOrganization {
            id: id.clone(),
            name,
            actor: op.user().clone(),
        };
        let (result, position) = with_position(store::create(
            &self.new_organizations,
            id.as_str(),
            command,
            &(),
            op.metadata().into_map(),
        ))
        .await;
        result?;
        Ok(position.unwrap_or_default())
    }

    /// The organizations the caller belongs to, oldest first.
    pub async fn list_organizations(
        &self,
        op: &OpContext,
        page: PageRequest<OrganizationId>,
        position: Option<i64>,
    ) -> Result<Page<OrganizationRow>> {
        self.consistent(org_projection::NAME, None, position)
            .await?;
        Ok(
            org_query::list_for_user(&self.pool, op.user(), page.after.as_ref(), page.limit)
                .await?,
        )
    }

    /// One organization with its members and, for admins, its pending invitations.
    pub async fn organization(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        position: Option<i64>,
    ) -> Result<OrganizationDetail> {
        self.consistent(org_projection::NAME, Some(org), position)
            .await?;
        let organization = org_query::get_for_user(&self.pool, org, op.user())
            .await?
            .ok_or_else(|| Error::not_found("organization not found"))?;
        let members = org_query::members(&self.pool, org).await?;
        let invitations =
            match policy::decide(OrgRole::parse(&organization.role), OrgAction::Invite) {
                Decision::Allowed => org_query::invitations(&self.pool, org).await?,
                _ => Vec::new(),
            };
        Ok(OrganizationDetail {
            organization,
            members,
            invitations,
        })
    }

    pub async fn rename_organization(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        name: DisplayName,
    ) -> Result<Option<i64>> {
        let command = OrganizationCommand::RenameOrganization {
            name,
            actor: op.user().clone(),
        };
        self.execute_organization(org, command, op.metadata()).await
    }

    /// Delete the organization (refused while it has workspaces).
    pub async fn delete_organization(
        &self,
        op: &OpContext,
        org: &OrganizationId,
    ) -> Result<Option<i64>> {
        let command = OrganizationCommand::DeleteOrganization {
            actor: op.user().clone(),
        };
        self.execute_organization(org, command, op.metadata()).await
    }

    /// The members, by user id, with the profile of their latest sign-in.
    pub async fn members(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        page: PageRequest<UserId>,
        position: Option<i64>,
    ) -> Result<Page<MemberProfileRow>> {
        self.consistent(org_projection::NAME, Some(org), position)
            .await?;
        self.authorize_org(org, op.user(), OrgAction::Read).await?;
        Ok(org_query::members_page(&self.pool, org, page.after.as_ref(), page.limit).await?)
    }

    /// Invite `email` with `role`; the position of the invitation's event.
    pub async fn invite(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        email: Email,
        role: OrgRole,
    ) -> Result<i64> {
        let command = OrganizationCommand::InviteUser {
            email,
            role,
            actor: op.user().clone(),
        };
        let position = self
            .execute_organization(org, command, op.metadata())
            .await?;
        Ok(position.unwrap_or_default())
    }

    /// Accept the invitation sent to the verified email of the caller's latest sign-in.
    pub async fn accept_invitation(&self, op: &OpContext, org: &OrganizationId) -> Result<i64> {
        let user: User = load_state(&self.pool, op.user().as_str()).await?;
        let email = user.verified_email().ok_or_else(|| {
            Error::forbidden(
                "your sign-in did not come with a verified email address, so no invitation can \
                 be accepted",
            )
        })?;
        let command = OrganizationCommand::AcceptInvitation {
            verified_email: Email::parse("email", email)?,
            actor: op.user().clone(),
        };
        let position = self
            .execute_organization(org, command, op.metadata())
            .await?;
        Ok(position.unwrap_or_default())
    }

    /// Remove a member (never the last admin).
    pub async fn remove_member(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        member: UserId,
    ) -> Result<Option<i64>> {
        let command = OrganizationCommand::RemoveMember {
            user_id: member,
            actor: op.user().clone(),
        };
        self.execute_organization(org, command, op.metadata()).await
    }

    /// Change a member's role (never demoting the last admin).
    pub async fn change_member_role(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        member: UserId,
        role: OrgRole,
    ) -> Result<Option<i64>> {
        let command = OrganizationCommand::ChangeMemberRole {
            user_id: member,
            role,
            actor: op.user().clone(),
        };
        self.execute_organization(org, command, op.metadata()).await
    }
}
