//! The workspace's groups: a hierarchy below `WorkspaceMembers` (with `WSAdmins` below it),
//! names unique in the workspace, members who must stay (the last WSAdmin).

use std::collections::BTreeSet;

use cqrs_es::Aggregate;

use super::aggregate::{lineage, names, Group, Workspace, WorkspaceError};
use super::{WorkspaceCommand, WorkspaceEvent};
use crate::id::{GroupId, UserId};
use crate::values::GroupName;

impl Workspace {
    /// Whether `ancestor` is `id` or above it.
    fn group_within(&self, id: &GroupId, ancestor: &GroupId) -> bool {
        lineage(&self.groups, id, |g| g.parent.as_ref()).any(|(g, _)| g == ancestor)
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

    pub(super) fn apply_group(&mut self, event: WorkspaceEvent) {
        match event {
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
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::id::{GroupId, UserId, WorkspaceId};
    use crate::values::GroupName;
    use crate::workspace::test_support::{group, requested, Given, ADMINS, MEMBERS, OPS};
    use crate::workspace::{WorkspaceCommand, WorkspaceError, WorkspaceEvent};

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
}
