//! The organization's billing state, as Stripe reports it: its customer, its subscription, its
//! last payment, and the deadline after which its workspaces are suspended (a failed payment's
//! grace period, or a canceled subscription's period end).
//!
//! Stripe does not deliver events in order, so every subscription and payment fact carries the
//! time of the Stripe event that reported it (`as_of`, Unix seconds) and a fact older than the
//! one recorded changes nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::OrganizationEvent;
use crate::id::WorkspaceId;

/// Stripe's statuses under which a subscription pays for its plan.
const PAYING: &[&str] = &["active", "trialing", "past_due"];

/// A subscription, as of the Stripe event `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    /// Stripe's id (`sub_…`).
    pub id: String,
    /// The plan of the catalogue whose price it bills (`None`: a price the catalogue lacks).
    pub plan: Option<String>,
    pub price_id: Option<String>,
    /// Stripe's status: `active`, `trialing`, `past_due`, `unpaid`, `canceled`, `incomplete`…
    pub status: String,
    /// End of the current billing period (Unix seconds), when Stripe said.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub as_of: i64,
}

impl SubscriptionState {
    /// Whether it pays for its plan now.
    pub fn paying(&self) -> bool {
        PAYING.contains(&self.status.as_str())
    }

    /// The same facts, whatever their time.
    fn same_as(&self, other: &Self) -> bool {
        Self {
            as_of: 0,
            ..self.clone()
        } == Self {
            as_of: 0,
            ..other.clone()
        }
    }
}

/// The last payment Stripe reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    pub invoice_id: String,
    pub succeeded: bool,
    pub as_of: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    /// Stripe's customer for the organization (`cus_…`).
    pub customer_id: Option<String>,
    pub subscription: Option<SubscriptionState>,
    pub payment: Option<PaymentState>,
    /// A payment failed: its workspaces are suspended after this, unless paid meanwhile.
    pub grace_until: Option<DateTime<Utc>>,
    /// The subscription was canceled: its workspaces are suspended after this (its period end).
    pub canceled_until: Option<DateTime<Utc>>,
    /// The workspaces billing suspended (resumed on payment), while they are.
    pub suspended: Option<BTreeSet<WorkspaceId>>,
}

impl Billing {
    /// When the workspaces are to be suspended for want of payment, if they are.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        match (self.grace_until, self.canceled_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether billing has suspended the organization's workspaces.
    pub fn is_suspended(&self) -> bool {
        self.suspended.is_some()
    }

    /// Whether the subscription pays for `plan` (and the workspaces are not suspended).
    pub fn pays_for(&self, plan: &str) -> bool {
        !self.is_suspended()
            && self
                .subscription
                .as_ref()
                .is_some_and(|s| s.paying() && s.plan.as_deref() == Some(plan))
    }

    /// The workspaces to resume when the organization pays again.
    fn to_resume(&self) -> Vec<WorkspaceId> {
        self.suspended
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<WorkspaceId>>()
    }

    /// What a subscription fact newer than the one recorded changes (`deleted`: Stripe deleted
    /// it, which it does at the end of the period once canceled); `now` is when it is
    /// recorded.
    pub fn subscription_events(
        &self,
        next: SubscriptionState,
        deleted: bool,
        now: DateTime<Utc>,
    ) -> Vec<OrganizationEvent> {
        if let Some(current) = &self.subscription {
            if current.id == next.id && next.as_of < current.as_of {
                return Vec::new();
            }
            if current.id == next.id && current.same_as(&next) && !deleted {
                return Vec::new();
            }
            if current.id != next.id && current.paying() && next.as_of < current.as_of {
                // An older subscription's late news does not replace the newer one.
                return Vec::new();
            }
        }
        if deleted || next.status == "canceled" {
            let already = self
                .subscription
                .as_ref()
                .is_some_and(|s| s.id == next.id && s.status == "canceled");
            if already {
                return Vec::new();
            }
            let period_end = next
                .current_period_end
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or(now);
            return vec![OrganizationEvent::SubscriptionCanceled {
                subscription: SubscriptionState {
                    status: "canceled".into(),
                    ..next
                },
                suspend_after: period_end.max(now),
            }];
        }
        let was_paying = self
            .subscription
            .as_ref()
            .is_some_and(|s| s.id == next.id && s.paying());
        if next.paying() && !was_paying {
            return vec![OrganizationEvent::SubscriptionActivated {
                subscription: next,
                resumed: self.to_resume(),
            }];
        }
        let previous_plan = self
            .subscription
            .as_ref()
            .filter(|s| s.id == next.id)
            .and_then(|s| s.plan.clone());
        vec![OrganizationEvent::SubscriptionChanged {
            subscription: next,
            previous_plan,
        }]
    }

