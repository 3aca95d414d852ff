//! The workspace's projects — namespaces of its cluster — in a hierarchy without cycles, with
//! names unique in the workspace and the plan's limit.

use super::aggregate::{lineage, names, Project, Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};
use crate::id::ProjectId;

impl Workspace {
    /// Whether `ancestor` is `id` or above it.
    fn project_within(&self, id: &ProjectId, ancestor: &ProjectId) -> bool {
        lineage(&self.projects, id, |p| p.parent.as_ref()).any(|(p, _)| p == ancestor)
    }

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

    pub(super) fn apply_project(&mut self, event: WorkspaceEvent) {
        match event {
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
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::id::{GroupId, ProjectId, UserId, WorkspaceId};
    use crate::workspace::test_support::{project, requested, with_rbac, Given, OPS, WEB};
    use crate::workspace::{WorkspaceCommand, WorkspaceError, WorkspaceEvent};

    const API: &str = "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7c2";

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
