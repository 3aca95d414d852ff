use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::billing::Billing;
use super::{OrganizationCommand, OrganizationEvent};
use crate::id::{OrganizationId, UserId, WorkspaceId};
use crate::policy::{self, Decision, OrgAction, OrgRole};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    #[error("organization not found")]
    NotFound,
    #[error("organization already exists")]
    AlreadyExists,
    #[error("only organization admins may do this")]
    Forbidden,
    #[error("{0} is already a member")]
    AlreadyMember(String),
    #[error("{0} already has a pending invitation")]
    AlreadyInvited(String),
    #[error("user {0} is not a member of this organization")]
    MemberNotFound(String),
    #[error("the last admin cannot be removed; make another member admin first")]
    LastAdmin,
    #[error("there is no pending invitation for {0}")]
    NoInvitation(String),
    #[error("the organization still has workspaces ({0}); delete them first")]
    HasWorkspaces(String),
    #[error("workspace {0} is already part of the organization")]
    WorkspaceExists(String),
    #[error("the organization already has the Stripe customer {0}")]
    CustomerExists(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    id: Option<OrganizationId>,
    name: String,
    members: BTreeMap<UserId, OrgRole>,
    invitations: BTreeMap<String, OrgRole>,
    workspaces: BTreeSet<WorkspaceId>,
    deleted: bool,
    #[serde(default)]
    billing: Billing,
}

impl Organization {
    /// `user`'s role, while the organization exists.
    pub fn role_of(&self, user: &UserId) -> Option<OrgRole> {
        if self.id.is_none() || self.deleted {
            return None;
        }
        self.members.get(user).copied()
    }

