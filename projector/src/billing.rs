//! The billing rows of the organizations read model (`rm_billing`): one per organization with a
//! Stripe customer or billing history, upserted column by column as its billing events arrive.

use chrono::{DateTime, Utc};
use hexabase_command::organization::{OrganizationEvent, SubscriptionState};
use sqlx::PgConnection;

use crate::projection::ProjectionError;

fn timestamp(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|t| DateTime::from_timestamp(t, 0))
}

/// The row's subscription columns from `subscription`.
async fn subscription(
    db: &mut PgConnection,
    org_id: &str,
    at: DateTime<Utc>,
    s: &SubscriptionState,
    suspend_after: Option<DateTime<Utc>>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO rm_billing (org_id, subscription_id, plan, status, current_period_end, \
                                 cancel_at_period_end, suspend_after, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (org_id) DO UPDATE SET subscription_id = $2, plan = $3, status = $4, \
             current_period_end = $5, cancel_at_period_end = $6, \
             suspend_after = CASE WHEN $7::timestamptz IS NULL THEN rm_billing.grace_until \
                                  ELSE least($7, rm_billing.grace_until) END, \
             updated_at = $8",
    )
    .bind(org_id)
    .bind(&s.id)
    .bind(&s.plan)
    .bind(&s.status)
    .bind(timestamp(s.current_period_end))
    .bind(s.cancel_at_period_end)
    .bind(suspend_after)
    .bind(at)
    .execute(&mut *db)
    .await?;
    Ok(())
}

pub async fn apply(
    db: &mut PgConnection,
    org_id: &str,
    at: DateTime<Utc>,
    event: OrganizationEvent,
) -> Result<(), ProjectionError> {
    match event {
        OrganizationEvent::BillingCustomerRequested => {
            sqlx::query(
                "INSERT INTO rm_billing (org_id, updated_at) VALUES ($1, $2) \
                 ON CONFLICT (org_id) DO NOTHING",
            )
            .bind(org_id)
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::BillingCustomerCreated { customer_id } => {
            sqlx::query(
                "INSERT INTO rm_billing (org_id, customer_id, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (org_id) DO UPDATE SET customer_id = $2, updated_at = $3",
            )
            .bind(org_id)
            .bind(&customer_id)
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::SubscriptionActivated {
            subscription: s, ..
        } => {
            subscription(db, org_id, at, &s, None).await?;
            sqlx::query(
                "UPDATE rm_billing SET grace_until = NULL, suspend_after = NULL, \
                        suspended = false, suspension_reason = NULL WHERE org_id = $1",
            )
            .bind(org_id)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::SubscriptionChanged {
            subscription: s, ..
        } => {
            subscription(db, org_id, at, &s, None).await?;
        }
        OrganizationEvent::SubscriptionCanceled {
            subscription: s,
            suspend_after,
        } => {
            subscription(db, org_id, at, &s, Some(suspend_after)).await?;
        }
        OrganizationEvent::PaymentSucceeded { payment, .. } => {
            sqlx::query(
                "INSERT INTO rm_billing (org_id, last_payment, last_payment_at, last_invoice_id, \
                                         updated_at) \
                 VALUES ($1, 'succeeded', $2, $3, $4) \
                 ON CONFLICT (org_id) DO UPDATE SET last_payment = 'succeeded', \
                     last_payment_at = $2, last_invoice_id = $3, grace_until = NULL, \
                     suspend_after = CASE WHEN rm_billing.status = 'canceled' \
                                          THEN rm_billing.suspend_after END, \
                     suspended = rm_billing.suspended AND rm_billing.status = 'canceled', \
                     suspension_reason = CASE WHEN rm_billing.status = 'canceled' \
                                              THEN rm_billing.suspension_reason END, \
                     updated_at = $4",
            )
            .bind(org_id)
            .bind(timestamp(Some(payment.as_of)))
            .bind(&payment.invoice_id)
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::PaymentFailed {
            payment,
            grace_until,
            ..
        } => {
            sqlx::query(
                "INSERT INTO rm_billing (org_id, last_payment, last_payment_at, last_invoice_id, \
                                         grace_until, suspend_after, updated_at) \
                 VALUES ($1, 'failed', $2, $3, $4, $4, $5) \
                 ON CONFLICT (org_id) DO UPDATE SET last_payment = 'failed', \
                     last_payment_at = $2, last_invoice_id = $3, grace_until = $4, \
                     suspend_after = least($4, rm_billing.suspend_after), updated_at = $5",
            )
            .bind(org_id)
            .bind(timestamp(Some(payment.as_of)))
            .bind(&payment.invoice_id)
            .bind(grace_until)
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        OrganizationEvent::BillingSuspended { reason, .. } => {
            sqlx::query(
                "UPDATE rm_billing SET suspended = true, suspension_reason = $2, updated_at = $3 \
                 WHERE org_id = $1",
            )
            .bind(org_id)
            .bind(&reason)
            .bind(at)
            .execute(&mut *db)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
