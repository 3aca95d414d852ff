//! The Workspace aggregate: one vCluster of an organization, with its groups.
//!
//! A workspace is requested by an organization admin and then provisioned by sagas (later);
//! its lifecycle is Requested → Provisioning → Ready (⇄ Suspending → Suspended → Resuming) →
//! Deleting → Deleted, or Failed with a reason. It may have nodes of its own (`nodes`). Every workspace starts with two preset groups: `WorkspaceMembers` and, below
//! it, `WSAdmins` with the creator in it (membership of a group implies membership of its
//! ancestors).

mod aggregate;
mod commands;
mod events;
mod groups;
mod lifecycle;
mod nodes;
mod projects;
mod rbac;
mod snapshot;
#[cfg(test)]
mod test_support;

pub use aggregate::{Workspace, WorkspaceError, WorkspaceStatus};
pub use commands::WorkspaceCommand;
pub use events::WorkspaceEvent;
pub use nodes::MAX_PER_REQUEST as MAX_NODES_PER_REQUEST;
pub use snapshot::{
    AssignmentState, ClusterAssignmentState, ClusterState, ProjectState, RoleState,
};

/// Name of the preset group every member of the workspace belongs to.
pub const MEMBERS_GROUP: &str = "WorkspaceMembers";
/// Name of the preset group of the workspace's administrators (a child of `MEMBERS_GROUP`).
pub const ADMINS_GROUP: &str = "WSAdmins";
