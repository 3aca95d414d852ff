//! The Stripe calls the control plane makes, through async-stripe: a customer per
//! organization, Checkout sessions in subscription mode, Billing Portal sessions. Every call
//! that creates something carries an idempotency key the caller chose (a saga's from an earlier
//! recorded step, an API request's from its own id), so a retry never creates it twice.

use std::collections::HashMap;

use hexabase_command::OrganizationId;
use stripe::StripeError;
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_core::customer::CreateCustomer;

/// What went wrong with a Stripe call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe answered with an error of the request's (Stripe's own message).
    #[error("Stripe refused the request: {0}")]
    Refused(String),
    /// Stripe could not be reached, or failed on its side.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
}

impl StripeFailure {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StripeFailure::Unavailable(_))
    }
}

impl From<StripeError> for StripeFailure {
    fn from(error: StripeError) -> Self {
        match error {
            StripeError::Stripe(errors, status)
                if (400..500).contains(&status) && status != 429 =>
            {
                StripeFailure::Refused(errors.message.unwrap_or_else(|| format!("status {status}")))
            }
            StripeError::Stripe(errors, status) => StripeFailure::Unavailable(
                errors.message.unwrap_or_else(|| format!("status {status}")),
            ),
            other => StripeFailure::Unavailable(other.to_string()),
        }
    }
}

/// A Checkout session: where to send the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub id: String,
    pub url: String,
}

/// What a Checkout session is for.
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub organization: &'a OrganizationId,
    pub plan: &'a str,
    pub price_id: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

#[derive(Clone)]
pub struct Stripe {
    client: stripe::Client,
}

fn key(raw: &str) -> Result<RequestStrategy, StripeFailure> {
    IdempotencyKey::new(raw)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| StripeFailure::Refused(e.to_string()))
}

impl Stripe {
    /// A client with `secret_key`, talking to `api_url` (Stripe's, or stripe-mock's in tests).
    pub fn new(secret_key: &str, api_url: &str) -> Result<Self, StripeFailure> {
        let client = stripe::ClientBuilder::new(secret_key)
            .url(api_url.trim_end_matches('/'))
            .build()
            .map_err(StripeFailure::from)?;
        Ok(Self { client })
    }

    /// The organization's customer (`cus_…`), created once for `idempotency_key`.
    pub async fn create_customer(
        &self,
        organization: &OrganizationId,
        name: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let metadata = HashMap::from([("organization".to_owned(), organization.to_string())]);
        let customer = CreateCustomer::new()
            .name(name)
            .metadata(metadata)
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(customer.id.to_string())
    }

    /// A Checkout session in subscription mode for the plan's price; the organization and the
    /// plan travel in its metadata and the subscription's, and as its client reference.
    pub async fn create_checkout(
        &self,
        request: &CheckoutRequest<'_>,
        idempotency_key: &str,
    ) -> Result<Checkout, StripeFailure> {
        let metadata = HashMap::from([
            ("organization".to_owned(), request.organization.to_string()),
            ("plan".to_owned(), request.plan.to_owned()),
        ]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(request.price_id.to_owned());
        item.quantity = Some(1);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(metadata.clone());
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(request.customer)
            .client_reference_id(request.organization.as_str())
            .line_items(vec![item])
            .subscription_data(subscription)
            .metadata(metadata)
            .success_url(request.success_url)
            .cancel_url(request.cancel_url)
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await?;
        let url = session.url.ok_or_else(|| {
            StripeFailure::Unavailable("Stripe answered a Checkout session without a URL".into())
        })?;
        Ok(Checkout {
            id: session.id.to_string(),
            url,
        })
    }

    /// A Billing Portal session's URL for the customer, returning to `return_url`.
    pub async fn create_portal(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(session.url)
    }
}
