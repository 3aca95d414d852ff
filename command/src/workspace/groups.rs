//! The workspace's groups: a hierarchy below `WorkspaceMembers` (with `WSAdmins` below it),
//! names unique in the workspace, members who must stay (the last WSAdmin).

use std::collections::BTreeSet;

use cqrs_es::Aggregate;

use super::aggregate::{names, Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};
use crate::id::{GroupId, UserId};
use crate::values::GroupName;

impl Workspace {
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

    pub(super) fn handle_group(
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
}
