//! What the workspace's cluster should hold, as the aggregate knows it now: its projects (the
//! namespaces, in their hierarchy), groups, custom roles and assignments. The sagas that keep
//! the cluster in step read this rather than the read models, which may lag.

use std::collections::{BTreeMap, BTreeSet};

use super::aggregate::{Workspace, WorkspaceStatus};
use crate::id::{
    ClusterRoleAssignmentId, GroupId, NodeRequestId, OrganizationId, ProjectId, RoleAssignmentId,
    RoleId, WorkspaceId,
};
use crate::rbac::{PolicyRule, PresetRole, RoleRef};

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectState {
    pub id: ProjectId,
    pub name: String,
    pub parent: Option<ProjectId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleState {
    pub id: RoleId,
    pub project: ProjectId,
    pub name: String,
    pub rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentState {
    pub id: RoleAssignmentId,
    pub project: ProjectId,
    pub group: GroupId,
    pub role: RoleRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterAssignmentState {
    pub id: ClusterRoleAssignmentId,
    pub group: GroupId,
    pub role: PresetRole,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterState {
    pub workspace: WorkspaceId,
    pub organization: OrganizationId,
    pub plan: String,
    pub status: WorkspaceStatus,
    /// Group names by id (presets included).
    pub groups: BTreeMap<GroupId, String>,
    pub projects: Vec<ProjectState>,
    pub roles: Vec<RoleState>,
    pub assignments: Vec<AssignmentState>,
    pub cluster_assignments: Vec<ClusterAssignmentState>,
    /// Host nodes dedicated to the workspace.
    pub dedicated_nodes: BTreeSet<String>,
    /// Requests for dedicated nodes not answered yet: count by request id.
    pub node_requests: BTreeMap<NodeRequestId, u32>,
}

impl ClusterState {
    /// `project` and the projects below it, at any depth.
    pub fn descendants_of(&self, project: &ProjectId) -> Vec<&ProjectState> {
        let mut found: Vec<&ProjectState> = Vec::new();
        let mut frontier = vec![project.clone()];
        // Bounded by the number of projects: the hierarchy has no cycles, but never loop.
        for _ in 0..=self.projects.len() {
            let Some(parent) = frontier.pop() else { break };
            for child in self
                .projects
                .iter()
                .filter(|p| p.parent.as_ref() == Some(&parent))
            {
                if !found.iter().any(|f| f.id == child.id) {
                    found.push(child);
                    frontier.push(child.id.clone());
                }
            }
        }
        let mut all: Vec<&ProjectState> =
            self.projects.iter().filter(|p| &p.id == project).collect();
        all.extend(found);
        all
    }
}

impl Workspace {
    /// The state its cluster should be in; `None` before the workspace was requested.
    pub fn cluster_state(&self) -> Option<ClusterState> {
        Some(ClusterState {
            workspace: self.id.clone()?,
            organization: self.org_id.clone()?,
            plan: self.plan.clone(),
            status: self.status,
            groups: self
                .groups
                .iter()
                .map(|(id, g)| (id.clone(), g.name.clone()))
                .collect(),
            projects: self
                .projects
                .iter()
                .map(|(id, p)| ProjectState {
                    id: id.clone(),
                    name: p.name.clone(),
                    parent: p.parent.clone(),
                })
                .collect(),
            roles: self
                .roles
                .iter()
                .map(|(id, r)| RoleState {
                    id: id.clone(),
                    project: r.project.clone(),
                    name: r.name.clone(),
                    rules: r.rules.clone(),
                })
                .collect(),
            assignments: self
                .assignments
                .iter()
                .map(|(id, a)| AssignmentState {
                    id: id.clone(),
                    project: a.project.clone(),
                    group: a.group.clone(),
                    role: a.role.clone(),
                })
                .collect(),
            cluster_assignments: self
                .cluster_assignments
                .iter()
                .map(|(id, a)| ClusterAssignmentState {
                    id: id.clone(),
                    group: a.group.clone(),
                    role: a.role,
                })
                .collect(),
            dedicated_nodes: self.dedicated_nodes.clone(),
            node_requests: self.node_requests.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::Aggregate;

    use crate::id::{ProjectId, UserId, WorkspaceId};
    use crate::workspace::test_support::requested;
    use crate::workspace::{Workspace, WorkspaceEvent};

    #[test]
    fn the_cluster_state_names_projects_below_a_project_at_any_depth() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let (a, b, c) = (
            ProjectId::generate(),
            ProjectId::generate(),
            ProjectId::generate(),
        );
        let mut ws = Workspace::default();
        ws.apply(requested(&id, &alice));
        for (project, name, parent) in [(&a, "a", None), (&b, "b", Some(&a)), (&c, "c", Some(&b))] {
            ws.apply(WorkspaceEvent::ProjectCreated {
                id: project.clone(),
                name: name.into(),
                parent: parent.cloned(),
            });
        }
        let state = ws.cluster_state().unwrap();
        let below_a: Vec<&str> = state
            .descendants_of(&a)
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(below_a, ["a", "b", "c"]);
        let below_c: Vec<&str> = state
            .descendants_of(&c)
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(below_c, ["c"]);
        assert_eq!(state.groups.len(), 2, "the presets");
    }
}
