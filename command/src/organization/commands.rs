use chrono::{DateTime, Utc};

use super::billing::{PaymentState, SubscriptionState};
use crate::id::{OrganizationId, UserId, WorkspaceId};
use crate::policy::OrgRole;
use crate::values::{DisplayName, Email};

/// Every command names its actor: the aggregate decides, through `policy`, whether the actor may.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    CreateOrganization {
        id: OrganizationId,
        name: DisplayName,
        actor: UserId,
    },
    RenameOrganization {
        name: DisplayName,
        actor: UserId,
    },
    InviteUser {
        email: Email,
        role: OrgRole,
        actor: UserId,
    },
    RemoveMember {
        user_id: UserId,
        actor: UserId,
    },
    ChangeMemberRole {
        user_id: UserId,
        role: OrgRole,
        actor: UserId,
    },
    /// Refused while the organization has workspaces.
    DeleteOrganization {
        actor: UserId,
    },
    /// A workspace is being created in the organization (recorded before the workspace's own
    /// first event, so the organization always knows its workspaces).
    AttachWorkspace {
        workspace_id: WorkspaceId,
        actor: UserId,
    },
    /// The workspace is gone (deleted, or its creation failed).
    DetachWorkspace {
        workspace_id: WorkspaceId,
    },
    /// The actor takes up the invitation sent to `email`, which their identity provider
    /// verified they control.
    AcceptInvitation {
        verified_email: Email,
        actor: UserId,
    },
    /// Ask for a Stripe customer, unless the organization has one.
    RequestBillingCustomer,
    /// The Stripe customer created for the organization.
    RecordBillingCustomer {
        customer_id: String,
    },
    /// What a Stripe event says about the subscription (`deleted`: Stripe ended it), recorded
    /// at `now`; older than what is recorded, it changes nothing.
    SyncSubscription {
        subscription: SubscriptionState,
        deleted: bool,
        now: DateTime<Utc>,
    },
    /// An invoice paid or failed; `grace_until`: the end of the grace period a failure now
    /// would start.
    RecordPayment {
        payment: PaymentState,
        subscription_id: Option<String>,
        grace_until: DateTime<Utc>,
    },
    /// Suspend the workspaces if the payment deadline has passed at `now`.
    SuspendForNonPayment {
        now: DateTime<Utc>,
    },
}
