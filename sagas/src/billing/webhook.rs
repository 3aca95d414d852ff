//! `billing.webhook`: what a recorded Stripe event means for its organization.
//!
//! 1. `organization`: whose it is — a Checkout session names the organization it was made for
//!    (`client_reference_id`), the other objects their customer, which the event store maps
//!    to the organization it was created for. An event for no known organization ends here,
//!    logged, and is not retried.
//! 2. `record`: the subscription or payment facts, recorded on the organization with the
//!    Stripe event as cause; facts older than those recorded change nothing (Stripe does not
//!    deliver in order).

use cqrs_es::{Aggregate, AggregateError};
use hexabase_command::metadata::CommandMetadata;
use hexabase_command::organization::{
    OrganizationCommand, OrganizationError, PaymentState, SubscriptionState,
};
use hexabase_command::store::aggregate_events;
use hexabase_command::stripe_event::{StripeEvent, StripeEventEvent};
use hexabase_command::OrganizationId;
use serde_json::{json, Value};

use super::WEBHOOK;
use crate::engine::{action, Cx, Saga, Step, StepError};
use crate::workspace::Env;

/// The Stripe event types the control plane acts on; the others are acknowledged and dropped.
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

pub struct ApplyStripeEvent;

struct Received {
    event_type: String,
    created: i64,
    object: Value,
}

async fn received(cx: &Cx<'_, Env>) -> Result<Received, StepError> {
    let events = aggregate_events(&cx.env.pool, StripeEvent::TYPE, &cx.saga.aggregate_id, 1, 1)
        .await
        .map_err(|e| StepError::Transient(format!("cannot read the Stripe event: {e}")))?;
    let event = events
        .first()
        .ok_or_else(|| StepError::Permanent("the Stripe event is not recorded".into()))?;
    let StripeEventEvent::StripeEventReceived {
        event_type,
        created,
        object,
        ..
    } = event
        .payload_as()
        .map_err(|e| StepError::Permanent(format!("the recorded Stripe event: {e}")))?;
    Ok(Received {
        event_type,
        created,
        object,
    })
}

/// An id field that may be expanded into its object (`"cus_1"` or `{"id": "cus_1", …}`).
fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value["id"].as_str())
}

async fn organization(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let event = received(cx).await?;
    if event.event_type == "checkout.session.completed" {
        if let Some(org) = event.object["client_reference_id"]
            .as_str()
            .and_then(|id| OrganizationId::parse(id).ok())
        {
            return Ok(json!({ "organization": org }));
        }
    }
    let Some(customer) = id_of(&event.object["customer"]) else {
        tracing::warn!(stripe_event = %cx.saga.aggregate_id, kind = %event.event_type, "a Stripe event names no customer; ignored");
        return Ok(json!({ "organization": null, "skipped": "the event names no customer" }));
    };
    let org = hexabase_query::billing::organization_of_customer(&cx.env.pool, customer)
        .await
        .map_err(|e| StepError::Transient(e.to_string()))?;
    match org {
        Some(org) => Ok(json!({ "organization": org })),
        None => {
            tracing::warn!(stripe_event = %cx.saga.aggregate_id, %customer, "a Stripe event for a customer no organization has; ignored");
            Ok(json!({
                "organization": null,
                "skipped": format!("no organization has the Stripe customer {customer}"),
            }))
        }
    }
}

/// The subscription a `customer.subscription.*` object describes.
fn subscription(env: &Env, object: &Value, as_of: i64) -> Option<SubscriptionState> {
    let item = &object["items"]["data"][0];
    let price_id = id_of(&item["price"]).map(str::to_owned);
    let plan = price_id
        .as_ref()
        .and_then(|p| env.billing.plans_by_price.get(p).cloned())
        .or_else(|| object["metadata"]["plan"].as_str().map(str::to_owned));
    Some(SubscriptionState {
        id: object["id"].as_str()?.to_owned(),
        plan,
        price_id,
        status: object["status"].as_str()?.to_owned(),
        // Newer API versions keep the period on the item.
        current_period_end: object["current_period_end"]
            .as_i64()
            .or_else(|| item["current_period_end"].as_i64()),
        cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
        as_of,
    })
}