    /// What a payment fact changes; `grace_until` is when the grace period of a failure
    /// starting now would end.
    pub fn payment_events(
        &self,
        payment: PaymentState,
        subscription_id: Option<String>,
        grace_until: DateTime<Utc>,
    ) -> Vec<OrganizationEvent> {
        if let Some(last) = &self.payment {
            if payment.as_of < last.as_of || *last == payment {
                return Vec::new();
            }
        }
        if payment.succeeded {
            let canceled = self
                .subscription
                .as_ref()
                .is_some_and(|s| s.status == "canceled");
            return vec![OrganizationEvent::PaymentSucceeded {
                payment,
                subscription_id,
                resumed: if canceled {
                    Vec::new()
                } else {
                    self.to_resume()
                },
            }];
        }
        vec![OrganizationEvent::PaymentFailed {
            payment,
            subscription_id,
            // A second failure does not push the deadline back.
            grace_until: self.grace_until.unwrap_or(grace_until),
        }]
    }

    /// Suspending the workspaces, when the deadline has passed at `now`.
    pub fn suspension_events(
        &self,
        workspaces: &BTreeSet<WorkspaceId>,
        now: DateTime<Utc>,
    ) -> Vec<OrganizationEvent> {
        let Some(deadline) = self.deadline() else {
            return Vec::new();
        };
        if deadline > now || self.is_suspended() {
            return Vec::new();
        }
        let reason = if self.grace_until.is_some_and(|g| g <= now) {
            format!(
                "payment overdue: the grace period ended {}",
                deadline.to_rfc3339()
            )
        } else {
            format!(
                "subscription canceled: its period ended {}",
                deadline.to_rfc3339()
            )
        };
        vec![OrganizationEvent::BillingSuspended {
            workspaces: workspaces.iter().cloned().collect(),
            reason,
        }]
    }

