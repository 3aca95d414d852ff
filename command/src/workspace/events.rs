use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{
    ClusterRoleAssignmentId, GroupId, NodeRequestId, OrganizationId, ProjectId, RoleAssignmentId,
    RoleId, UserId, WorkspaceId,
};
use crate::rbac::{PolicyRule, PresetRole, RoleRef};

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
    GroupCreated {
        id: GroupId,
        name: String,
        parent: Option<GroupId>,
    },
    GroupRenamed {
        id: GroupId,
        name: String,
    },
    GroupMoved {
        id: GroupId,
        parent: GroupId,
    },
    GroupDeleted {
        id: GroupId,
    },
    GroupMemberAdded {
        group: GroupId,
        user: UserId,
    },
    GroupMemberRemoved {
        group: GroupId,
        user: UserId,
    },
    ProjectCreated {
        id: ProjectId,
        name: String,
        parent: Option<ProjectId>,
    },
    ProjectMoved {
        id: ProjectId,
        parent: Option<ProjectId>,
    },
    /// The project's roles and role assignments end with it.
    ProjectDeleted {
        id: ProjectId,
    },
    RoleCreated {
        project: ProjectId,
        id: RoleId,
        name: String,
        rules: Vec<PolicyRule>,
    },
    RoleRulesChanged {
        project: ProjectId,
        id: RoleId,
        rules: Vec<PolicyRule>,
    },
    RoleDeleted {
        project: ProjectId,
        id: RoleId,
    },
    RoleAssigned {
        project: ProjectId,
        id: RoleAssignmentId,
        group: GroupId,
        role: RoleRef,
    },
    RoleUnassigned {
        project: ProjectId,
        id: RoleAssignmentId,
    },
    ClusterRoleAssigned {
        id: ClusterRoleAssignmentId,
        group: GroupId,
        role: PresetRole,
    },
    ClusterRoleUnassigned {
        id: ClusterRoleAssignmentId,
    },
    EndpointAssigned {
        server: String,
        ca_pem: String,
    },
    /// A saga (`task`) started creating the workspace's cluster.
    WorkspaceProvisioningStarted {
        task: String,
    },
    /// The cluster is up, trusts the control plane, and holds the workspace's namespaces,
    /// quotas and RBAC.
    WorkspaceProvisioned,
    /// A step of one of the workspace's sagas (provisioning, deletion) failed for good
    /// (permanently, or after its last retry); the saga undoes what it had done.
    WorkspaceStepFailed {
        task: String,
        step: String,
        reason: String,
    },
    /// Provisioning gave up; what it had created is gone again.
    WorkspaceProvisioningFailed {
        reason: String,
    },
    /// The cluster and its data are gone.
    WorkspaceDeleted,
    /// The cluster is to stop, its data kept (`requested_by` `None`: by the control plane).
    WorkspaceSuspensionRequested {
        requested_by: Option<UserId>,
        reason: Option<String>,
    },
    /// The cluster's control plane is stopped.
    WorkspaceSuspended,
    /// The suspended cluster is to start again.
    WorkspaceResumptionRequested {
        requested_by: Option<UserId>,
    },
    /// The cluster answers again, with its data and endpoint.
    WorkspaceResumed,
    DedicatedNodesRequested {
        request: NodeRequestId,
        count: u32,
        requested_by: UserId,
    },
    /// The host nodes now labelled and tainted as the workspace's pool.
    DedicatedNodesAssigned {
        request: NodeRequestId,
        nodes: Vec<String>,
    },
    DedicatedNodesRequestFailed {
        request: NodeRequestId,
        reason: String,
    },
    DedicatedNodeReleased {
        node: String,
        released_by: UserId,
    },
}

impl DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        match self {
            WorkspaceEvent::WorkspaceRequested { .. } => "WorkspaceRequested",
            WorkspaceEvent::WorkspaceRenamed { .. } => "WorkspaceRenamed",
            WorkspaceEvent::WorkspacePlanChanged { .. } => "WorkspacePlanChanged",
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => "WorkspaceDeletionRequested",
            WorkspaceEvent::GroupCreated { .. } => "GroupCreated",
            WorkspaceEvent::GroupRenamed { .. } => "GroupRenamed",
            WorkspaceEvent::GroupMoved { .. } => "GroupMoved",
            WorkspaceEvent::GroupDeleted { .. } => "GroupDeleted",
            WorkspaceEvent::GroupMemberAdded { .. } => "GroupMemberAdded",
            WorkspaceEvent::GroupMemberRemoved { .. } => "GroupMemberRemoved",
            WorkspaceEvent::ProjectCreated { .. } => "ProjectCreated",
            WorkspaceEvent::ProjectMoved { .. } => "ProjectMoved",
            WorkspaceEvent::ProjectDeleted { .. } => "ProjectDeleted",
            WorkspaceEvent::RoleCreated { .. } => "RoleCreated",
            WorkspaceEvent::RoleRulesChanged { .. } => "RoleRulesChanged",
            WorkspaceEvent::RoleDeleted { .. } => "RoleDeleted",
            WorkspaceEvent::RoleAssigned { .. } => "RoleAssigned",
            WorkspaceEvent::RoleUnassigned { .. } => "RoleUnassigned",
            WorkspaceEvent::ClusterRoleAssigned { .. } => "ClusterRoleAssigned",
            WorkspaceEvent::ClusterRoleUnassigned { .. } => "ClusterRoleUnassigned",
            WorkspaceEvent::EndpointAssigned { .. } => "EndpointAssigned",
            WorkspaceEvent::WorkspaceProvisioningStarted { .. } => "WorkspaceProvisioningStarted",
            WorkspaceEvent::WorkspaceProvisioned => "WorkspaceProvisioned",
            WorkspaceEvent::WorkspaceStepFailed { .. } => "WorkspaceStepFailed",
            WorkspaceEvent::WorkspaceProvisioningFailed { .. } => "WorkspaceProvisioningFailed",
            WorkspaceEvent::WorkspaceDeleted => "WorkspaceDeleted",
            WorkspaceEvent::WorkspaceSuspensionRequested { .. } => "WorkspaceSuspensionRequested",
            WorkspaceEvent::WorkspaceSuspended => "WorkspaceSuspended",
            WorkspaceEvent::WorkspaceResumptionRequested { .. } => "WorkspaceResumptionRequested",
            WorkspaceEvent::WorkspaceResumed => "WorkspaceResumed",
            WorkspaceEvent::DedicatedNodesRequested { .. } => "DedicatedNodesRequested",
            WorkspaceEvent::DedicatedNodesAssigned { .. } => "DedicatedNodesAssigned",
            WorkspaceEvent::DedicatedNodesRequestFailed { .. } => "DedicatedNodesRequestFailed",
            WorkspaceEvent::DedicatedNodeReleased { .. } => "DedicatedNodeReleased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
