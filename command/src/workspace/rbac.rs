//! Who may do what in the workspace's cluster: custom roles of a project, role assignments
//! (a group gets a role in a project) and cluster role assignments (a group gets a preset
//! ClusterRole across the workspace). Groups and roles in use stay until their assignments go.

use super::aggregate::{Assignment, ClusterAssignment, Role, Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};
use crate::id::{ProjectId, RoleId};
use crate::rbac::{validate_rules, PresetRole, RoleRef};

impl Workspace {
    fn role(&self, project: &ProjectId, id: &RoleId) -> Result<&Role, WorkspaceError> {
        self.roles
            .get(id)
            .filter(|r| &r.project == project)
            .ok_or_else(|| WorkspaceError::RoleNotFound(id.to_string()))
    }

    pub(super) fn handle_rbac(
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

    pub(super) fn apply_rbac(&mut self, event: WorkspaceEvent) {
        match event {
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
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::id::{
        ClusterRoleAssignmentId, GroupId, ProjectId, RoleAssignmentId, RoleId, UserId, WorkspaceId,
    };
    use crate::rbac::{PolicyRule, PresetRole, RoleRef};
    use crate::workspace::test_support::{
        pods_reader, project, requested, with_rbac, Given, OPS, RA, ROLE, WEB,
    };
    use crate::workspace::{WorkspaceCommand, WorkspaceError, WorkspaceEvent};

    const CRA: &str = "cra-0192f0c1a8b47c3e9d2a51b0c4e6f7f1";

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
}
