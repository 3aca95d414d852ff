use crate::id::{OrganizationId, UserId};
use crate::policy::OrgRole;
use crate::values::{DisplayName, Email};

/// Every command names its actor: the aggregate decides, through `policy`, whether the actor may.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    CreateOrganization {
        id: OrganizationId,
        name: DisplayName,
        actor: UserId,
    },
    RenameOrganization {
        name: DisplayName,
        actor: UserId,
    },
    InviteUser {
        email: Email,
        role: OrgRole,
        actor: UserId,
    },
    RemoveMember {
        user_id: UserId,
        actor: UserId,
    },
    /// The actor takes up the invitation sent to `email`, which their identity provider
    /// verified they control.
    AcceptInvitation {
        verified_email: Email,
        actor: UserId,
    },
}
