//! Billing: an organization's subscription through Stripe. Organization admins start a
//! Checkout session for a plan (refused when the organization's usage does not fit the plan),
//! open the Billing Portal, and read where billing stands. Stripe's webhooks are verified and
//! recorded here, once per Stripe event; the billing sagas act on them afterwards. Workspaces on
//! a paid plan need a subscription that pays for it.

use chrono::Utc;
use cqrs_es::AggregateError;
use hexabase_command::metadata::{CORRELATION_ID, REQUEST_ID};
use hexabase_command::organization::{Organization, OrganizationCommand};
use hexabase_command::policy::OrgAction;
use hexabase_command::store::{self, load_state, with_position};
use hexabase_command::stripe_event::{StripeEventCommand, StripeEventId};
use hexabase_command::workspace::Workspace;
use hexabase_command::{CommandMetadata, OrganizationId};
use hexabase_query::billing::{self as billing_query, BillingRow};
use hexabase_sagas::billing::stripe::{CheckoutRequest, Stripe, StripeFailure};
use hexabase_sagas::billing::HANDLED;
use serde::Deserialize;

use super::{App, OpContext};
use crate::error::{Error, Result};

/// Where billing stands for an organization.
pub struct BillingView {
    pub enabled: bool,
    pub row: Option<BillingRow>,
}

pub struct CheckoutStarted {
    pub session_id: String,
    pub url: String,
}

/// What became of a webhook delivery.
pub struct WebhookReceipt {
    pub event_id: String,
    /// Recorded before (a redelivery): nothing new.
    pub duplicate: bool,
    /// A type the control plane does not act on: not recorded.
    pub ignored: bool,
    pub position: Option<i64>,
}

/// The parts of a Stripe event read at intake.
#[derive(Deserialize)]
struct Incoming {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: IncomingData,
}

#[derive(Deserialize)]
struct IncomingData {
    object: serde_json::Value,
}

fn stripe_error(error: StripeFailure) -> Error {
    match error {
        StripeFailure::Refused(message) => Error::bad_gateway(format!("Stripe: {message}")),
        StripeFailure::Unavailable(detail) => {
            tracing::warn!(error = %detail, "Stripe unavailable");
            Error::bad_gateway("Stripe could not be reached or failed; try again")
        }
    }
}

impl App {
    fn stripe(&self) -> Result<&Stripe> {
        self.stripe.as_ref().ok_or_else(|| {
            Error::not_found("billing is not configured on this control plane (billing.secret_key)")
        })
    }

    /// The organization's state, from the event store.
    async fn organization_state(&self, org: &OrganizationId) -> Result<Organization> {
        Ok(load_state(&self.pool, org.as_str()).await?)
    }

    /// The checkout endpoint of `org`, for 402 answers.
    fn checkout_link(org: &OrganizationId) -> String {
        format!("/api/v1/organizations/{org}/billing/checkout")
    }

    /// Where billing stands (organization admins).
    pub async fn billing(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        position: Option<i64>,
    ) -> Result<BillingView> {
        self.consistent(hexabase_projector::organization::NAME, Some(org), position)
            .await?;
        self.authorize_org(org, op.user(), OrgAction::ManageBilling)
            .await?;
        Ok(BillingView {
            enabled: self.stripe.is_some(),
            row: billing_query::billing(&self.pool, org).await?,
        })
    }

    /// The organization's Stripe customer; while it has none yet, one is asked for and the
    /// caller told to retry shortly.
    async fn customer(&self, op: &OpContext, org: &OrganizationId) -> Result<String> {
        let state = self.organization_state(org).await?;
        if let Some(customer) = &state.billing().customer_id {
            return Ok(customer.clone());
        }
        self.organizations
            .execute_with_metadata(
                org.as_str(),
                OrganizationCommand::RequestBillingCustomer,
                op.metadata().into_map(),
            )
            .await?;
        Err(Error::Unavailable {
            code: "billing_pending",
            message: "the organization's Stripe customer is being created; retry in a moment"
                .into(),
            field: None,
            retry_after: 2,
        })
    }

