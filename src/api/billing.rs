//! `/api/v1/organizations/{orgId}/billing`: an organization's subscription through Stripe
//! (organization admins). `POST …/checkout` starts a Checkout session for a plan, `POST
//! …/portal` opens the Billing Portal, `GET …/billing` shows the subscription and the last
//! payment. Stripe's answers to these arrive later as webhooks (`/webhooks/stripe`).

use chrono::{DateTime, Utc};
use hexabase_command::OrganizationId;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::security::SignedIn;
use super::text::Text;

#[derive(Tags)]
enum ApiTags {
    /// Billing: an organization's Stripe subscription.
    Billing,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct StartCheckout {
    /// The plan to subscribe to, from `GET /api/v1/plans` (one with a `price_id`).
    #[oai(validator(max_length = 64))]
    pub plan: Text,
}

#[derive(Debug, Object)]
pub struct CheckoutSession {
    /// Stripe's Checkout session id (`cs_…`).
    pub id: String,
    /// Where to send the buyer.
    pub url: String,
}

#[derive(Debug, Object)]
pub struct PortalSession {
    /// The Billing Portal session's URL.
    pub url: String,
}

/// Where billing stands. Everything but `enabled` is absent until Stripe has said it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Billing {
    /// Whether this control plane bills through Stripe.
    pub enabled: bool,
    /// The organization's Stripe customer (`cus_…`).
    pub customer_id: Option<String>,
    /// The plan the subscription pays for.
    pub plan: Option<String>,
    pub subscription_id: Option<String>,
    /// Stripe's subscription status: `active`, `trialing`, `past_due`, `canceled`…
    pub subscription_status: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// `succeeded` or `failed`.
    pub last_payment: Option<String>,
    pub last_payment_at: Option<DateTime<Utc>>,
    /// A payment failed: the workspaces are suspended after this unless paid.
    pub grace_until: Option<DateTime<Utc>>,
    /// When the workspaces are suspended unless paid (the grace period's or a canceled
    /// subscription's end).
    pub suspend_after: Option<DateTime<Utc>>,
    /// Billing has suspended the organization's workspaces.
    pub suspended: bool,
    pub suspension_reason: Option<String>,
}

pub struct BillingApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Billing")]
impl BillingApi {
    /// Where the organization's billing stands (organization admins).
    #[oai(
        path = "/organizations/:org_id/billing",
        method = "get",
        operation_id = "getBilling"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Wait until the event at this position is reflected.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Billing>> {
        let org = OrganizationId::parse(&org_id)?;
        let view = ctx.app.billing(&ctx.op(&auth), &org, position.0).await?;
        let row = view.row;
        Ok(Json(Billing {
            enabled: view.enabled,
            customer_id: row.as_ref().and_then(|r| r.customer_id.clone()),
            plan: row.as_ref().and_then(|r| r.plan.clone()),
            subscription_id: row.as_ref().and_then(|r| r.subscription_id.clone()),
            subscription_status: row.as_ref().and_then(|r| r.status.clone()),
            current_period_end: row.as_ref().and_then(|r| r.current_period_end),
            cancel_at_period_end: row.as_ref().is_some_and(|r| r.cancel_at_period_end),
            last_payment: row.as_ref().and_then(|r| r.last_payment.clone()),
            last_payment_at: row.as_ref().and_then(|r| r.last_payment_at),
            grace_until: row.as_ref().and_then(|r| r.grace_until),
            suspend_after: row.as_ref().and_then(|r| r.suspend_after),
            suspended: row.as_ref().is_some_and(|r| r.suspended),
            suspension_reason: row.as_ref().and_then(|r| r.suspension_reason.clone()),
        }))
    }

    /// Start a Stripe Checkout session subscribing the organization to `plan` (organization
    /// admins): its URL. 409 when the organization's usage does not fit the plan (naming the
    /// excess), its subscription already pays for it, or a subscription on another plan runs
    /// (change that one in the billing portal); 502 with Stripe's message when Stripe
    /// refuses; 503 while the organization's Stripe customer is being created.
    #[oai(
        path = "/organizations/:org_id/billing/checkout",
        method = "post",
        operation_id = "startCheckout"
    )]
    async fn checkout(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        body: Json<StartCheckout>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<CheckoutSession>> {
        let org = OrganizationId::parse(&org_id)?;
        let session = ctx.app.checkout(&ctx.op(&auth), &org, &body.plan).await?;
        Ok(Json(CheckoutSession {
            id: session.session_id,
            url: session.url,
        }))
    }

    /// A Stripe Billing Portal session for the organization (organization admins): its URL,
    /// where invoices, payment methods and the subscription are managed.
    #[oai(
        path = "/organizations/:org_id/billing/portal",
        method = "post",
        operation_id = "openBillingPortal"
    )]
    async fn portal(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "org_id")] org_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<PortalSession>> {
        let org = OrganizationId::parse(&org_id)?;
        let url = ctx.app.billing_portal(&ctx.op(&auth), &org).await?;
        Ok(Json(PortalSession { url }))
    }
}