    fn authorize(&self, actor: &UserId, action: OrgAction) -> Result<(), OrganizationError> {
        if self.id.is_none() || self.deleted {
            return Err(OrganizationError::NotFound);
        }
        match policy::decide(self.members.get(actor).copied(), action) {
            Decision::Allowed => Ok(()),
            Decision::Forbidden => Err(OrganizationError::Forbidden),
            Decision::NotFound => Err(OrganizationError::NotFound),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn billing(&self) -> &Billing {
        &self.billing
    }

    /// The workspaces it has.
    pub fn workspaces(&self) -> &BTreeSet<WorkspaceId> {
        &self.workspaces
    }

    /// Its admins, while it exists.
    pub fn admin_ids(&self) -> Vec<UserId> {
        if self.id.is_none() || self.deleted {
            return Vec::new();
        }
        self.members
            .iter()
            .filter(|(_, role)| **role == OrgRole::Admin)
            .map(|(user, _)| user.clone())
            .collect()
    }

    fn exists(&self) -> Result<(), OrganizationError> {
        if self.id.is_none() || self.deleted {
            return Err(OrganizationError::NotFound);
        }
        Ok(())
    }

    fn admins(&self) -> usize {
        self.members
            .values()
            .filter(|role| **role == OrgRole::Admin)
            .count()
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            OrganizationCommand::RequestBillingCustomer => {
                self.exists()?;
                if self.billing.customer_id.is_some() {
                    return Ok(());
                }
                vec![OrganizationEvent::BillingCustomerRequested]
            }
            OrganizationCommand::RecordBillingCustomer { customer_id } => {
                self.exists()?;
                match &self.billing.customer_id {
                    Some(known) if *known == customer_id => return Ok(()),
                    Some(known) => {
                        return Err(OrganizationError::CustomerExists(known.clone()));
                    }
                    None => vec![OrganizationEvent::BillingCustomerCreated { customer_id }],
                }
            }
            OrganizationCommand::SyncSubscription {
                subscription,
                deleted,
                now,
            } => {
                self.exists()?;
                self.billing.subscription_events(subscription, deleted, now)
            }
            OrganizationCommand::RecordPayment {
                payment,
                subscription_id,
                grace_until,
            } => {
                self.exists()?;
                self.billing
                    .payment_events(payment, subscription_id, grace_until)
            }
            OrganizationCommand::SuspendForNonPayment { now } => {
                self.exists()?;
                self.billing.suspension_events(&self.workspaces, now)
            }
            command => self.decide(command)?.into_iter().collect(),
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.billing.apply(&event);
        self.apply_membership(event);
    }
}

impl Organization {
    /// The event a membership or workspace command records.
    fn decide(
        &self,
        command: OrganizationCommand,
    ) -> Result<Option<OrganizationEvent>, OrganizationError> {
        let event = match command {
            OrganizationCommand::CreateOrganization { id, name, actor } => {
                if self.id.is_some() {
                    return Err(OrganizationError::AlreadyExists);
                }
                OrganizationEvent::OrganizationCreated {
                    id,
                    name: name.to_string(),
                    created_by: actor,
                }
            }
            OrganizationCommand::RenameOrganization { name, actor } => {
                self.authorize(&actor, OrgAction::Rename)?;
                if self.name == name.as_str() {
                    // Renaming to the current name changes nothing, so it records nothing.
                    return Ok(None);
                }
                OrganizationEvent::OrganizationRenamed {
                    name: name.to_string(),
                }
            }
            OrganizationCommand::InviteUser { email, role, actor } => {
                self.authorize(&actor, OrgAction::Invite)?;
                if self.invitations.contains_key(email.as_str()) {
                    return Err(OrganizationError::AlreadyInvited(email.to_string()));
                }
                OrganizationEvent::UserInvited {
                    email: email.to_string(),
                    role,
                    invited_by: actor,
                }
            }
            OrganizationCommand::RemoveMember { user_id, actor } => {
                self.authorize(&actor, OrgAction::RemoveMember)?;
                let role = self
                    .members
                    .get(&user_id)
                    .ok_or_else(|| OrganizationError::MemberNotFound(user_id.to_string()))?;
                if *role == OrgRole::Admin && self.admins() == 1 {
                    return Err(OrganizationError::LastAdmin);
                }
                OrganizationEvent::MemberRemoved { user_id }
            }
            OrganizationCommand::ChangeMemberRole {
                user_id,
                role,
                actor,
            } => {
                self.authorize(&actor, OrgAction::ChangeRole)?;
                let current = *self
                    .members
                    .get(&user_id)
                    .ok_or_else(|| OrganizationError::MemberNotFound(user_id.to_string()))?;
                if current == role {
                    return Ok(None);
                }
                if current == OrgRole::Admin && self.admins() == 1 {
                    return Err(OrganizationError::LastAdmin);
                }
                OrganizationEvent::MemberRoleChanged { user_id, role }
            }
            OrganizationCommand::DeleteOrganization { actor } => {
                self.authorize(&actor, OrgAction::Delete)?;
                if !self.workspaces.is_empty() {
                    let names: Vec<&str> =
                        self.workspaces.iter().map(WorkspaceId::as_str).collect();
                    return Err(OrganizationError::HasWorkspaces(names.join(", ")));
                }
                OrganizationEvent::OrganizationDeleted { deleted_by: actor }
            }
            OrganizationCommand::AttachWorkspace {
                workspace_id,
                actor,
            } => {
                self.authorize(&actor, OrgAction::CreateWorkspace)?;
                if self.workspaces.contains(&workspace_id) {
                    return Err(OrganizationError::WorkspaceExists(workspace_id.to_string()));
                }
                OrganizationEvent::WorkspaceAttached { workspace_id }
            }
            OrganizationCommand::DetachWorkspace { workspace_id } => {
                if !self.workspaces.contains(&workspace_id) {
                    return Ok(None);
                }
                OrganizationEvent::WorkspaceDetached { workspace_id }
            }
            OrganizationCommand::AcceptInvitation {
                verified_email,
                actor,
            } => {
                if self.id.is_none() || self.deleted {
                    return Err(OrganizationError::NotFound);
                }
                // Someone neither invited nor a member learns nothing about the organization.
                let role = match self.invitations.get(verified_email.as_str()) {
                    Some(role) => *role,
                    None if self.members.contains_key(&actor) => {
                        return Err(OrganizationError::NoInvitation(verified_email.to_string()))
                    }
                    None => return Err(OrganizationError::NotFound),
                };
                if self.members.contains_key(&actor) {
                    return Err(OrganizationError::AlreadyMember(actor.to_string()));
                }
                OrganizationEvent::InvitationAccepted {
                    email: verified_email.to_string(),
                    user_id: actor,
                    role,
                }
            }
            // Billing's commands are decided in `handle`.
            OrganizationCommand::RequestBillingCustomer
            | OrganizationCommand::RecordBillingCustomer { .. }
            | OrganizationCommand::SyncSubscription { .. }
            | OrganizationCommand::RecordPayment { .. }
            | OrganizationCommand::SuspendForNonPayment { .. } => {
                return Err(OrganizationError::NotFound)
            }
        };
        Ok(Some(event))
    }

    fn apply_membership(&mut self, event: OrganizationEvent) {
        match event {
            OrganizationEvent::OrganizationCreated {
                id,
                name,
                created_by,
            } => {
                self.id = Some(id);
                self.name = name;
                self.members.insert(created_by, OrgRole::Admin);
            }
            OrganizationEvent::OrganizationRenamed { name } => self.name = name,
            OrganizationEvent::UserInvited { email, role, .. } => {
                self.invitations.insert(email, role);
            }
            OrganizationEvent::MemberRemoved { user_id } => {
                self.members.remove(&user_id);
            }
            OrganizationEvent::InvitationAccepted {
                email,
                user_id,
                role,
            } => {
                self.invitations.remove(&email);
                self.members.insert(user_id, role);
            }
            OrganizationEvent::MemberRoleChanged { user_id, role } => {
                self.members.insert(user_id, role);
            }
            OrganizationEvent::OrganizationDeleted { .. } => self.deleted = true,
            OrganizationEvent::WorkspaceAttached { workspace_id } => {
                self.workspaces.insert(workspace_id);
            }
            OrganizationEvent::WorkspaceDetached { workspace_id } => {
                self.workspaces.remove(&workspace_id);
            }
            // `billing` keeps these.
            OrganizationEvent::BillingCustomerRequested
            | OrganizationEvent::BillingCustomerCreated { .. }
            | OrganizationEvent::SubscriptionActivated { .. }
            | OrganizationEvent::SubscriptionChanged { .. }
            | OrganizationEvent::SubscriptionCanceled { .. }
            | OrganizationEvent::PaymentSucceeded { .. }
            | OrganizationEvent::PaymentFailed { .. }
            | OrganizationEvent::BillingSuspended { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::values::{DisplayName, Email};

    type Given = TestFramework<Organization>;

    fn name(raw: &str) -> DisplayName {
        DisplayName::parse("name", raw).unwrap()
    }

    fn created(id: &OrganizationId, by: &UserId) -> OrganizationEvent {
        OrganizationEvent::OrganizationCreated {
            id: id.clone(),
            name: "Acme".into(),
            created_by: by.clone(),
        }
    }

    /// An organization with a second member (as after an accepted invitation).
    fn with_member(
        org: &OrganizationId,
        admin: &UserId,
        member: &UserId,
        role: OrgRole,
    ) -> Organization {
        let mut state = Organization::default();
        state.apply(created(org, admin));
        state.members.insert(member.clone(), role);
        state
    }

    async fn run(
        mut state: Organization,
        command: OrganizationCommand,
    ) -> Result<Vec<OrganizationEvent>, OrganizationError> {
        let sink = EventSink::default();
        state.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    }

    #[test]
    fn create_records_the_creator_as_first_admin() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given_no_previous_events()
            .when(OrganizationCommand::CreateOrganization {
                id: org.clone(),
                name: name("Acme"),
                actor: alice.clone(),
            })
            .then_expect_events(vec![created(&org, &alice)]);
    }

    #[test]
    fn create_twice_is_refused() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::CreateOrganization {
                id: org.clone(),
                name: name("Acme"),
                actor: alice.clone(),
            })
            .then_expect_error(OrganizationError::AlreadyExists);
    }

    #[test]
    fn admin_renames() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::RenameOrganization {
                name: name("Acme Corp"),
                actor: alice,
            })
            .then_expect_events(vec![OrganizationEvent::OrganizationRenamed {
                name: "Acme Corp".into(),
            }]);
    }

