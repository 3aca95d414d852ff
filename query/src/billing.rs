//! Organizations' billing: what `GET …/billing` shows, whose workspaces are due for suspension,
//! and which organization a Stripe customer belongs to.

use chrono::{DateTime, Utc};
use hexabase_command::OrganizationId;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct BillingRow {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub plan: Option<String>,
    pub status: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub last_payment: Option<String>,
    pub last_payment_at: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub suspend_after: Option<DateTime<Utc>>,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
}

pub async fn billing(pool: &PgPool, org: &OrganizationId) -> sqlx::Result<Option<BillingRow>> {
    sqlx::query_as(
        "SELECT customer_id, subscription_id, plan, status, current_period_end, \
                cancel_at_period_end, last_payment, last_payment_at, grace_until, suspend_after, \
                suspended, suspension_reason \
         FROM rm_billing WHERE org_id = $1",
    )
    .bind(org.as_str())
    .fetch_optional(pool)
    .await
}

/// Organizations whose payment deadline has passed and whose workspaces are not suspended
/// yet, with the deadline.
pub async fn due_for_suspension(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT org_id, suspend_after FROM rm_billing \
         WHERE suspend_after IS NOT NULL AND suspend_after <= $1 AND NOT suspended \
         ORDER BY suspend_after LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The organization whose Stripe customer `customer_id` is, from the event store itself (a
/// webhook can arrive before the read model has caught up).
pub async fn organization_of_customer(
    pool: &PgPool,
    customer_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events \
         WHERE event_type = 'BillingCustomerCreated' \
           AND (payload -> 'BillingCustomerCreated' ->> 'customer_id') = $1 \
         ORDER BY position LIMIT 1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await
}
