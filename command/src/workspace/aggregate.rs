use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{WorkspaceCommand, WorkspaceEvent};
use crate::id::{GroupId, OrganizationId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace not found")]
    NotFound,
    #[error("workspace already exists")]
    AlreadyExists,
    #[error("the workspace is being deleted")]
    BeingDeleted,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    id: Option<WorkspaceId>,
    org_id: Option<OrganizationId>,
    name: String,
    plan: String,
    status: WorkspaceStatus,
    members_group: Option<GroupId>,
    admins_group: Option<GroupId>,
}

impl Workspace {
    fn existing(&self) -> Result<(), WorkspaceError> {
        match (self.id.is_some(), self.status) {
            (false, _) | (true, WorkspaceStatus::Deleted) => Err(WorkspaceError::NotFound),
            (true, WorkspaceStatus::Deleting) => Err(WorkspaceError::BeingDeleted),
            _ => Ok(()),
        }
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
        let event = match command {
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
                WorkspaceEvent::WorkspaceRequested {
                    id,
                    org_id,
                    name: name.to_string(),
                    plan,
                    requested_by: actor,
                    members_group,
                    admins_group,
                }
            }
            WorkspaceCommand::RenameWorkspace { name } => {
                self.existing()?;
                if self.name == name.as_str() {
                    return Ok(());
                }
                WorkspaceEvent::WorkspaceRenamed {
                    name: name.to_string(),
                }
            }
            WorkspaceCommand::ChangePlan { plan } => {
                self.existing()?;
                if self.plan == plan {
                    return Ok(());
                }
                WorkspaceEvent::WorkspacePlanChanged { plan }
            }
            WorkspaceCommand::RequestDeletion { actor } => {
                self.existing()?;
                WorkspaceEvent::WorkspaceDeletionRequested {
                    requested_by: actor,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WorkspaceEvent::WorkspaceRequested {
                id,
                org_id,
                name,
                plan,
                members_group,
                admins_group,
                ..
            } => {
                self.id = Some(id);
                self.org_id = Some(org_id);
                self.name = name;
                self.plan = plan;
                self.status = WorkspaceStatus::Requested;
                self.members_group = Some(members_group);
                self.admins_group = Some(admins_group);
            }
            WorkspaceEvent::WorkspaceRenamed { name } => self.name = name,
            WorkspaceEvent::WorkspacePlanChanged { plan } => self.plan = plan,
            WorkspaceEvent::WorkspaceDeletionRequested { .. } => {
                self.status = WorkspaceStatus::Deleting;
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
