use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{GroupId, OrganizationId, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkspaceEvent {
    /// The workspace exists in state `Requested`, with its preset groups; the requester is in
    /// `WSAdmins`.
    WorkspaceRequested {
        id: WorkspaceId,
        org_id: OrganizationId,
        name: String,
        plan: String,
        requested_by: UserId,
        members_group: GroupId,
        admins_group: GroupId,
    },
    WorkspaceRenamed {
        name: String,
    },
    WorkspacePlanChanged {
        plan: String,
    },
    WorkspaceDeletionRequested {
        requested_by: UserId,
    },
}

impl DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        match self {
            WorkspaceEvent::WorkspaceRequested { .. } => "WorkspaceRequested",
            WorkspaceEvent::WorkspaceRenamed { .. } => "WorkspaceRenamed",
            WorkspaceEvent::WorkspacePlanChanged { .. } => "WorkspacePlanChanged",
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => "WorkspaceDeletionRequested",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