    pub fn apply(&mut self, event: &OrganizationEvent) {
        match event {
            OrganizationEvent::BillingCustomerCreated { customer_id } => {
                self.customer_id = Some(customer_id.clone());
            }
            OrganizationEvent::SubscriptionActivated { subscription, .. } => {
                self.subscription = Some(subscription.clone());
                self.canceled_until = None;
                self.grace_until = None;
                self.suspended = None;
            }
            OrganizationEvent::SubscriptionChanged { subscription, .. } => {
                self.subscription = Some(subscription.clone());
                if !subscription.cancel_at_period_end {
                    self.canceled_until = None;
                }
            }
            OrganizationEvent::SubscriptionCanceled {
                subscription,
                suspend_after,
            } => {
                self.subscription = Some(subscription.clone());
                self.canceled_until = Some(*suspend_after);
            }
            OrganizationEvent::PaymentSucceeded { payment, .. } => {
                self.payment = Some(payment.clone());
                self.grace_until = None;
                if self.canceled_until.is_none() {
                    self.suspended = None;
                }
            }
            OrganizationEvent::PaymentFailed {
                payment,
                grace_until,
                ..
            } => {
                self.payment = Some(payment.clone());
                self.grace_until = Some(*grace_until);
            }
            OrganizationEvent::BillingSuspended { workspaces, .. } => {
                self.suspended = Some(workspaces.iter().cloned().collect());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: &str, plan: &str, as_of: i64) -> SubscriptionState {
        SubscriptionState {
            id: "sub_1".into(),
            plan: Some(plan.into()),
            price_id: Some(format!("price_{plan}")),
            status: status.into(),
            current_period_end: Some(2_000_000_000),
            cancel_at_period_end: false,
            as_of,
        }
    }

    fn applied(events: &[OrganizationEvent]) -> Billing {
        let mut billing = Billing::default();
        for event in events {
            billing.apply(event);
        }
        billing
    }

    #[test]
    fn an_older_subscription_update_after_a_newer_one_changes_nothing() {
        let now = Utc::now();
        let billing = Billing::default();
        let first = billing.subscription_events(sub("active", "starter", 100), false, now);
        assert!(matches!(
            first[..],
            [OrganizationEvent::SubscriptionActivated { .. }]
        ));
        let billing = applied(&first);
        let newer = billing.subscription_events(sub("active", "team", 300), false, now);
        assert!(matches!(
            &newer[..],
            [OrganizationEvent::SubscriptionChanged { previous_plan: Some(p), .. }] if p == "starter"
        ));
        let billing = applied(&[first, newer].concat());
        let older = billing.subscription_events(sub("active", "enterprise", 200), false, now);
        assert!(older.is_empty(), "{older:?}");
        let same = billing.subscription_events(sub("active", "team", 400), false, now);
        assert!(same.is_empty(), "{same:?}");
        assert!(billing.pays_for("team") && !billing.pays_for("starter"));
    }

    #[test]
    fn a_failed_payment_sets_a_deadline_a_payment_clears_it_and_an_older_one_is_ignored() {
        let now = Utc::now();
        let grace = now + chrono::Duration::days(7);
        let failed = PaymentState {
            invoice_id: "in_1".into(),
            succeeded: false,
            as_of: 100,
        };
        let events = Billing::default().payment_events(failed.clone(), None, grace);
        let mut billing = applied(&events);
        assert_eq!(billing.deadline(), Some(grace));
        // A later failure keeps the first deadline.
        let again = billing.payment_events(
            PaymentState {
                as_of: 150,
                ..failed.clone()
            },
            None,
            grace + chrono::Duration::days(1),
        );
        assert!(
            matches!(&again[..], [OrganizationEvent::PaymentFailed { grace_until, .. }] if *grace_until == grace)
        );
        let ws = WorkspaceId::generate();
        let none = billing.suspension_events(&[ws.clone()].into(), now);
        assert!(none.is_empty(), "before the deadline nothing is suspended");
        let suspended = billing.suspension_events(&[ws.clone()].into(), grace);
        assert!(
            matches!(&suspended[..], [OrganizationEvent::BillingSuspended { workspaces, .. }] if workspaces == &vec![ws.clone()])
        );
        billing.apply(&suspended[0]);
        assert!(billing
            .suspension_events(&[ws.clone()].into(), grace)
            .is_empty());
        let paid = PaymentState {
            invoice_id: "in_1".into(),
            succeeded: true,
            as_of: 200,
        };
        let events = billing.payment_events(paid, None, grace);
        assert!(
            matches!(&events[..], [OrganizationEvent::PaymentSucceeded { resumed, .. }] if resumed == &vec![ws.clone()])
        );
        billing.apply(&events[0]);
        assert_eq!(billing.deadline(), None);
        assert!(!billing.is_suspended());
        // The failure delivered late is older than the payment.
        assert!(billing.payment_events(failed, None, grace).is_empty());
    }

    #[test]
    fn a_deleted_subscription_suspends_at_its_period_end() {
        let now = DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        let billing = applied(&Billing::default().subscription_events(
            sub("active", "team", 100),
            false,
            now,
        ));
        let events = billing.subscription_events(sub("active", "team", 200), true, now);
        let [OrganizationEvent::SubscriptionCanceled { suspend_after, .. }] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!(suspend_after.timestamp(), 2_000_000_000);
        let billing = applied(
            &[
                Billing::default().subscription_events(sub("active", "team", 100), false, now),
                events.clone(),
            ]
            .concat(),
        );
        assert!(!billing.pays_for("team"));
        assert!(billing
            .subscription_events(sub("active", "team", 150), false, now)
            .is_empty());
    }
}
