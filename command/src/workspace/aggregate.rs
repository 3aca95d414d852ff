use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use super::{WorkspaceCommand, WorkspaceEvent, ADMINS_GROUP, MEMBERS_GROUP};
use crate::id::{
    ClusterRoleAssignmentId, GroupId, OrganizationId, ProjectId, RoleAssignmentId, RoleId, UserId,
    WorkspaceId,
};
use crate::rbac::{validate_rules, PolicyRule, PresetRole, RoleRef};
use crate::values::GroupName;

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
}

/// Where a workspace is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkspaceStatus {
    #[default]
    Requested,
    Provisioning,
    Ready,
    Suspended,
    Deleting,
    Deleted,
    Failed,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceStatus::Requested => "Requested",
            WorkspaceStatus::Provisioning => "Provisioning",
            WorkspaceStatus::Ready => "Ready",
            WorkspaceStatus::Suspended => "Suspended",
            WorkspaceStatus::Deleting => "Deleting",
            WorkspaceStatus::Deleted => "Deleted",
            WorkspaceStatus::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    name: String,
    parent: Option<GroupId>,
    preset: bool,
    members: BTreeSet<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Project {
    name: String,
    parent: Option<ProjectId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Role {
    project: ProjectId,
    name: String,
    rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Assignment {
    project: ProjectId,
    group: GroupId,
    role: RoleRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClusterAssignment {
    group: GroupId,
    role: PresetRole,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    id: Option<WorkspaceId>,
    org_id: Option<OrganizationId>,
    name: String,
    plan: String,
    status: WorkspaceStatus,
    members_group: Option<GroupId>,
    admins_group: Option<GroupId>,
    groups: BTreeMap<GroupId, Group>,
    projects: BTreeMap<ProjectId, Project>,
    roles: BTreeMap<RoleId, Role>,
    endpoint: Option<(String, String)>,
    assignments: BTreeMap<RoleAssignmentId, Assignment>,
    cluster_assignments: BTreeMap<ClusterRoleAssignmentId, ClusterAssignment>,
}

/// `id` and its ancestors (by `parent`), each with its entry; stops at a missing entry and never
/// walks more steps than there are entries.
fn lineage<'a, K: Ord, V>(
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

fn names<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl Workspace {
    fn existing(&self) -> Result<(), WorkspaceError> {
        match (self.id.is_some(), self.status) {
            (false, _) | (true, WorkspaceStatus::Deleted) => Err(WorkspaceError::NotFound),
            (true, WorkspaceStatus::Deleting) => Err(WorkspaceError::BeingDeleted),
            _ => Ok(()),
        }
    }

    fn group(&self, id: &GroupId) -> Result<&Group, WorkspaceError> {
        self.groups
            .get(id)
            .ok_or_else(|| WorkspaceError::GroupNotFound(id.to_string()))
    }

    fn project(&self, id: &ProjectId) -> Result<&Project, WorkspaceError> {
        self.projects
            .get(id)
            .ok_or_else(|| WorkspaceError::ProjectNotFound(id.to_string()))
    }

    /// Whether `ancestor` is `id` or above it.
    fn group_within(&self, id: &GroupId, ancestor: &GroupId) -> bool {
        lineage(&self.groups, id, |g| g.parent.as_ref()).any(|(g, _)| g == ancestor)
    }

    fn project_within(&self, id: &ProjectId, ancestor: &ProjectId) -> bool {
        lineage(&self.projects, id, |p| p.parent.as_ref()).any(|(p, _)| p == ancestor)
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

    /// Users in `WSAdmins` or any group below it.
    fn ws_admins(&self) -> BTreeSet<&UserId> {
        let Some(admins) = &self.admins_group else {
            return BTreeSet::new();
        };
        self.groups
            .iter()
            .filter(|(id, _)| self.group_within(id, admins))
            .flat_map(|(_, g)| g.members.iter())
            .collect()
    }

    fn group_name_taken(&self, name: &GroupName, except: Option<&GroupId>) -> bool {
        self.groups
            .iter()
            .any(|(id, g)| g.name == name.as_str() && Some(id) != except)
    }

    fn handle_group(
        &self,
        command: WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        let mut events = Vec::new();
        match command {
            WorkspaceCommand::CreateGroup { id, name, parent } => {
                if self.groups.contains_key(&id) {
                    return Err(WorkspaceError::GroupNameTaken(name.to_string()));
                }
                if self.group_name_taken(&name, None) {
                    return Err(WorkspaceError::GroupNameTaken(name.to_string()));
                }
                let parent = match parent {
                    Some(parent) => parent,
                    None => self.members_group.clone().ok_or(WorkspaceError::NotFound)?,
                };
                self.group(&parent)?;
                events.push(WorkspaceEvent::GroupCreated {
                    id,
                    name: name.to_string(),
                    parent: Some(parent),
                });
            }
            WorkspaceCommand::UpdateGroup { id, name, parent } => {
                let group = self.group(&id)?;
                if group.preset && (name.is_some() || parent.is_some()) {
                    return Err(WorkspaceError::PresetGroup(group.name.clone()));
                }
                if let Some(name) = name.filter(|n| n.as_str() != group.name) {
                    if self.group_name_taken(&name, Some(&id)) {
                        return Err(WorkspaceError::GroupNameTaken(name.to_string()));
                    }
                    events.push(WorkspaceEvent::GroupRenamed {
                        id: id.clone(),
                        name: name.to_string(),
                    });
                }
                if let Some(parent) = parent.filter(|p| Some(p) != group.parent.as_ref()) {
                    self.group(&parent)?;
                    if self.group_within(&parent, &id) {
                        return Err(WorkspaceError::GroupCycle);
                    }
                    events.push(WorkspaceEvent::GroupMoved { id, parent });
                }
            }
            WorkspaceCommand::DeleteGroup { id } => {
                let group = self.group(&id)?;
                if group.preset {
                    return Err(WorkspaceError::PresetGroup(group.name.clone()));
                }
                let users: Vec<String> = self
                    .assignments
                    .iter()
                    .filter(|(_, a)| a.group == id)
                    .map(|(aid, _)| aid.to_string())
                    .chain(
                        self.cluster_assignments
                            .iter()
                            .filter(|(_, a)| a.group == id)
                            .map(|(aid, _)| aid.to_string()),
                    )
                    .collect();
                if !users.is_empty() {
                    return Err(WorkspaceError::InUse(users.join(", ")));
                }
                let children: Vec<&String> = self
                    .groups
                    .values()
                    .filter(|g| g.parent.as_ref() == Some(&id))
                    .map(|g| &g.name)
                    .collect();
                if !children.is_empty() {
                    return Err(WorkspaceError::GroupHasChildren(names(
                        children.into_iter(),
                    )));
                }
                events.push(WorkspaceEvent::GroupDeleted { id });
            }
            WorkspaceCommand::AddGroupMember { group, user } => {
                if self.group(&group)?.members.contains(&user) {
                    return Err(WorkspaceError::AlreadyInGroup(user.to_string()));
                }
                events.push(WorkspaceEvent::GroupMemberAdded { group, user });
            }
            WorkspaceCommand::RemoveGroupMember { group, user } => {
                if !self.group(&group)?.members.contains(&user) {
                    return Err(WorkspaceError::NotInGroup(user.to_string()));
                }
                let mut after = self.clone();
                after.apply(WorkspaceEvent::GroupMemberRemoved {
                    group: group.clone(),
                    user: user.clone(),
                });
                if !self.ws_admins().is_empty() && after.ws_admins().is_empty() {
                    return Err(WorkspaceError::LastWsAdmin);
                }
                events.push(WorkspaceEvent::GroupMemberRemoved { group, user });
            }
            _ => {}
        }
        Ok(events)
    }

    fn handle_project(
        &self,
        command: WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        let mut events = Vec::new();
        match command {
            WorkspaceCommand::CreateProject {
                id,
                name,
                parent,
                max_projects,
            } => {
                if self.projects.contains_key(&id)
                    || self.projects.values().any(|p| p.name == name.as_str())
                {
                    return Err(WorkspaceError::ProjectNameTaken(name.to_string()));
                }
                if self.projects.len() >= max_projects as usize {
                    return Err(WorkspaceError::ProjectLimit(max_projects));
                }
                if let Some(parent) = &parent {
                    self.project(parent)?;
                }
                events.push(WorkspaceEvent::ProjectCreated {
                    id,
                    name: name.to_string(),
                    parent,
                });
            }
            WorkspaceCommand::MoveProject { id, parent } => {
                let project = self.project(&id)?;
                if project.parent == parent {
                    return Ok(events);
                }
                if let Some(parent) = &parent {
                    self.project(parent)?;
                    if self.project_within(parent, &id) {
                        return Err(WorkspaceError::ProjectCycle);
                    }
                }
                events.push(WorkspaceEvent::ProjectMoved { id, parent });
            }
            WorkspaceCommand::DeleteProject { id } => {
                self.project(&id)?;
                let children: Vec<&String> = self
                    .projects
                    .values()
                    .filter(|p| p.parent.as_ref() == Some(&id))
                    .map(|p| &p.name)
                    .collect();
                if !children.is_empty() {
                    return Err(WorkspaceError::ProjectHasChildren(names(
                        children.into_iter(),
                    )));
                }
                events.push(WorkspaceEvent::ProjectDeleted { id });
            }
            _ => {}
        }
        Ok(events)
    }
}

impl Workspace {
    fn role(&self, project: &ProjectId, id: &RoleId) -> Result<&Role, WorkspaceError> {
        self.roles
            .get(id)
            .filter(|r| &r.project == project)
            .ok_or_else(|| WorkspaceError::RoleNotFound(id.to_string()))
    }

    fn handle_rbac(
        &self,
        command: WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        let invalid = |e: crate::values::InvalidValue| WorkspaceError::InvalidRules(e.message);
        let event = match command {
            WorkspaceCommand::CreateRole {
                project,
                id,
                name,
                rules,
                allow_wildcards,
            } => {
                self.project(&project)?;
                let taken = PresetRole::parse(name.as_str()).is_some()
                    || self.roles.contains_key(&id)
                    || self
                        .roles
                        .values()
                        .any(|r| r.project == project && r.name == name.as_str());
                if taken {
                    return Err(WorkspaceError::RoleNameTaken(name.to_string()));
                }
                validate_rules(&rules, allow_wildcards).map_err(invalid)?;
                WorkspaceEvent::RoleCreated {
                    project,
                    id,
                    name: name.to_string(),
                    rules,
                }
            }
            WorkspaceCommand::UpdateRole {
                project,
                id,
                rules,
                allow_wildcards,
            } => {
                let role = self.role(&project, &id)?;
                validate_rules(&rules, allow_wildcards).map_err(invalid)?;
                if role.rules == rules {
                    return Ok(Vec::new());
                }
                WorkspaceEvent::RoleRulesChanged { project, id, rules }
            }
            WorkspaceCommand::DeleteRole { project, id } => {
                self.role(&project, &id)?;
                let users: Vec<String> = self
                    .assignments
                    .iter()
                    .filter(|(_, a)| a.role == RoleRef::Custom(id.clone()))
                    .map(|(aid, _)| aid.to_string())
                    .collect();
                if !users.is_empty() {
                    return Err(WorkspaceError::InUse(users.join(", ")));
                }
                WorkspaceEvent::RoleDeleted { project, id }
            }
            WorkspaceCommand::AssignRole {
                project,
                id,
                group,
                role,
            } => {
                self.project(&project)?;
                self.group(&group)?;
                if let RoleRef::Custom(role_id) = &role {
                    self.role(&project, role_id)?;
                }
                if let Some((existing, _)) = self
                    .assignments
                    .iter()
                    .find(|(_, a)| a.project == project && a.group == group && a.role == role)
                {
                    return Err(WorkspaceError::AlreadyAssigned(existing.to_string()));
                }
                if self.assignments.contains_key(&id) {
                    return Err(WorkspaceError::AlreadyAssigned(id.to_string()));
                }
                WorkspaceEvent::RoleAssigned {
                    project,
                    id,
                    group,
                    role,
                }
            }
            WorkspaceCommand::UnassignRole { project, id } => {
                if self
                    .assignments
                    .get(&id)
                    .is_none_or(|a| a.project != project)
                {
                    return Err(WorkspaceError::AssignmentNotFound(id.to_string()));
                }
                WorkspaceEvent::RoleUnassigned { project, id }
            }
            WorkspaceCommand::AssignClusterRole { id, group, role } => {
                self.group(&group)?;
                if let Some((existing, _)) = self
                    .cluster_assignments
                    .iter()
                    .find(|(_, a)| a.group == group && a.role == role)
                {
                    return Err(WorkspaceError::AlreadyAssigned(existing.to_string()));
                }
                if self.cluster_assignments.contains_key(&id) {
                    return Err(WorkspaceError::AlreadyAssigned(id.to_string()));
                }
                WorkspaceEvent::ClusterRoleAssigned { id, group, role }
            }
            WorkspaceCommand::UnassignClusterRole { id } => {
                if !self.cluster_assignments.contains_key(&id) {
                    return Err(WorkspaceError::ClusterAssignmentNotFound(id.to_string()));
                }
                WorkspaceEvent::ClusterRoleUnassigned { id }
            }

            _ => return Ok(Vec::new()),
        };
        Ok(vec![event])
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
                self.existing()?;
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
            WorkspaceEvent::GroupCreated { id, name, parent } => {
                self.groups.insert(
                    id,
                    Group {
                        name,
                        parent,
                        preset: false,
                        members: BTreeSet::new(),
                    },
                );
            }
            WorkspaceEvent::GroupRenamed { id, name } => {
                if let Some(group) = self.groups.get_mut(&id) {
                    group.name = name;
                }
            }
            WorkspaceEvent::GroupMoved { id, parent } => {
                if let Some(group) = self.groups.get_mut(&id) {
                    group.parent = Some(parent);
                }
            }
            WorkspaceEvent::GroupDeleted { id } => {
                self.groups.remove(&id);
            }
            WorkspaceEvent::GroupMemberAdded { group, user } => {
                if let Some(group) = self.groups.get_mut(&group) {
                    group.members.insert(user);
                }
            }
            WorkspaceEvent::GroupMemberRemoved { group, user } => {
                if let Some(group) = self.groups.get_mut(&group) {
                    group.members.remove(&user);
                }
            }
            WorkspaceEvent::ProjectCreated { id, name, parent } => {
                self.projects.insert(id, Project { name, parent });
            }
            WorkspaceEvent::ProjectMoved { id, parent } => {
                if let Some(project) = self.projects.get_mut(&id) {
                    project.parent = parent;
                }
            }
            WorkspaceEvent::ProjectDeleted { id } => {
                self.projects.remove(&id);
                self.roles.retain(|_, r| r.project != id);
                self.assignments.retain(|_, a| a.project != id);
            }
            WorkspaceEvent::RoleCreated {
                project,
                id,
                name,
                rules,
            } => {
                self.roles.insert(
                    id,
                    Role {
                        project,
                        name,
                        rules,
                    },
                );
            }
            WorkspaceEvent::RoleRulesChanged { id, rules, .. } => {
                if let Some(role) = self.roles.get_mut(&id) {
                    role.rules = rules;
                }
            }
            WorkspaceEvent::RoleDeleted { id, .. } => {
                self.roles.remove(&id);
            }
            WorkspaceEvent::RoleAssigned {
                project,
                id,
                group,
                role,
            } => {
                self.assignments.insert(
                    id,
                    Assignment {
                        project,
                        group,
                        role,
                    },
                );
            }
            WorkspaceEvent::RoleUnassigned { id, .. } => {
                self.assignments.remove(&id);
            }
            WorkspaceEvent::ClusterRoleAssigned { id, group, role } => {
                self.cluster_assignments
                    .insert(id, ClusterAssignment { group, role });
            }
            WorkspaceEvent::ClusterRoleUnassigned { id } => {
                self.cluster_assignments.remove(&id);
            }
            WorkspaceEvent::EndpointAssigned { server, ca_pem } => {
                self.endpoint = Some((server, ca_pem));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::id::UserId;
    use crate::values::DisplayName;

    type Given = TestFramework<Workspace>;

    const ORG: &str = "org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8";
    const MEMBERS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a1";
    const ADMINS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a2";

    fn requested(id: &WorkspaceId, by: &UserId) -> WorkspaceEvent {
        WorkspaceEvent::WorkspaceRequested {
            id: id.clone(),
            org_id: OrganizationId::parse(ORG).unwrap(),
            name: "Staging".into(),
            plan: "starter".into(),
            requested_by: by.clone(),
            members_group: GroupId::parse(MEMBERS).unwrap(),
            admins_group: GroupId::parse(ADMINS).unwrap(),
        }
    }

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

    fn group(id: &str, name: &str, parent: &str) -> WorkspaceEvent {
        WorkspaceEvent::GroupCreated {
            id: GroupId::parse(id).unwrap(),
            name: name.into(),
            parent: Some(GroupId::parse(parent).unwrap()),
        }
    }

    const OPS: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7b1";
    const ONCALL: &str = "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7b2";

    fn gname(raw: &str) -> GroupName {
        GroupName::parse("name", raw).unwrap()
    }

    #[test]
    fn groups_go_below_workspace_members_by_default_with_unique_names() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::CreateGroup {
                id: GroupId::parse(OPS).unwrap(),
                name: gname("ops"),
                parent: None,
            })
            .then_expect_events(vec![group(OPS, "ops", MEMBERS)]);
        Given::with(())
            .given(vec![requested(&id, &alice), group(OPS, "ops", MEMBERS)])
            .when(WorkspaceCommand::CreateGroup {
                id: GroupId::parse(ONCALL).unwrap(),
                name: gname("ops"),
                parent: None,
            })
            .then_expect_error(WorkspaceError::GroupNameTaken("ops".into()));
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::CreateGroup {
                id: GroupId::parse(ONCALL).unwrap(),
                name: gname("oncall"),
                parent: Some(GroupId::parse(OPS).unwrap()),
            })
            .then_expect_error(WorkspaceError::GroupNotFound(OPS.into()));
    }

    #[test]
    fn presets_stay_groups_with_children_stay_and_cycles_are_refused() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let history = vec![
            requested(&id, &alice),
            group(OPS, "ops", MEMBERS),
            group(ONCALL, "oncall", OPS),
        ];
        Given::with(())
            .given(history.clone())
            .when(WorkspaceCommand::DeleteGroup {
                id: GroupId::parse(ADMINS).unwrap(),
            })
            .then_expect_error(WorkspaceError::PresetGroup("WSAdmins".into()));
        Given::with(())
            .given(history.clone())
            .when(WorkspaceCommand::DeleteGroup {
                id: GroupId::parse(OPS).unwrap(),
            })
            .then_expect_error(WorkspaceError::GroupHasChildren("oncall".into()));
        Given::with(())
            .given(history.clone())
            .when(WorkspaceCommand::UpdateGroup {
                id: GroupId::parse(OPS).unwrap(),
                name: None,
                parent: Some(GroupId::parse(ONCALL).unwrap()),
            })
            .then_expect_error(WorkspaceError::GroupCycle);
        Given::with(())
            .given(history)
            .when(WorkspaceCommand::UpdateGroup {
                id: GroupId::parse(ONCALL).unwrap(),
                name: Some(gname("pager")),
                parent: Some(GroupId::parse(ADMINS).unwrap()),
            })
            .then_expect_events(vec![
                WorkspaceEvent::GroupRenamed {
                    id: GroupId::parse(ONCALL).unwrap(),
                    name: "pager".into(),
                },
                WorkspaceEvent::GroupMoved {
                    id: GroupId::parse(ONCALL).unwrap(),
                    parent: GroupId::parse(ADMINS).unwrap(),
                },
            ]);
    }

    #[test]
    fn members_join_once_and_the_last_wsadmin_stays() {
        let (id, alice, bob) = (
            WorkspaceId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let ops = GroupId::parse(OPS).unwrap();
        let admins = GroupId::parse(ADMINS).unwrap();
        Given::with(())
            .given(vec![requested(&id, &alice), group(OPS, "ops", MEMBERS)])
            .when(WorkspaceCommand::AddGroupMember {
                group: ops.clone(),
                user: bob.clone(),
            })
            .then_expect_events(vec![WorkspaceEvent::GroupMemberAdded {
                group: ops.clone(),
                user: bob.clone(),
            }]);
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::AddGroupMember {
                group: admins.clone(),
                user: alice.clone(),
            })
            .then_expect_error(WorkspaceError::AlreadyInGroup(alice.to_string()));
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::RemoveGroupMember {
                group: admins.clone(),
                user: alice.clone(),
            })
            .then_expect_error(WorkspaceError::LastWsAdmin);
        // A member of a group below WSAdmins is a WSAdmin too.
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                group(OPS, "ops", ADMINS),
                WorkspaceEvent::GroupMemberAdded {
                    group: ops,
                    user: bob,
                },
            ])
            .when(WorkspaceCommand::RemoveGroupMember {
                group: admins.clone(),
                user: alice.clone(),
            })
            .then_expect_events(vec![WorkspaceEvent::GroupMemberRemoved {
                group: admins,
                user: alice,
            }]);
    }

    const WEB: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c1";
    const API: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c2";

    fn project(id: &str, name: &str, parent: Option<&str>) -> WorkspaceEvent {
        WorkspaceEvent::ProjectCreated {
            id: ProjectId::parse(id).unwrap(),
            name: name.into(),
            parent: parent.map(|p| ProjectId::parse(p).unwrap()),
        }
    }

    fn create_project(id: &str, name: &str, parent: Option<&str>, max: u32) -> WorkspaceCommand {
        WorkspaceCommand::CreateProject {
            id: ProjectId::parse(id).unwrap(),
            name: crate::values::DnsLabel::parse("name", name).unwrap(),
            parent: parent.map(|p| ProjectId::parse(p).unwrap()),
            max_projects: max,
        }
    }

    #[test]
    fn projects_have_unique_names_a_limit_and_an_acyclic_hierarchy() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(create_project(WEB, "web", None, 5))
            .then_expect_events(vec![project(WEB, "web", None)]);
        Given::with(())
            .given(vec![requested(&id, &alice), project(WEB, "web", None)])
            .when(create_project(API, "web", None, 5))
            .then_expect_error(WorkspaceError::ProjectNameTaken("web".into()));
        Given::with(())
            .given(vec![requested(&id, &alice), project(WEB, "web", None)])
            .when(create_project(API, "api", None, 1))
            .then_expect_error(WorkspaceError::ProjectLimit(1));
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                project(WEB, "web", None),
                project(API, "api", Some(WEB)),
            ])
            .when(WorkspaceCommand::MoveProject {
                id: ProjectId::parse(WEB).unwrap(),
                parent: Some(ProjectId::parse(API).unwrap()),
            })
            .then_expect_error(WorkspaceError::ProjectCycle);
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                project(WEB, "web", None),
                project(API, "api", Some(WEB)),
            ])
            .when(WorkspaceCommand::DeleteProject {
                id: ProjectId::parse(WEB).unwrap(),
            })
            .then_expect_error(WorkspaceError::ProjectHasChildren("api".into()));
    }

    const ROLE: &str = "role-0192f0c1a8b47c3e9d2a51b0c4e6f7d1";
    const RA: &str = "ra-0192f0c1a8b47c3e9d2a51b0c4e6f7e1";
    const CRA: &str = "cra-0192f0c1a8b47c3e9d2a51b0c4e6f7f1";

    fn pods_reader() -> Vec<PolicyRule> {
        vec![PolicyRule {
            api_groups: vec!["".into()],
            resources: vec!["pods".into()],
            verbs: vec!["get".into(), "list".into()],
            resource_names: vec![],
        }]
    }

    fn with_rbac(id: &WorkspaceId, alice: &UserId) -> Vec<WorkspaceEvent> {
        vec![
            requested(id, alice),
            group(OPS, "ops", MEMBERS),
            project(WEB, "web", None),
            WorkspaceEvent::RoleCreated {
                project: ProjectId::parse(WEB).unwrap(),
                id: RoleId::parse(ROLE).unwrap(),
                name: "pod-reader".into(),
                rules: pods_reader(),
            },
            WorkspaceEvent::RoleAssigned {
                project: ProjectId::parse(WEB).unwrap(),
                id: RoleAssignmentId::parse(RA).unwrap(),
                group: GroupId::parse(OPS).unwrap(),
                role: RoleRef::Custom(RoleId::parse(ROLE).unwrap()),
            },
        ]
    }

    #[test]
    fn custom_roles_are_validated_and_wildcards_need_a_workspace_administrator() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let create =
            |name: &str, rules: Vec<PolicyRule>, allow_wildcards| WorkspaceCommand::CreateRole {
                project: ProjectId::parse(WEB).unwrap(),
                id: RoleId::generate(),
                name: crate::values::DnsLabel::parse("name", name).unwrap(),
                rules,
                allow_wildcards,
            };
        let mut wild = pods_reader();
        wild[0].verbs = vec!["*".into()];
        let base = vec![requested(&id, &alice), project(WEB, "web", None)];
        assert!(matches!(
            Given::with(())
                .given(base.clone())
                .when(create("everything", wild.clone(), false))
                .inspect_result(),
            Err(WorkspaceError::InvalidRules(_))
        ));
        assert!(Given::with(())
            .given(base.clone())
            .when(create("everything", wild, true))
            .inspect_result()
            .is_ok());
        Given::with(())
            .given(base)
            .when(create("admin", pods_reader(), true))
            .then_expect_error(WorkspaceError::RoleNameTaken("admin".into()));
    }

    #[test]
    fn groups_and_roles_in_use_stay_until_their_assignments_go() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        Given::with(())
            .given(with_rbac(&id, &alice))
            .when(WorkspaceCommand::DeleteGroup {
                id: GroupId::parse(OPS).unwrap(),
            })
            .then_expect_error(WorkspaceError::InUse(RA.into()));
        Given::with(())
            .given(with_rbac(&id, &alice))
            .when(WorkspaceCommand::DeleteRole {
                project: ProjectId::parse(WEB).unwrap(),
                id: RoleId::parse(ROLE).unwrap(),
            })
            .then_expect_error(WorkspaceError::InUse(RA.into()));
        Given::with(())
            .given(with_rbac(&id, &alice))
            .when(WorkspaceCommand::AssignRole {
                project: ProjectId::parse(WEB).unwrap(),
                id: RoleAssignmentId::generate(),
                group: GroupId::parse(OPS).unwrap(),
                role: RoleRef::Custom(RoleId::parse(ROLE).unwrap()),
            })
            .then_expect_error(WorkspaceError::AlreadyAssigned(RA.into()));
        let mut history = with_rbac(&id, &alice);
        history.push(WorkspaceEvent::ClusterRoleAssigned {
            id: ClusterRoleAssignmentId::parse(CRA).unwrap(),
            group: GroupId::parse(OPS).unwrap(),
            role: PresetRole::View,
        });
        history.push(WorkspaceEvent::RoleUnassigned {
            project: ProjectId::parse(WEB).unwrap(),
            id: RoleAssignmentId::parse(RA).unwrap(),
        });
        Given::with(())
            .given(history)
            .when(WorkspaceCommand::DeleteGroup {
                id: GroupId::parse(OPS).unwrap(),
            })
            .then_expect_error(WorkspaceError::InUse(CRA.into()));
    }

    #[test]
    fn a_deleted_projects_roles_and_assignments_go_with_it() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let mut history = with_rbac(&id, &alice);
        history.push(WorkspaceEvent::ProjectDeleted {
            id: ProjectId::parse(WEB).unwrap(),
        });
        Given::with(())
            .given(history)
            .when(WorkspaceCommand::DeleteGroup {
                id: GroupId::parse(OPS).unwrap(),
            })
            .then_expect_events(vec![WorkspaceEvent::GroupDeleted {
                id: GroupId::parse(OPS).unwrap(),
            }]);
    }
}
