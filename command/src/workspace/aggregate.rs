use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use super::{WorkspaceCommand, WorkspaceEvent, ADMINS_GROUP, MEMBERS_GROUP};
use crate::id::{
    ClusterRoleAssignmentId, GroupId, NodeRequestId, OrganizationId, ProjectId, RoleAssignmentId,
    RoleId, UserId, WorkspaceId,
};
use crate::rbac::{PolicyRule, PresetRole, RoleRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace not found")]
    NotFound,
    #[error("workspace already exists")]
    AlreadyExists,
    #[error("the workspace is being deleted")]
    BeingDeleted,
    #[error("group {0} not found")]
    GroupNotFound(String),
    #[error("a group named {0} already exists in this workspace")]
    GroupNameTaken(String),
    #[error("{0} is a preset group and cannot be renamed, moved or deleted")]
    PresetGroup(String),
    #[error("the group has child groups ({0}); delete or move them first")]
    GroupHasChildren(String),
    #[error("a group cannot be placed below itself or its descendants")]
    GroupCycle,
    #[error("user {0} is already a member of the group")]
    AlreadyInGroup(String),
    #[error("user {0} is not a member of the group")]
    NotInGroup(String),
    #[error("the last member of WSAdmins cannot be removed")]
    LastWsAdmin,
    #[error("project {0} not found")]
    ProjectNotFound(String),
    #[error("a project named {0} already exists in this workspace")]
    ProjectNameTaken(String),
    #[error("the workspace's plan allows {0} projects")]
    ProjectLimit(u32),
    #[error("the project has child projects ({0}); delete or move them first")]
    ProjectHasChildren(String),
    #[error("a project cannot be placed below itself or its descendants")]
    ProjectCycle,
    #[error("role {0} not found")]
    RoleNotFound(String),
    #[error("a role named {0} already exists in this project")]
    RoleNameTaken(String),
    #[error("{0}")]
    InvalidRules(String),
    #[error("still used by role assignments ({0}); delete them first")]
    InUse(String),
    #[error("role assignment {0} not found")]
    AssignmentNotFound(String),
    #[error("cluster role assignment {0} not found")]
    ClusterAssignmentNotFound(String),
    #[error("the API server endpoint must be an https URL and the CA a PEM certificate")]
    InvalidEndpoint,
    #[error("the group already has this role ({0})")]
    AlreadyAssigned(String),
    #[error("the workspace is {0}; only a Ready workspace can be suspended or resumed")]
    NotRunning(&'static str),
    #[error(
        "the workspace's plan allows {0} dedicated nodes (those it has and has asked for count)"
    )]
    NodeLimit(u32),
    #[error("between 1 and {0} nodes can be asked for at once")]
    InvalidNodeCount(u32),
    #[error("node {0} is not one of the workspace's dedicated nodes")]
    NodeNotFound(String),
}

/// Where a workspace is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkspaceStatus {
    #[default]
    Requested,
    Provisioning,
    Ready,
    /// Its cluster is being stopped.
    Suspending,
    Suspended,
    /// Its cluster is being started again.
    Resuming,
    Deleting,
    Deleted,
    Failed,
}

impl WorkspaceStatus {
    pub const ALL: [WorkspaceStatus; 9] = [
        WorkspaceStatus::Requested,
        WorkspaceStatus::Provisioning,
        WorkspaceStatus::Ready,
        WorkspaceStatus::Suspending,
        WorkspaceStatus::Suspended,
        WorkspaceStatus::Resuming,
        WorkspaceStatus::Deleting,
        WorkspaceStatus::Deleted,
        WorkspaceStatus::Failed,
    ];

