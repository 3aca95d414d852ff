use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{OrganizationId, UserId, WorkspaceId};
use crate::policy::OrgRole;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    /// The creator becomes the organization's first admin.
    OrganizationCreated {
        id: OrganizationId,
        name: String,
        created_by: UserId,
    },
    OrganizationRenamed {
        name: String,
    },
    UserInvited {
        email: String,
        role: OrgRole,
        invited_by: UserId,
    },
    MemberRemoved {
        user_id: UserId,
    },
    InvitationAccepted {
        email: String,
        user_id: UserId,
        role: OrgRole,
    },
    MemberRoleChanged {
        user_id: UserId,
        role: OrgRole,
    },
    OrganizationDeleted {
        deleted_by: UserId,
    },
    WorkspaceAttached {
        workspace_id: WorkspaceId,
    },
    WorkspaceDetached {
        workspace_id: WorkspaceId,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            OrganizationEvent::OrganizationCreated { .. } => "OrganizationCreated",
            OrganizationEvent::OrganizationRenamed { .. } => "OrganizationRenamed",
            OrganizationEvent::UserInvited { .. } => "UserInvited",
            OrganizationEvent::MemberRemoved { .. } => "MemberRemoved",
            OrganizationEvent::InvitationAccepted { .. } => "InvitationAccepted",
            OrganizationEvent::MemberRoleChanged { .. } => "MemberRoleChanged",
            OrganizationEvent::OrganizationDeleted { .. } => "OrganizationDeleted",
            OrganizationEvent::WorkspaceAttached { .. } => "WorkspaceAttached",
            OrganizationEvent::WorkspaceDetached { .. } => "WorkspaceDetached",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