    /// Why `org`'s workspaces do not fit `plan`, if they do not: each excess named.
    async fn excess_for(&self, org: &Organization, plan_id: &str) -> Result<Vec<String>> {
        let plan = self.plan(plan_id)?;
        let mut excess = Vec::new();
        for ws in org.workspaces() {
            let workspace: Workspace = load_state(&self.pool, ws.as_str()).await?;
            let Some(state) = workspace.cluster_state() else {
                continue;
            };
            let projects = state.projects.len();
            if projects > plan.max_projects as usize {
                excess.push(format!(
                    "workspace {ws} has {projects} projects; plan `{plan_id}` allows {}",
                    plan.max_projects
                ));
            }
            let nodes = state.dedicated_nodes.len();
            let allowed = if plan.dedicated_nodes {
                plan.max_dedicated_nodes as usize
            } else {
                0
            };
            if nodes > allowed {
                excess.push(format!(
                    "workspace {ws} has {nodes} dedicated nodes; plan `{plan_id}` allows {allowed}"
                ));
            }
        }
        Ok(excess)
    }

    /// A Checkout session for `plan` (organization admins): its URL. A plan the organization's
    /// usage does not fit is refused (409, naming the excess); so is the plan it already pays
    /// for, any plan while another subscription runs (its plan changes in the portal), and a
    /// free plan (which needs no checkout).
    pub async fn checkout(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        plan: &str,
    ) -> Result<CheckoutStarted> {
        self.authorize_org(org, op.user(), OrgAction::ManageBilling)
            .await?;
        let stripe = self.stripe()?;
        let plan = self.available_plan(plan)?;
        let Some(price_id) = self.plan(&plan)?.price_id.clone() else {
            return Err(Error::invalid(
                "plan",
                format!("`{plan}` is a free plan: it needs no subscription"),
            ));
        };
        let state = self.organization_state(org).await?;
        if state.billing().pays_for(&plan) {
            return Err(Error::conflict(format!(
                "the organization's subscription already pays for plan `{plan}`; manage it in \
                 the billing portal"
            )));
        }
        let excess = self.excess_for(&state, &plan).await?;
        if !excess.is_empty() {
            return Err(Error::conflict(format!(
                "the organization's usage does not fit plan `{plan}`: {}",
                excess.join("; ")
            )));
        }
        // A second subscription would bill the organization twice: the plan of a running one
        // is changed where Stripe prorates it.
        if let Some(current) = state.billing().subscription.as_ref().filter(|s| s.paying()) {
            return Err(Error::conflict(format!(
                "the organization's subscription {} is on plan `{}`; change its plan in the \
                 billing portal (POST /api/v1/organizations/{org}/billing/portal)",
                current.id,
                current.plan.as_deref().unwrap_or("unknown")
            )));
        }
        let customer = self.customer(op, org).await?;
        let settings = &self.settings.billing;
        let session = stripe
            .create_checkout(
                &CheckoutRequest {
                    customer: &customer,
                    organization: org,
                    plan: &plan,
                    price_id: &price_id,
                    success_url: &settings.success_url,
                    cancel_url: &settings.cancel_url,
                },
                &format!("checkout-{org}-{}", op.request_id),
            )
            .await
            .map_err(stripe_error)?;
        Ok(CheckoutStarted {
            session_id: session.id,
            url: session.url,
        })
    }

    /// A Billing Portal session's URL (organization admins).
    pub async fn billing_portal(&self, op: &OpContext, org: &OrganizationId) -> Result<String> {
        self.authorize_org(org, op.user(), OrgAction::ManageBilling)
            .await?;
        let stripe = self.stripe()?;
        let customer = self.customer(op, org).await?;
        stripe
            .create_portal(
                &customer,
                &self.settings.billing.portal_return_url,
                &format!("portal-{org}-{}", op.request_id),
            )
            .await
            .map_err(stripe_error)
    }

