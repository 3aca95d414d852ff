use crate::id::{
    ClusterRoleAssignmentId, GroupId, NodeRequestId, OrganizationId, ProjectId, RoleAssignmentId,
    RoleId, UserId, WorkspaceId,
};
use crate::rbac::{PolicyRule, PresetRole, RoleRef};
use crate::values::{DisplayName, DnsLabel, GroupName};

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
    /// Stop the workspace's cluster, keeping its data (`actor`: an organization admin; `None`:
    /// the control plane itself, as billing does).
    RequestSuspension {
        actor: Option<UserId>,
        reason: Option<String>,
    },
    /// Start a suspended workspace's cluster again.
    RequestResumption {
        actor: Option<UserId>,
    },
    /// Ask for `count` of the host's free nodes (`max`: the plan's limit on those the
    /// workspace has and has asked for).
    RequestDedicatedNodes {
        request: NodeRequestId,
        count: u32,
        max: u32,
        actor: UserId,
    },
    /// The node saga claimed these nodes on the host for `request`.
    AssignDedicatedNodes {
        request: NodeRequestId,
        nodes: Vec<String>,
    },
    /// The node saga could not answer `request` (too few nodes free).
    FailDedicatedNodes {
        request: NodeRequestId,
        reason: String,
    },
    /// The workspace gives `node` back to the pool.
    ReleaseDedicatedNode {
        node: String,
        actor: UserId,
    },
    /// The suspension saga stopped the cluster.
    CompleteSuspension,
    /// The resumption saga found the cluster ready again.
    CompleteResumption,
    /// A group below `parent` (default: `WorkspaceMembers`).
    CreateGroup {
        id: GroupId,
        name: GroupName,
        parent: Option<GroupId>,
    },
    UpdateGroup {
        id: GroupId,
        name: Option<GroupName>,
        parent: Option<GroupId>,
    },
    /// Refused for preset groups and groups with child groups.
    DeleteGroup {
        id: GroupId,
    },
    /// `user` must be a member of the organization (the API checks).
    AddGroupMember {
        group: GroupId,
        user: UserId,
    },
    RemoveGroupMember {
        group: GroupId,
        user: UserId,
    },
    /// A project (a namespace in the vCluster); `max_projects` is the plan's limit.
    CreateProject {
        id: ProjectId,
        name: DnsLabel,
        parent: Option<ProjectId>,
        max_projects: u32,
    },
    /// Put the project below another one, or at the top (`None`).
    MoveProject {
        id: ProjectId,
        parent: Option<ProjectId>,
    },
    /// Refused while the project has child projects. Its roles and role assignments go with it.
    DeleteProject {
        id: ProjectId,
    },
    /// A custom role of a project. `allow_wildcards`: the caller administers the workspace.
    CreateRole {
        project: ProjectId,
        id: RoleId,
        name: DnsLabel,
        rules: Vec<PolicyRule>,
        allow_wildcards: bool,
    },
    UpdateRole {
        project: ProjectId,
        id: RoleId,
        rules: Vec<PolicyRule>,
        allow_wildcards: bool,
    },
    /// Refused while role assignments use it.
    DeleteRole {
        project: ProjectId,
        id: RoleId,
    },
    AssignRole {
        project: ProjectId,
        id: RoleAssignmentId,
        group: GroupId,
        role: RoleRef,
    },
    UnassignRole {
        project: ProjectId,
        id: RoleAssignmentId,
    },
    AssignClusterRole {
        id: ClusterRoleAssignmentId,
        group: GroupId,
        role: PresetRole,
    },
    UnassignClusterRole {
        id: ClusterRoleAssignmentId,
    },
    /// The vCluster's API server is reachable at `server`, with `ca_pem` as its CA (recorded by
    /// provisioning).
    AssignEndpoint {
        server: String,
        ca_pem: String,
    },
    /// The provisioning saga `task` begins (the system's command, like those below).
    StartProvisioning {
        task: String,
    },
    CompleteProvisioning,
    RecordStepFailure {
        task: String,
        step: String,
        reason: String,
    },
    FailProvisioning {
        reason: String,
    },
    CompleteDeletion,
}
