//! Workspace tokens handed out: one small aggregate per token (its `jti`), so issuing tokens
//! neither contends with nor lengthens the workspace's own history, and auditors still see every
//! credential (who, which workspace, groups, expiry).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::id::{OrganizationId, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq)]
pub enum CredentialCommand {
    /// `groups`: the user's groups in the workspace (with ancestors), as the token says.
    IssueWorkspaceToken {
        org_id: OrganizationId,
        workspace_id: WorkspaceId,
        user: UserId,
        expires_at: u64,
        groups: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CredentialEvent {
    WorkspaceTokenIssued {
        org_id: OrganizationId,
        workspace_id: WorkspaceId,
        user: UserId,
        expires_at: u64,
        groups: Vec<String>,
    },
}

impl DomainEvent for CredentialEvent {
    fn event_type(&self) -> String {
        match self {
            CredentialEvent::WorkspaceTokenIssued { .. } => "WorkspaceTokenIssued",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("this token was already issued")]
    AlreadyIssued,
    #[error("a workspace token needs at least one group")]
    NoGroups,
}

/// A token handed out, identified by its `jti`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    issued: bool,
}

impl Aggregate for Credential {
    const TYPE: &'static str = "Credential";
    type Command = CredentialCommand;
    type Event = CredentialEvent;
    type Error = CredentialError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let CredentialCommand::IssueWorkspaceToken {
            org_id,
            workspace_id,
            user,
            expires_at,
            groups,
        } = command;
        if self.issued {
            return Err(CredentialError::AlreadyIssued);
        }
        if groups.is_empty() {
            return Err(CredentialError::NoGroups);
        }
        let event = CredentialEvent::WorkspaceTokenIssued {
            org_id,
            workspace_id,
            user,
            expires_at,
            groups,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CredentialEvent::WorkspaceTokenIssued { .. } => self.issued = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn issue(groups: Vec<String>) -> CredentialCommand {
        CredentialCommand::IssueWorkspaceToken {
            org_id: OrganizationId::parse("org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            workspace_id: WorkspaceId::parse("ws-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            user: UserId::parse("hxb-usr-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            expires_at: 1_900_000_000,
            groups,
        }
    }

    #[test]
    fn a_token_is_issued_once_and_only_with_groups() {
        let issued = CredentialEvent::WorkspaceTokenIssued {
            org_id: OrganizationId::parse("org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            workspace_id: WorkspaceId::parse("ws-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            user: UserId::parse("hxb-usr-0192f0c1a8b47c3e9d2a51b0c4e6f7a8").unwrap(),
            expires_at: 1_900_000_000,
            groups: vec!["WSAdmins".into()],
        };
        TestFramework::<Credential>::with(())
            .given_no_previous_events()
            .when(issue(vec!["WSAdmins".into()]))
            .then_expect_events(vec![issued.clone()]);
        TestFramework::<Credential>::with(())
            .given(vec![issued])
            .when(issue(vec!["WSAdmins".into()]))
            .then_expect_error(CredentialError::AlreadyIssued);
        TestFramework::<Credential>::with(())
            .given_no_previous_events()
            .when(issue(vec![]))
            .then_expect_error(CredentialError::NoGroups);
    }
}
