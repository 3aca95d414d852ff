use crate::id::{GroupId, OrganizationId, UserId, WorkspaceId};
use crate::values::DisplayName;

/// Commands arrive authorized (the API asks `policy` first); the aggregate keeps the
/// workspace's own rules.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceCommand {
    RequestWorkspace {
        id: WorkspaceId,
        org_id: OrganizationId,
        name: DisplayName,
        plan: String,
        /// Ids for the preset groups.
        members_group: GroupId,
        admins_group: GroupId,
        actor: UserId,
    },
    RenameWorkspace {
        name: DisplayName,
    },
    ChangePlan {
        plan: String,
    },
    RequestDeletion {
        actor: UserId,
    },
}