    #[test]
    fn rename_to_same_name_records_nothing() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::RenameOrganization {
                name: name("Acme"),
                actor: alice,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn strangers_cannot_rename_or_even_see_it() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::RenameOrganization {
                name: name("Mine now"),
                actor: UserId::generate(),
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn commands_on_a_missing_organization_are_not_found() {
        Given::with(())
            .given_no_previous_events()
            .when(OrganizationCommand::InviteUser {
                email: Email::parse("email", "ada@example.com").unwrap(),
                role: OrgRole::Member,
                actor: UserId::generate(),
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn admin_invites_by_email() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::InviteUser {
                email: Email::parse("email", "Ada@Example.com").unwrap(),
                role: OrgRole::Member,
                actor: alice.clone(),
            })
            .then_expect_events(vec![OrganizationEvent::UserInvited {
                email: "ada@example.com".into(),
                role: OrgRole::Member,
                invited_by: alice,
            }]);
    }

    #[test]
    fn inviting_the_same_email_twice_is_refused() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        let invited = OrganizationEvent::UserInvited {
            email: "ada@example.com".into(),
            role: OrgRole::Member,
            invited_by: alice.clone(),
        };
        Given::with(())
            .given(vec![created(&org, &alice), invited])
            .when(OrganizationCommand::InviteUser {
                email: Email::parse("email", "ADA@example.com").unwrap(),
                role: OrgRole::Admin,
                actor: alice,
            })
            .then_expect_error(OrganizationError::AlreadyInvited("ada@example.com".into()));
    }

    #[tokio::test]
    async fn members_may_not_invite() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let state = with_member(&org, &alice, &bob, OrgRole::Member);
        let result = run(
            state,
            OrganizationCommand::InviteUser {
                email: Email::parse("email", "eve@example.com").unwrap(),
                role: OrgRole::Admin,
                actor: bob,
            },
        )
        .await;
        assert_eq!(result, Err(OrganizationError::Forbidden));
    }

    #[tokio::test]
    async fn admin_removes_a_member() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let state = with_member(&org, &alice, &bob, OrgRole::Member);
        let result = run(
            state,
            OrganizationCommand::RemoveMember {
                user_id: bob.clone(),
                actor: alice,
            },
        )
        .await;
        assert_eq!(
            result,
            Ok(vec![OrganizationEvent::MemberRemoved { user_id: bob }])
        );
    }