    /// The status named `name` (as `as_str` spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceStatus::Requested => "Requested",
            WorkspaceStatus::Provisioning => "Provisioning",
            WorkspaceStatus::Ready => "Ready",
            WorkspaceStatus::Suspending => "Suspending",
            WorkspaceStatus::Suspended => "Suspended",
            WorkspaceStatus::Resuming => "Resuming",
            WorkspaceStatus::Deleting => "Deleting",
            WorkspaceStatus::Deleted => "Deleted",
            WorkspaceStatus::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Group {
    pub(super) name: String,
    pub(super) parent: Option<GroupId>,
    pub(super) preset: bool,
    pub(super) members: BTreeSet<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Project {
    pub(super) name: String,
    pub(super) parent: Option<ProjectId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Role {
    pub(super) project: ProjectId,
    pub(super) name: String,
    pub(super) rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Assignment {
    pub(super) project: ProjectId,
    pub(super) group: GroupId,
    pub(super) role: RoleRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ClusterAssignment {
    pub(super) group: GroupId,
    pub(super) role: PresetRole,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub(super) id: Option<WorkspaceId>,
    pub(super) org_id: Option<OrganizationId>,
    pub(super) name: String,
    pub(super) plan: String,
    pub(super) status: WorkspaceStatus,
    pub(super) members_group: Option<GroupId>,
    pub(super) admins_group: Option<GroupId>,
    pub(super) groups: BTreeMap<GroupId, Group>,
    pub(super) projects: BTreeMap<ProjectId, Project>,
    pub(super) roles: BTreeMap<RoleId, Role>,
    pub(super) endpoint: Option<(String, String)>,
    /// Provisioning completed once (a cluster exists, or existed before deletion).
    #[serde(default)]
    pub(super) provisioned: bool,
    /// Why it failed, when it did.
    #[serde(default)]
    pub(super) status_reason: Option<String>,
    pub(super) assignments: BTreeMap<RoleAssignmentId, Assignment>,
    pub(super) cluster_assignments: BTreeMap<ClusterRoleAssignmentId, ClusterAssignment>,
    /// Host nodes dedicated to the workspace.
    #[serde(default)]
    pub(super) dedicated_nodes: BTreeSet<String>,
    /// Requests for dedicated nodes not answered yet: count by request id.
    #[serde(default)]
    pub(super) node_requests: BTreeMap<NodeRequestId, u32>,
}

/// `id` and its ancestors (by `parent`), each with its entry; stops at a missing entry and never
/// walks more steps than there are entries.
pub(super) fn lineage<'a, K: Ord, V>(
    map: &'a BTreeMap<K, V>,
    id: &'a K,
    parent: impl Fn(&'a V) -> Option<&'a K> + 'a,
) -> impl Iterator<Item = (&'a K, &'a V)> + 'a {
    let mut next = Some(id);
    std::iter::from_fn(move || {
        let (key, value) = map.get_key_value(next?)?;
        next = parent(value);
        Some((key, value))
    })
    .take(map.len())
}

pub(super) fn names<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl Workspace {
    pub(super) fn existing(&self) -> Result<(), WorkspaceError> {
        match (self.id.is_some(), self.status) {
            (false, _) | (true, WorkspaceStatus::Deleted) => Err(WorkspaceError::NotFound),
            (true, WorkspaceStatus::Deleting) => Err(WorkspaceError::BeingDeleted),
            _ => Ok(()),
        }
    }

    pub(super) fn group(&self, id: &GroupId) -> Result<&Group, WorkspaceError> {
        self.groups
            .get(id)
            .ok_or_else(|| WorkspaceError::GroupNotFound(id.to_string()))
    }

    pub(super) fn project(&self, id: &ProjectId) -> Result<&Project, WorkspaceError> {
        self.projects
            .get(id)
            .ok_or_else(|| WorkspaceError::ProjectNotFound(id.to_string()))
    }

    /// The organization the workspace was requested in (it never changes).
    pub fn organization(&self) -> Option<&OrganizationId> {
        self.org_id.as_ref()
    }

    /// What a token for this workspace's API server says of `user`: the organization and the
    /// names of `user`'s groups with their ancestors. `None` when `user` is in no group, or the
    /// workspace does not exist or is being deleted: no token then.
    pub fn token_grant(&self, user: &UserId) -> Option<(OrganizationId, Vec<String>)> {
        self.existing().ok()?;
        let groups = self.groups_of(user);
        if groups.is_empty() {
            return None;
        }
        Some((self.org_id.clone()?, groups))
    }

    /// The names of the groups `user` is in, with their ancestors, sorted.
    pub fn groups_of(&self, user: &UserId) -> Vec<String> {
        let names: BTreeSet<&String> = self
            .groups
            .iter()
            .filter(|(_, group)| group.members.contains(user))
            .flat_map(|(id, _)| lineage(&self.groups, id, |g| g.parent.as_ref()))
            .map(|(_, group)| &group.name)
            .collect();
        names.into_iter().cloned().collect()
    }
}

impl Aggregate for Workspace {
    const TYPE: &'static str = "Workspace";
    type Command = WorkspaceCommand;
    type Event = WorkspaceEvent;
    type Error = WorkspaceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            WorkspaceCommand::RequestWorkspace {
                id,
                org_id,
                name,
                plan,
                members_group,
                admins_group,
                actor,
            } => {
                if self.id.is_some() {
                    return Err(WorkspaceError::AlreadyExists);
                }
                vec![WorkspaceEvent::WorkspaceRequested {
                    id,
                    org_id,
                    name: name.to_string(),
                    plan,
                    requested_by: actor,
                    members_group,
                    admins_group,
                }]
            }
            WorkspaceCommand::RenameWorkspace { name } => {
                self.existing()?;
                if self.name == name.as_str() {
                    return Ok(());
                }
                vec![WorkspaceEvent::WorkspaceRenamed {
                    name: name.to_string(),
                }]
            }
            WorkspaceCommand::ChangePlan { plan } => {
                self.existing()?;
                if self.plan == plan {
                    return Ok(());
                }
                vec![WorkspaceEvent::WorkspacePlanChanged { plan }]
            }
            WorkspaceCommand::AssignEndpoint { server, ca_pem } => {
                // Provisioning records its endpoint even when a deletion came meanwhile.
                if self.id.is_none() || self.status == WorkspaceStatus::Deleted {
                    return Err(WorkspaceError::NotFound);
                }
                let valid = server.starts_with("https://")
                    && server.len() <= 2048
                    && ca_pem.contains("-----BEGIN CERTIFICATE-----");
                if !valid {
                    return Err(WorkspaceError::InvalidEndpoint);
                }
                if self.endpoint.as_ref() == Some(&(server.clone(), ca_pem.clone())) {
                    return Ok(());
                }
                vec![WorkspaceEvent::EndpointAssigned { server, ca_pem }]
            }
            lifecycle @ (WorkspaceCommand::StartProvisioning { .. }
            | WorkspaceCommand::CompleteProvisioning
            | WorkspaceCommand::RecordStepFailure { .. }
            | WorkspaceCommand::FailProvisioning { .. }
            | WorkspaceCommand::CompleteDeletion
            | WorkspaceCommand::RequestSuspension { .. }
            | WorkspaceCommand::RequestResumption { .. }
            | WorkspaceCommand::CompleteSuspension
            | WorkspaceCommand::CompleteResumption) => self.handle_lifecycle(lifecycle)?,
            WorkspaceCommand::RequestDeletion { actor } => {
                self.existing()?;
                vec![WorkspaceEvent::WorkspaceDeletionRequested {
                    requested_by: actor,
                }]
            }
            group @ (WorkspaceCommand::CreateGroup { .. }
            | WorkspaceCommand::UpdateGroup { .. }
            | WorkspaceCommand::DeleteGroup { .. }
            | WorkspaceCommand::AddGroupMember { .. }
            | WorkspaceCommand::RemoveGroupMember { .. }) => {
                self.existing()?;
                self.handle_group(group)?
            }
            project @ (WorkspaceCommand::CreateProject { .. }
            | WorkspaceCommand::MoveProject { .. }
            | WorkspaceCommand::DeleteProject { .. }) => {
                self.existing()?;
                self.handle_project(project)?
            }
            nodes @ (WorkspaceCommand::RequestDedicatedNodes { .. }
            | WorkspaceCommand::ReleaseDedicatedNode { .. }) => {
                self.existing()?;
                self.handle_nodes(nodes)?
            }
            nodes @ (WorkspaceCommand::AssignDedicatedNodes { .. }
            | WorkspaceCommand::FailDedicatedNodes { .. }) => {
                if self.id.is_none() {
                    return Err(WorkspaceError::NotFound);
                }
                self.handle_nodes(nodes)?
            }
            rbac @ (WorkspaceCommand::CreateRole { .. }
            | WorkspaceCommand::UpdateRole { .. }
            | WorkspaceCommand::DeleteRole { .. }
            | WorkspaceCommand::AssignRole { .. }
            | WorkspaceCommand::UnassignRole { .. }
            | WorkspaceCommand::AssignClusterRole { .. }
            | WorkspaceCommand::UnassignClusterRole { .. }) => {
                self.existing()?;
                self.handle_rbac(rbac)?
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WorkspaceEvent::WorkspaceRequested {
                id,
                org_id,
                name,
                plan,
                requested_by,
                members_group,
                admins_group,
            } => {
                self.id = Some(id);
                self.org_id = Some(org_id);
                self.name = name;
                self.plan = plan;
                self.status = WorkspaceStatus::Requested;
                self.groups.insert(
                    members_group.clone(),
                    Group {
                        name: MEMBERS_GROUP.into(),
                        parent: None,
                        preset: true,
                        members: BTreeSet::new(),
                    },
                );
                self.groups.insert(
                    admins_group.clone(),
                    Group {
                        name: ADMINS_GROUP.into(),
                        parent: Some(members_group.clone()),
                        preset: true,
                        members: BTreeSet::from([requested_by]),
                    },
                );
                self.members_group = Some(members_group);
                self.admins_group = Some(admins_group);
            }
            WorkspaceEvent::WorkspaceRenamed { name } => self.name = name,
            WorkspaceEvent::WorkspacePlanChanged { plan } => self.plan = plan,
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => {
                self.status = WorkspaceStatus::Deleting;
            }
            group @ (WorkspaceEvent::GroupCreated { .. }
            | WorkspaceEvent::GroupRenamed { .. }
            | WorkspaceEvent::GroupMoved { .. }
            | WorkspaceEvent::GroupDeleted { .. }
            | WorkspaceEvent::GroupMemberAdded { .. }
            | WorkspaceEvent::GroupMemberRemoved { .. }) => self.apply_group(group),
            project @ (WorkspaceEvent::ProjectCreated { .. }
            | WorkspaceEvent::ProjectMoved { .. }
            | WorkspaceEvent::ProjectDeleted { .. }) => self.apply_project(project),
            nodes @ (WorkspaceEvent::DedicatedNodesRequested { .. }
            | WorkspaceEvent::DedicatedNodesAssigned { .. }
            | WorkspaceEvent::DedicatedNodesRequestFailed { .. }
            | WorkspaceEvent::DedicatedNodeReleased { .. }) => self.apply_nodes(nodes),
            rbac @ (WorkspaceEvent::RoleCreated { .. }
            | WorkspaceEvent::RoleRulesChanged { .. }
            | WorkspaceEvent::RoleDeleted { .. }
            | WorkspaceEvent::RoleAssigned { .. }
            | WorkspaceEvent::RoleUnassigned { .. }
            | WorkspaceEvent::ClusterRoleAssigned { .. }
            | WorkspaceEvent::ClusterRoleUnassigned { .. }) => self.apply_rbac(rbac),
            WorkspaceEvent::EndpointAssigned { server, ca_pem } => {
                self.endpoint = Some((server, ca_pem));
            }
            lifecycle @ (WorkspaceEvent::WorkspaceProvisioningStarted { .. }
            | WorkspaceEvent::WorkspaceProvisioned
            | WorkspaceEvent::WorkspaceStepFailed { .. }
            | WorkspaceEvent::WorkspaceProvisioningFailed { .. }
            | WorkspaceEvent::WorkspaceDeleted
            | WorkspaceEvent::WorkspaceSuspensionRequested { .. }
            | WorkspaceEvent::WorkspaceSuspended
            | WorkspaceEvent::WorkspaceResumptionRequested { .. }
            | WorkspaceEvent::WorkspaceResumed) => self.apply_lifecycle(lifecycle),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::Aggregate;

    use crate::id::{GroupId, OrganizationId, UserId, WorkspaceId};
    use crate::values::DisplayName;
    use crate::workspace::test_support::{requested, Given, ADMINS, MEMBERS, ORG};
    use crate::workspace::{Workspace, WorkspaceCommand, WorkspaceError, WorkspaceEvent};

    fn name(raw: &str) -> DisplayName {
        DisplayName::parse("name", raw).unwrap()
    }

    #[test]
    fn tokens_go_to_group_members_with_ancestor_groups_while_the_workspace_lives() {
        let (id, alice, bob) = (
            WorkspaceId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let mut ws = Workspace::default();
        ws.apply(requested(&id, &alice));
        let org = OrganizationId::parse(ORG).unwrap();
        assert_eq!(
            ws.token_grant(&alice),
            Some((
                org,
                vec!["WSAdmins".to_owned(), "WorkspaceMembers".to_owned()]
            ))
        );
        assert_eq!(ws.token_grant(&bob), None, "in no group");
        ws.apply(WorkspaceEvent::WorkspaceDeletionRequested {
            requested_by: alice.clone(),
        });
        assert_eq!(ws.token_grant(&alice), None, "being deleted");
        assert_eq!(
            Workspace::default().token_grant(&alice),
            None,
            "no workspace"
        );
    }

    #[test]
    fn a_request_records_the_workspace_with_its_preset_groups_once() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let request = WorkspaceCommand::RequestWorkspace {
            id: id.clone(),
            org_id: OrganizationId::parse(ORG).unwrap(),
            name: name("Staging"),
            plan: "starter".into(),
            members_group: GroupId::parse(MEMBERS).unwrap(),
            admins_group: GroupId::parse(ADMINS).unwrap(),
            actor: alice.clone(),
        };
        Given::with(())
            .given_no_previous_events()
            .when(request.clone())
            .then_expect_events(vec![requested(&id, &alice)]);
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(request)
            .then_expect_error(WorkspaceError::AlreadyExists);
    }

    #[test]
    fn rename_and_plan_change_record_only_changes() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::RenameWorkspace {
                name: name("Production"),
            })
            .then_expect_events(vec![WorkspaceEvent::WorkspaceRenamed {
                name: "Production".into(),
            }]);
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::RenameWorkspace {
                name: name("Staging"),
            })
            .then_expect_events(vec![]);
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::ChangePlan {
                plan: "team".into(),
            })
            .then_expect_events(vec![WorkspaceEvent::WorkspacePlanChanged {
                plan: "team".into(),
            }]);
    }

    #[test]
    fn deletion_is_requested_once_and_freezes_the_workspace() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let deleting = WorkspaceEvent::WorkspaceDeletionRequested {
            requested_by: alice.clone(),
        };
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::RequestDeletion {
                actor: alice.clone(),
            })
            .then_expect_events(vec![deleting.clone()]);
        Given::with(())
            .given(vec![requested(&id, &alice), deleting.clone()])
            .when(WorkspaceCommand::RequestDeletion {
                actor: alice.clone(),
            })
            .then_expect_error(WorkspaceError::BeingDeleted);
        Given::with(())
            .given(vec![requested(&id, &alice), deleting])
            .when(WorkspaceCommand::RenameWorkspace { name: name("X") })
            .then_expect_error(WorkspaceError::BeingDeleted);
    }

    #[test]
    fn commands_on_a_missing_workspace_are_not_found() {
        Given::with(())
            .given_no_previous_events()
            .when(WorkspaceCommand::ChangePlan {
                plan: "team".into(),
            })
            .then_expect_error(WorkspaceError::NotFound);
    }
}
