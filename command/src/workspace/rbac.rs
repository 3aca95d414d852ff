//! Who may do what in the workspace's cluster: custom roles of a project, role assignments
//! (a group gets a role in a project) and cluster role assignments (a group gets a preset
//! ClusterRole across the workspace). Groups and roles in use stay until their assignments go.

use super::aggregate::{Role, Workspace, WorkspaceError};
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
}
