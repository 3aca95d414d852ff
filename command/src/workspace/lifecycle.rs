//! The workspace's life as its sagas record it: provisioning started, step failed, provisioned
//! or failed; suspended and resumed (asked for by an organization admin or by the control
//! plane, done by a saga); deleted. The sagas retry their steps, so every command here is idempotent: what
//! is already recorded records nothing. A deletion requested meanwhile wins: the workspace stays
//! `Deleting` whatever provisioning records, until its cluster is gone.

use super::aggregate::{Workspace, WorkspaceError, WorkspaceStatus};
use super::{WorkspaceCommand, WorkspaceEvent};

/// Reasons are shown to users and kept in the history: bounded.
const MAX_REASON: usize = 2_000;

fn bounded(reason: String) -> String {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// Suspending and resuming need a cluster that is there and not going.
fn not_running(status: WorkspaceStatus) -> WorkspaceError {
    match status {
        WorkspaceStatus::Deleting | WorkspaceStatus::Deleted => WorkspaceError::BeingDeleted,
        other => WorkspaceError::NotRunning(other.as_str()),
    }
}

impl Workspace {
    pub(super) fn handle_lifecycle(
        &self,
        command: WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        if self.id.is_none() {
            return Err(WorkspaceError::NotFound);
        }
        let status = self.status;
        let events = match command {
            WorkspaceCommand::StartProvisioning { task } => match status {
                WorkspaceStatus::Requested => {
                    vec![WorkspaceEvent::WorkspaceProvisioningStarted { task }]
                }
                WorkspaceStatus::Deleting | WorkspaceStatus::Deleted => {
                    return Err(WorkspaceError::BeingDeleted)
                }
                _ => vec![],
            },
            WorkspaceCommand::CompleteProvisioning => match status {
                WorkspaceStatus::Provisioning => vec![WorkspaceEvent::WorkspaceProvisioned],
                WorkspaceStatus::Deleting if !self.provisioned => {
                    vec![WorkspaceEvent::WorkspaceProvisioned]
                }
                _ => vec![],
            },
            WorkspaceCommand::RecordStepFailure { task, step, reason } => {
                vec![WorkspaceEvent::WorkspaceStepFailed {
                    task,
                    step,
                    reason: bounded(reason),
                }]
            }
            WorkspaceCommand::FailProvisioning { reason } => match status {
                WorkspaceStatus::Requested | WorkspaceStatus::Provisioning => {
                    vec![WorkspaceEvent::WorkspaceProvisioningFailed {
                        reason: bounded(reason),
                    }]
                }
                _ => vec![],
            },
            WorkspaceCommand::CompleteDeletion => match status {
                WorkspaceStatus::Deleting => vec![WorkspaceEvent::WorkspaceDeleted],
                _ => vec![],
            },
            WorkspaceCommand::RequestSuspension { actor, reason } => match status {
                WorkspaceStatus::Ready | WorkspaceStatus::Resuming => {
                    vec![WorkspaceEvent::WorkspaceSuspensionRequested {
                        requested_by: actor,
                        reason: reason.map(bounded),
                    }]
                }
                WorkspaceStatus::Suspending | WorkspaceStatus::Suspended => vec![],
                other => return Err(not_running(other)),
            },
            WorkspaceCommand::RequestResumption { actor } => match status {
                WorkspaceStatus::Suspended | WorkspaceStatus::Suspending => {
                    vec![WorkspaceEvent::WorkspaceResumptionRequested {
                        requested_by: actor,
                    }]
                }
                WorkspaceStatus::Ready | WorkspaceStatus::Resuming => vec![],
                other => return Err(not_running(other)),
            },
            WorkspaceCommand::CompleteSuspension => match status {
                WorkspaceStatus::Suspending => vec![WorkspaceEvent::WorkspaceSuspended],
                _ => vec![],
            },
            WorkspaceCommand::CompleteResumption => match status {
                WorkspaceStatus::Resuming => vec![WorkspaceEvent::WorkspaceResumed],
                _ => vec![],
            },
            _ => vec![],
        };
        Ok(events)
    }

    pub(super) fn apply_lifecycle(&mut self, event: WorkspaceEvent) {
        match event {
            WorkspaceEvent::WorkspaceProvisioningStarted { .. }
                if self.status == WorkspaceStatus::Requested =>
            {
                self.status = WorkspaceStatus::Provisioning;
            }
            WorkspaceEvent::WorkspaceProvisioned => {
                self.provisioned = true;
                if self.status == WorkspaceStatus::Provisioning {
                    self.status = WorkspaceStatus::Ready;
                }
            }
            WorkspaceEvent::WorkspaceProvisioningFailed { reason }
                if matches!(
                    self.status,
                    WorkspaceStatus::Requested | WorkspaceStatus::Provisioning
                ) =>
            {
                self.status = WorkspaceStatus::Failed;
                self.status_reason = Some(reason);
                self.endpoint = None;
            }
            WorkspaceEvent::WorkspaceDeleted => {
                self.status = WorkspaceStatus::Deleted;
                self.endpoint = None;
            }
            WorkspaceEvent::WorkspaceSuspensionRequested { .. }
                if matches!(
                    self.status,
                    WorkspaceStatus::Ready | WorkspaceStatus::Resuming
                ) =>
            {
                self.status = WorkspaceStatus::Suspending;
            }
            WorkspaceEvent::WorkspaceSuspended if self.status == WorkspaceStatus::Suspending => {
                self.status = WorkspaceStatus::Suspended;
            }
            WorkspaceEvent::WorkspaceResumptionRequested { .. }
                if matches!(
                    self.status,
                    WorkspaceStatus::Suspended | WorkspaceStatus::Suspending
                ) =>
            {
                self.status = WorkspaceStatus::Resuming;
            }
            WorkspaceEvent::WorkspaceResumed if self.status == WorkspaceStatus::Resuming => {
                self.status = WorkspaceStatus::Ready;
            }
            _ => {}
        }
    }

    /// Where the workspace is in its life.
    pub fn status(&self) -> WorkspaceStatus {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::Aggregate;

    use crate::id::{UserId, WorkspaceId};
    use crate::workspace::test_support::{requested, Given};
    use crate::workspace::{
        Workspace, WorkspaceCommand, WorkspaceError, WorkspaceEvent, WorkspaceStatus,
    };

    #[test]
    fn provisioning_walks_requested_provisioning_ready_and_repeats_record_nothing() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let task = "task-1".to_owned();
        let started = WorkspaceEvent::WorkspaceProvisioningStarted { task: task.clone() };
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::StartProvisioning { task: task.clone() })
            .then_expect_events(vec![started.clone()]);
        Given::with(())
            .given(vec![requested(&id, &alice), started.clone()])
            .when(WorkspaceCommand::StartProvisioning { task: task.clone() })
            .then_expect_events(vec![]);
        Given::with(())
            .given(vec![requested(&id, &alice), started.clone()])
            .when(WorkspaceCommand::CompleteProvisioning)
            .then_expect_events(vec![WorkspaceEvent::WorkspaceProvisioned]);
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                started.clone(),
                WorkspaceEvent::WorkspaceProvisioned,
            ])
            .when(WorkspaceCommand::CompleteProvisioning)
            .then_expect_events(vec![]);
        let mut ws = Workspace::default();
        for event in [
            requested(&id, &alice),
            started,
            WorkspaceEvent::WorkspaceProvisioned,
        ] {
            ws.apply(event);
        }
        assert_eq!(ws.status(), WorkspaceStatus::Ready);
    }

    #[test]
    fn a_failure_is_recorded_once_and_a_deletion_meanwhile_keeps_the_workspace_deleting() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let started = WorkspaceEvent::WorkspaceProvisioningStarted {
            task: "task-1".into(),
        };
        let failed = WorkspaceEvent::WorkspaceProvisioningFailed {
            reason: "no API server".into(),
        };
        Given::with(())
            .given(vec![requested(&id, &alice), started.clone()])
            .when(WorkspaceCommand::FailProvisioning {
                reason: "no API server".into(),
            })
            .then_expect_events(vec![failed.clone()]);
        Given::with(())
            .given(vec![requested(&id, &alice), started.clone(), failed])
            .when(WorkspaceCommand::FailProvisioning {
                reason: "again".into(),
            })
            .then_expect_events(vec![]);
        let deleting = WorkspaceEvent::WorkspaceDeletionRequested {
            requested_by: alice.clone(),
        };
        let mut ws = Workspace::default();
        for event in [
            requested(&id, &alice),
            started,
            deleting.clone(),
            WorkspaceEvent::WorkspaceProvisioned,
        ] {
            ws.apply(event);
        }
        assert_eq!(ws.status(), WorkspaceStatus::Deleting);
        Given::with(())
            .given(vec![requested(&id, &alice), deleting.clone()])
            .when(WorkspaceCommand::StartProvisioning {
                task: "task-2".into(),
            })
            .then_expect_error(WorkspaceError::BeingDeleted);
        Given::with(())
            .given(vec![requested(&id, &alice), deleting.clone()])
            .when(WorkspaceCommand::CompleteDeletion)
            .then_expect_events(vec![WorkspaceEvent::WorkspaceDeleted]);
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                deleting,
                WorkspaceEvent::WorkspaceDeleted,
            ])
            .when(WorkspaceCommand::CompleteDeletion)
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_ready_workspace_is_suspended_and_resumed_and_repeats_record_nothing() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        let ready = vec![
            requested(&id, &alice),
            WorkspaceEvent::WorkspaceProvisioningStarted { task: "t".into() },
            WorkspaceEvent::WorkspaceProvisioned,
        ];
        let asked = WorkspaceEvent::WorkspaceSuspensionRequested {
            requested_by: Some(alice.clone()),
            reason: None,
        };
        Given::with(())
            .given(ready.clone())
            .when(WorkspaceCommand::RequestSuspension {
                actor: Some(alice.clone()),
                reason: None,
            })
            .then_expect_events(vec![asked.clone()]);
        let mut suspending = ready.clone();
        suspending.push(asked.clone());
        Given::with(())
            .given(suspending.clone())
            .when(WorkspaceCommand::RequestSuspension {
                actor: Some(alice.clone()),
                reason: None,
            })
            .then_expect_events(vec![]);
        Given::with(())
            .given(suspending.clone())
            .when(WorkspaceCommand::CompleteSuspension)
            .then_expect_events(vec![WorkspaceEvent::WorkspaceSuspended]);
        let mut suspended = suspending.clone();
        suspended.push(WorkspaceEvent::WorkspaceSuspended);
        Given::with(())
            .given(suspended.clone())
            .when(WorkspaceCommand::CompleteSuspension)
            .then_expect_events(vec![]);
        let resuming = WorkspaceEvent::WorkspaceResumptionRequested {
            requested_by: Some(alice.clone()),
        };
        Given::with(())
            .given(suspended.clone())
            .when(WorkspaceCommand::RequestResumption {
                actor: Some(alice.clone()),
            })
            .then_expect_events(vec![resuming.clone()]);
        let mut ws = Workspace::default();
        for event in suspended
            .into_iter()
            .chain([resuming, WorkspaceEvent::WorkspaceResumed])
        {
            ws.apply(event);
        }
        assert_eq!(ws.status(), WorkspaceStatus::Ready);
        // Resuming a running workspace records nothing.
        Given::with(())
            .given(ready)
            .when(WorkspaceCommand::RequestResumption { actor: None })
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_a_running_workspace_is_suspended() {
        let (id, alice) = (WorkspaceId::generate(), UserId::generate());
        Given::with(())
            .given(vec![requested(&id, &alice)])
            .when(WorkspaceCommand::RequestSuspension {
                actor: None,
                reason: None,
            })
            .then_expect_error(WorkspaceError::NotRunning("Requested"));
        Given::with(())
            .given(vec![
                requested(&id, &alice),
                WorkspaceEvent::WorkspaceDeletionRequested {
                    requested_by: alice.clone(),
                },
            ])
            .when(WorkspaceCommand::RequestResumption { actor: None })
            .then_expect_error(WorkspaceError::BeingDeleted);
    }
}
