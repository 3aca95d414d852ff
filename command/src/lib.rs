//! Write side of the control plane.
//!
//! Aggregates are pure: everything they need arrives in the command, and they answer with events.
//! The event store appends those events through postgres-es; a trigger writes the outbox row in
//! the same transaction, and every event carries metadata hash-chained to its predecessor.

pub mod credential;
pub mod id;
pub mod keyring;
pub mod metadata;
pub mod organization;
pub mod policy;
pub mod rbac;
pub mod store;
pub mod stripe_event;
pub mod user;
pub mod values;
pub mod workspace;

pub use id::{
    ClusterRoleAssignmentId, GroupId, NodeRequestId, OrganizationId, ProjectId, RoleAssignmentId,
    RoleId, TaskId, UserId, WorkspaceId,
};
pub use metadata::CommandMetadata;
