//! The workspace's projects — namespaces of its cluster — in a hierarchy without cycles, with
//! names unique in the workspace and the plan's limit.

use super::aggregate::{names, Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};

impl Workspace {
    pub(super) fn handle_project(
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