/// What a completed Checkout session in subscription mode says about its subscription.
fn checkout_subscription(env: &Env, object: &Value, as_of: i64) -> Option<SubscriptionState> {
    if object["mode"].as_str() != Some("subscription") {
        return None;
    }
    let plan = object["metadata"]["plan"].as_str().map(str::to_owned);
    let price_id = plan.as_ref().and_then(|plan| {
        env.billing
            .plans_by_price
            .iter()
            .find(|(_, p)| *p == plan)
            .map(|(price, _)| price.clone())
    });
    let paid = matches!(
        object["payment_status"].as_str(),
        Some("paid" | "no_payment_required")
    );
    Some(SubscriptionState {
        id: id_of(&object["subscription"])?.to_owned(),
        plan,
        price_id,
        status: if paid { "active" } else { "incomplete" }.into(),
        current_period_end: None,
        cancel_at_period_end: false,
        as_of,
    })
}

fn command(env: &Env, event: &Received) -> Option<OrganizationCommand> {
    let now = chrono::Utc::now();
    let object = &event.object;
    match event.event_type.as_str() {
        "checkout.session.completed" => {
            let subscription = checkout_subscription(env, object, event.created)?;
            Some(OrganizationCommand::SyncSubscription {
                subscription,
                deleted: false,
                now,
            })
        }
        kind @ ("customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted") => Some(OrganizationCommand::SyncSubscription {
            subscription: subscription(env, object, event.created)?,
            deleted: kind == "customer.subscription.deleted",
            now,
        }),
        kind @ ("invoice.paid" | "invoice.payment_failed") => {
            let subscription_id = id_of(&object["subscription"])
                .or_else(|| id_of(&object["parent"]["subscription_details"]["subscription"]))
                .map(str::to_owned);
            Some(OrganizationCommand::RecordPayment {
                payment: PaymentState {
                    invoice_id: object["id"].as_str()?.to_owned(),
                    succeeded: kind == "invoice.paid",
                    as_of: event.created,
                },
                subscription_id,
                grace_until: now + env.billing.grace,
            })
        }
        _ => None,
    }
}

async fn record(cx: &Cx<'_, Env>) -> Result<Value, StepError> {
    let found: Value = cx.output("organization")?;
    let Some(org) = found["organization"].as_str() else {
        return Ok(Value::Null);
    };
    let event = received(cx).await?;
    let Some(command) = command(cx.env, &event) else {
        tracing::warn!(stripe_event = %cx.saga.aggregate_id, kind = %event.event_type, "a Stripe event without what the control plane needs; ignored");
        return Ok(json!({ "skipped": "the event lacks the fields the control plane reads" }));
    };
    let metadata = CommandMetadata::for_saga_caused_by(
        &cx.saga.aggregate_id,
        cx.saga.correlation_id.as_deref(),
    );
    match cx
        .env
        .organizations
        .execute_with_metadata(org, command, metadata)
        .await
    {
        Ok(()) => Ok(Value::Null),
        Err(AggregateError::UserError(OrganizationError::NotFound)) => {
            tracing::warn!(stripe_event = %cx.saga.aggregate_id, organization = %org, "a Stripe event for an organization that is gone; ignored");
            Ok(json!({ "skipped": "the organization is gone" }))
        }
        Err(AggregateError::UserError(e)) => Err(StepError::Permanent(e.to_string())),
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

impl Saga<Env> for ApplyStripeEvent {
    fn kind(&self) -> &'static str {
        WEBHOOK
    }

    fn steps(&self) -> Vec<Step<Env>> {
        vec![
            Step {
                name: "organization",
                action: action(|cx| Box::pin(organization(cx))),
                undo: None,
            },
            Step {
                name: "record",
                action: action(|cx| Box::pin(record(cx))),
                undo: None,
            },
        ]
    }
}
