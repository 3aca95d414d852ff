use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::billing::{PaymentState, SubscriptionState};
use crate::id::{OrganizationId, UserId, WorkspaceId};
use crate::policy::OrgRole;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    /// The creator becomes the organization's first admin.
    OrganizationCreated {
        id: OrganizationId,
        name: String,
        created_by: UserId,
    },
    OrganizationRenamed {
        name: String,
    },
    UserInvited {
        email: String,
        role: OrgRole,
        invited_by: UserId,
    },
    MemberRemoved {
        user_id: UserId,
    },
    InvitationAccepted {
        email: String,
        user_id: UserId,
        role: OrgRole,
    },
    MemberRoleChanged {
        user_id: UserId,
        role: OrgRole,
    },
    OrganizationDeleted {
        deleted_by: UserId,
    },
    WorkspaceAttached {
        workspace_id: WorkspaceId,
    },
    WorkspaceDetached {
        workspace_id: WorkspaceId,
    },
    /// The organization needs a Stripe customer (one is created on its creation; this asks
    /// again for one created before billing was configured).
    BillingCustomerRequested,
    BillingCustomerCreated {
        customer_id: String,
    },
    /// A subscription now pays for its plan; `resumed`: the workspaces billing had suspended.
    SubscriptionActivated {
        subscription: SubscriptionState,
        resumed: Vec<WorkspaceId>,
    },
    /// Its plan, status, period or cancellation changed.
    SubscriptionChanged {
        subscription: SubscriptionState,
        previous_plan: Option<String>,
    },
    /// Stripe ended the subscription: the workspaces are suspended after `suspend_after`.
    SubscriptionCanceled {
        subscription: SubscriptionState,
        suspend_after: DateTime<Utc>,
    },
    PaymentSucceeded {
        payment: PaymentState,
        subscription_id: Option<String>,
        resumed: Vec<WorkspaceId>,
    },
    /// The workspaces are suspended after `grace_until` unless a payment succeeds first.
    PaymentFailed {
        payment: PaymentState,
        subscription_id: Option<String>,
        grace_until: DateTime<Utc>,
    },
    /// The deadline passed unpaid: these workspaces are suspended until a payment succeeds.
    BillingSuspended {
        workspaces: Vec<WorkspaceId>,
        reason: String,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            OrganizationEvent::OrganizationCreated { .. } => "OrganizationCreated",
            OrganizationEvent::OrganizationRenamed { .. } => "OrganizationRenamed",
            OrganizationEvent::UserInvited { .. } => "UserInvited",
            OrganizationEvent::MemberRemoved { .. } => "MemberRemoved",
            OrganizationEvent::InvitationAccepted { .. } => "InvitationAccepted",
            OrganizationEvent::MemberRoleChanged { .. } => "MemberRoleChanged",
            OrganizationEvent::OrganizationDeleted { .. } => "OrganizationDeleted",
            OrganizationEvent::WorkspaceAttached { .. } => "WorkspaceAttached",
            OrganizationEvent::WorkspaceDetached { .. } => "WorkspaceDetached",
            OrganizationEvent::BillingCustomerRequested => "BillingCustomerRequested",
            OrganizationEvent::BillingCustomerCreated { .. } => "BillingCustomerCreated",
            OrganizationEvent::SubscriptionActivated { .. } => "SubscriptionActivated",
            OrganizationEvent::SubscriptionChanged { .. } => "SubscriptionChanged",
            OrganizationEvent::SubscriptionCanceled { .. } => "SubscriptionCanceled",
            OrganizationEvent::PaymentSucceeded { .. } => "PaymentSucceeded",
            OrganizationEvent::PaymentFailed { .. } => "PaymentFailed",
            OrganizationEvent::BillingSuspended { .. } => "BillingSuspended",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