    #[tokio::test]
    async fn an_admin_may_leave_while_another_admin_remains() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let state = with_member(&org, &alice, &bob, OrgRole::Admin);
        let result = run(
            state,
            OrganizationCommand::RemoveMember {
                user_id: alice.clone(),
                actor: alice.clone(),
            },
        )
        .await;
        assert_eq!(
            result,
            Ok(vec![OrganizationEvent::MemberRemoved { user_id: alice }])
        );
    }

    #[test]
    fn the_last_admin_cannot_be_removed() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::RemoveMember {
                user_id: alice.clone(),
                actor: alice,
            })
            .then_expect_error(OrganizationError::LastAdmin);
    }

    #[test]
    fn removing_a_non_member_is_refused() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::RemoveMember {
                user_id: bob.clone(),
                actor: alice,
            })
            .then_expect_error(OrganizationError::MemberNotFound(bob.to_string()));
    }

    #[test]
    fn removed_members_lose_their_rights() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        Given::with(())
            .given(vec![
                created(&org, &alice),
                OrganizationEvent::MemberRemoved {
                    user_id: bob.clone(),
                },
            ])
            .when(OrganizationCommand::RenameOrganization {
                name: name("Bob's"),
                actor: bob,
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn roles_are_known_for_members_only_while_the_organization_exists() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let mut state = with_member(&org, &alice, &bob, OrgRole::Member);
        assert_eq!(state.role_of(&alice), Some(OrgRole::Admin));
        assert_eq!(state.role_of(&bob), Some(OrgRole::Member));
        state.apply(OrganizationEvent::MemberRemoved {
            user_id: bob.clone(),
        });
        assert_eq!(state.role_of(&bob), None);
        assert_eq!(Organization::default().role_of(&alice), None);
    }

    fn invited(email: &str, role: OrgRole, by: &UserId) -> OrganizationEvent {
        OrganizationEvent::UserInvited {
            email: email.into(),
            role,
            invited_by: by.clone(),
        }
    }

    #[test]
    fn the_invited_email_accepts_and_becomes_a_member_with_the_invited_role() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        Given::with(())
            .given(vec![
                created(&org, &alice),
                invited("bob@example.com", OrgRole::Admin, &alice),
            ])
            .when(OrganizationCommand::AcceptInvitation {
                verified_email: Email::parse("email", "Bob@Example.com").unwrap(),
                actor: bob.clone(),
            })
            .then_expect_events(vec![OrganizationEvent::InvitationAccepted {
                email: "bob@example.com".into(),
                user_id: bob,
                role: OrgRole::Admin,
            }]);
    }

    #[test]
    fn another_email_cannot_accept_and_an_invitation_is_used_once() {
        let (org, alice, bob, eve) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        Given::with(())
            .given(vec![
                created(&org, &alice),
                invited("bob@example.com", OrgRole::Member, &alice),
            ])
            .when(OrganizationCommand::AcceptInvitation {
                verified_email: Email::parse("email", "eve@example.com").unwrap(),
                actor: eve.clone(),
            })
            .then_expect_error(OrganizationError::NotFound);
        Given::with(())
            .given(vec![
                created(&org, &alice),
                invited("bob@example.com", OrgRole::Member, &alice),
                OrganizationEvent::InvitationAccepted {
                    email: "bob@example.com".into(),
                    user_id: bob,
                    role: OrgRole::Member,
                },
            ])
            .when(OrganizationCommand::AcceptInvitation {
                verified_email: Email::parse("email", "bob@example.com").unwrap(),
                actor: eve,
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn a_member_cannot_accept_an_invitation_again_and_nothing_is_found_without_the_org() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![
                created(&org, &alice),
                invited("alice@example.com", OrgRole::Member, &alice),
            ])
            .when(OrganizationCommand::AcceptInvitation {
                verified_email: Email::parse("email", "alice@example.com").unwrap(),
                actor: alice.clone(),
            })
            .then_expect_error(OrganizationError::AlreadyMember(alice.to_string()));
        Given::with(())
            .given_no_previous_events()
            .when(OrganizationCommand::AcceptInvitation {
                verified_email: Email::parse("email", "alice@example.com").unwrap(),
                actor: alice,
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn admins_change_roles_but_never_demote_the_last_admin() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let bob_joined = OrganizationEvent::InvitationAccepted {
            email: "bob@example.com".into(),
            user_id: bob.clone(),
            role: OrgRole::Member,
        };
        Given::with(())
            .given(vec![created(&org, &alice), bob_joined.clone()])
            .when(OrganizationCommand::ChangeMemberRole {
                user_id: bob.clone(),
                role: OrgRole::Admin,
                actor: alice.clone(),
            })
            .then_expect_events(vec![OrganizationEvent::MemberRoleChanged {
                user_id: bob.clone(),
                role: OrgRole::Admin,
            }]);
        Given::with(())
            .given(vec![created(&org, &alice), bob_joined.clone()])
            .when(OrganizationCommand::ChangeMemberRole {
                user_id: alice.clone(),
                role: OrgRole::Member,
                actor: alice.clone(),
            })
            .then_expect_error(OrganizationError::LastAdmin);
        Given::with(())
            .given(vec![created(&org, &alice), bob_joined])
            .when(OrganizationCommand::ChangeMemberRole {
                user_id: alice.clone(),
                role: OrgRole::Member,
                actor: bob,
            })
            .then_expect_error(OrganizationError::Forbidden);
    }

    #[test]
    fn an_organization_with_workspaces_cannot_be_deleted() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        let ws = WorkspaceId::generate();
        let attached = OrganizationEvent::WorkspaceAttached {
            workspace_id: ws.clone(),
        };
        Given::with(())
            .given(vec![created(&org, &alice), attached.clone()])
            .when(OrganizationCommand::DeleteOrganization {
                actor: alice.clone(),
            })
            .then_expect_error(OrganizationError::HasWorkspaces(ws.to_string()));
        Given::with(())
            .given(vec![
                created(&org, &alice),
                attached,
                OrganizationEvent::WorkspaceDetached { workspace_id: ws },
            ])
            .when(OrganizationCommand::DeleteOrganization {
                actor: alice.clone(),
            })
            .then_expect_events(vec![OrganizationEvent::OrganizationDeleted {
                deleted_by: alice,
            }]);
    }

    #[test]
    fn a_deleted_organization_is_gone() {
        let (org, alice) = (OrganizationId::generate(), UserId::generate());
        Given::with(())
            .given(vec![
                created(&org, &alice),
                OrganizationEvent::OrganizationDeleted {
                    deleted_by: alice.clone(),
                },
            ])
            .when(OrganizationCommand::RenameOrganization {
                name: name("Again"),
                actor: alice,
            })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn only_admins_attach_workspaces_and_each_once() {
        let (org, alice, bob) = (
            OrganizationId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let ws = WorkspaceId::generate();
        Given::with(())
            .given(vec![created(&org, &alice)])
            .when(OrganizationCommand::AttachWorkspace {
                workspace_id: ws.clone(),
                actor: alice.clone(),
            })
            .then_expect_events(vec![OrganizationEvent::WorkspaceAttached {
                workspace_id: ws.clone(),
            }]);
        Given::with(())
            .given(vec![
                created(&org, &alice),
                OrganizationEvent::WorkspaceAttached {
                    workspace_id: ws.clone(),
                },
            ])
            .when(OrganizationCommand::AttachWorkspace {
                workspace_id: ws.clone(),
                actor: alice.clone(),
            })
            .then_expect_error(OrganizationError::WorkspaceExists(ws.to_string()));
        Given::with(())
            .given(vec![
                created(&org, &alice),
                OrganizationEvent::InvitationAccepted {
                    email: "bob@example.com".into(),
                    user_id: bob.clone(),
                    role: OrgRole::Member,
                },
            ])
            .when(OrganizationCommand::AttachWorkspace {
                workspace_id: ws,
                actor: bob,
            })
            .then_expect_error(OrganizationError::Forbidden);
    }
}
