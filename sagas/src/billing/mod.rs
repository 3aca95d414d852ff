//! Billing's sagas: what the control plane does with Stripe and about it.
//!
//! * `billing.customer` (on `OrganizationCreated`, `BillingCustomerRequested`): a Stripe
//!   customer for the organization, created with an idempotency key an earlier step recorded.
//! * `billing.webhook` (on a recorded `StripeEventReceived`, task subject
//!   `stripe.webhook.<type>.<evt>`): what the Stripe event says, recorded on its organization
//!   as `SubscriptionActivated|Changed|Canceled`, `PaymentSucceeded|Failed`, caused by the
//!   Stripe event.
//! * `billing.notify` (on `PaymentFailed`, `BillingSuspended`): the organization's admins get a
//!   `user.notification.<user>` message.
//! * `billing.suspend` (by the maintenance pass, once a payment deadline has passed unpaid):
//!   `BillingSuspended`, then every workspace of the organization suspended.
//! * `billing.resume` (on `PaymentSucceeded` or `SubscriptionActivated` naming workspaces
//!   billing suspended): those workspaces resumed.
//! * `billing.plan` (on `SubscriptionActivated`, `SubscriptionChanged`): every workspace moved
//!   to the plan the subscription pays for (the workspace's own reconciliation then applies
//!   its quota).

mod enforce;
pub mod env;
pub mod stripe;
mod webhook;

use cqrs_es::Aggregate;
use hexabase_command::organization::{Organization, OrganizationEvent};
use hexabase_command::store::StoredEvent;
use hexabase_command::stripe_event::{StripeEvent, StripeEventId};
use hexabase_command::OrganizationId;
use serde_json::{json, Value};

pub use enforce::{ApplyPlan, CreateCustomer, NotifyAdmins, ResumeWorkspaces, SuspendWorkspaces};
pub use env::{BillingEnv, NOTIFICATION_SUBJECT};
pub use webhook::{ApplyStripeEvent, HANDLED};

use crate::engine::log::NewSaga;
use crate::engine::{Aggregate as SagaAggregate, StepError};
use crate::workspace::Env;

pub const CUSTOMER: &str = "billing.customer";
pub const WEBHOOK: &str = "billing.webhook";
pub const NOTIFY: &str = "billing.notify";
pub const SUSPEND: &str = "billing.suspend";
pub const RESUME: &str = "billing.resume";
pub const PLAN: &str = "billing.plan";

/// The subject Stripe events' tasks travel on: `stripe.webhook.<type>.<evt>`.
pub const WEBHOOK_SUBJECT: &str = "stripe.webhook.";
/// The subject prefix of the organizations' billing tasks (with their other sagas).
const ORGANIZATION_SUBJECT: &str = "vcluster.provisioning.";
/// Billing's part of the triggers (`enabled`: billing is configured, so organizations get
/// Stripe customers).
#[derive(Debug, Clone, Copy)]
pub struct BillingTriggers {
    pub enabled: bool,
}

impl BillingTriggers {
    pub fn sagas_for(&self, event: &StoredEvent) -> Vec<(&'static str, Value)> {
        if event.aggregate_type == StripeEvent::TYPE {
            return vec![(WEBHOOK, json!({ "event": event.event_type }))];
        }
        if event.aggregate_type != Organization::TYPE {
            return Vec::new();
        }
        let params = json!({ "event": event.event_type });
        match event.event_type.as_str() {
            "OrganizationCreated" if self.enabled => vec![(CUSTOMER, params)],
            "BillingCustomerRequested" => vec![(CUSTOMER, params)],
            "PaymentFailed" | "BillingSuspended" => vec![(NOTIFY, params)],
            "SubscriptionChanged" => vec![(PLAN, params)],
            "SubscriptionActivated" | "PaymentSucceeded" => {
                let resumed = match event.payload_as::<OrganizationEvent>() {
                    Ok(
                        OrganizationEvent::SubscriptionActivated { resumed, .. }
                        | OrganizationEvent::PaymentSucceeded { resumed, .. },
                    ) => resumed,
                    _ => Vec::new(),
                };
                let mut sagas = Vec::new();
                if event.event_type == "SubscriptionActivated" {
                    sagas.push((PLAN, params));
                }
                if !resumed.is_empty() {
                    sagas.push((RESUME, json!({ "workspaces": resumed })));
                }
                sagas
            }
            _ => Vec::new(),
        }
    }

    pub fn subject_for(&self, event: &StoredEvent) -> Option<String> {
        if self.sagas_for(event).is_empty() {
            return None;
        }
        if event.aggregate_type == StripeEvent::TYPE {
            let kind = event
                .payload_as::<Value>()
                .ok()
                .and_then(|p| p["StripeEventReceived"]["event_type"].as_str().map(token))
                .unwrap_or_else(|| "unknown".into());
            return Some(format!("{WEBHOOK_SUBJECT}{kind}.{}", event.aggregate_id));
        }
        Some(format!("{ORGANIZATION_SUBJECT}{}", event.aggregate_id))
    }

    /// The Stripe event a `stripe.webhook.…` subject names (organizations' subjects are the
    /// workspaces' triggers' to read).
    pub fn aggregate_of(&self, subject: &str) -> Option<SagaAggregate> {
        let rest = subject.strip_prefix(WEBHOOK_SUBJECT)?;
        let id = rest.rsplit('.').next()?;
        StripeEventId::parse(id).ok()?;
        Some(SagaAggregate {
            aggregate_type: StripeEvent::TYPE.to_owned(),
            aggregate_id: id.to_owned(),
        })
    }

    /// The organizations whose payment deadline has passed: each one's suspension.
    pub async fn maintenance(&self, env: &Env) -> Result<Vec<NewSaga>, StepError> {
        let transient = |e: sqlx::Error| StepError::Transient(e.to_string());
        let due = hexabase_query::billing::due_for_suspension(&env.pool, chrono::Utc::now(), 100)
            .await
            .map_err(transient)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&env.pool)
            .await
            .map_err(transient)?;
        Ok(due
            .into_iter()
            .filter(|(org, _)| OrganizationId::parse(org).is_ok())
            .map(|(org, deadline)| NewSaga {
                kind: SUSPEND,
                aggregate_type: Organization::TYPE.to_owned(),
                aggregate_id: org,
                trigger: format!("deadline:{}", deadline.timestamp()),
                position: head,
                params: json!({ "deadline": deadline }),
                correlation_id: None,
            })
            .collect())
    }
}

/// A Stripe event type as one subject token (`invoice.paid` → `invoice_paid`).
fn token(event_type: &str) -> String {
    event_type
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_subject_names_its_stripe_event() {
        let triggers = BillingTriggers { enabled: true };
        let aggregate = triggers
            .aggregate_of("stripe.webhook.invoice_paid.evt_123abc")
            .unwrap();
        assert_eq!(aggregate.aggregate_type, "StripeEvent");
        assert_eq!(aggregate.aggregate_id, "evt_123abc");
        assert!(triggers
            .aggregate_of("stripe.webhook.invoice_paid.nope")
            .is_none());
        assert!(triggers
            .aggregate_of("vcluster.provisioning.evt_123abc")
            .is_none());
        assert_eq!(
            token("customer.subscription.updated"),
            "customer_subscription_updated"
        );
    }
}