    /// Whether `org` may have workspaces on `plan`: a free plan always; a paid one when billing
    /// is configured only if the organization's subscription pays for it (402 otherwise, with
    /// the checkout endpoint).
    pub(super) async fn require_paid_for(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        plan: &str,
    ) -> Result<()> {
        if self.stripe.is_none() || self.plan(plan)?.price_id.is_none() {
            return Ok(());
        }
        let state = self.organization_state(org).await?;
        // Someone who may not know the organization learns nothing about its billing.
        if state.role_of(op.user()).is_none() {
            return Err(Error::not_found("organization not found"));
        }
        let billing = state.billing();
        if billing.pays_for(plan) {
            return Ok(());
        }
        let message = if billing.is_suspended() {
            "the organization's workspaces are suspended for non-payment; pay the outstanding \
             invoice (billing portal) first"
                .to_owned()
        } else {
            format!(
                "plan `{plan}` needs a subscription the organization does not have; start one \
                 at {}",
                Self::checkout_link(org)
            )
        };
        Err(Error::PaymentRequired {
            message,
            checkout: Self::checkout_link(org),
        })
    }

    /// Refused while billing has the organization's workspaces suspended (402): only a
    /// payment resumes them.
    pub(super) async fn require_not_billing_suspended(&self, org: &OrganizationId) -> Result<()> {
        if self.stripe.is_none() {
            return Ok(());
        }
        let state = self.organization_state(org).await?;
        if state.billing().is_suspended() {
            return Err(Error::PaymentRequired {
                message: "the organization's workspaces are suspended for non-payment; they \
                          resume once a payment succeeds"
                    .into(),
                checkout: Self::checkout_link(org),
            });
        }
        Ok(())
    }

    /// A delivery to `/webhooks/stripe`: its signature checked over the raw body before
    /// anything else, then the Stripe event recorded once (a redelivery, or the same event at
    /// another replica, records nothing). Answered as soon as it is recorded.
    pub async fn receive_stripe_webhook(
        &self,
        request_id: &str,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookReceipt> {
        if !self.webhook_verifier.is_configured() {
            return Err(Error::not_found(
                "Stripe webhooks are not configured on this control plane \
                 (billing.webhook_secrets)",
            ));
        }
        self.webhook_verifier
            .verify(payload, signature, Utc::now().timestamp())
            .map_err(|e| Error::bad_request(e.to_string(), Some("Stripe-Signature")))?;
        let incoming: Incoming = serde_json::from_slice(payload)
            .map_err(|e| Error::bad_request(format!("not a Stripe event: {e}"), None))?;
        let id = StripeEventId::parse(&incoming.id)
            .map_err(|e| Error::bad_request(e.to_string(), Some("id")))?;
        if !HANDLED.contains(&incoming.event_type.as_str()) {
            return Ok(WebhookReceipt {
                event_id: id.to_string(),
                duplicate: false,
                ignored: true,
                position: None,
            });
        }
        let mut metadata = CommandMetadata::for_system(&format!("stripe:{id}"));
        metadata.insert(REQUEST_ID.to_owned(), request_id.to_owned());
        metadata.insert(CORRELATION_ID.to_owned(), request_id.to_owned());
        let command = StripeEventCommand::Receive {
            event_type: incoming.event_type,
            created: incoming.created,
            livemode: incoming.livemode,
            object: incoming.data.object,
        };
        let (result, position) = with_position(store::create(
            &self.stripe_events,
            id.as_str(),
            command,
            &(),
            metadata,
        ))
        .await;
        let duplicate = match result {
            Ok(()) => false,
            Err(AggregateError::AggregateConflict | AggregateError::UserError(_)) => true,
            Err(e) => return Err(Error::command_failed(e)),
        };
        Ok(WebhookReceipt {
            event_id: id.to_string(),
            duplicate,
            ignored: false,
            position: if duplicate { None } else { position },
        })
    }
}
