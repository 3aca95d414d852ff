-- Read model of each organization's billing: its Stripe customer, subscription, last payment,
-- and the deadline after which its workspaces are suspended (part of the organizations model).

CREATE TABLE rm_billing
(
    org_id               text PRIMARY KEY,
    customer_id          text,
    subscription_id      text,
    plan                 text,
    -- Stripe's subscription status (`active`, `past_due`, `canceled`…).
    status               text,
    current_period_end   timestamptz,
    cancel_at_period_end boolean     NOT NULL DEFAULT false,
    -- `succeeded` or `failed`.
    last_payment         text,
    last_payment_at      timestamptz,
    last_invoice_id      text,
    grace_until          timestamptz,
    -- When the workspaces are suspended unless paid: the grace period's or the period's end.
    suspend_after        timestamptz,
    suspended            boolean     NOT NULL DEFAULT false,
    suspension_reason    text,
    updated_at           timestamptz NOT NULL
);

CREATE UNIQUE INDEX rm_billing_by_customer ON rm_billing (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX rm_billing_due ON rm_billing (suspend_after) WHERE suspend_after IS NOT NULL AND NOT suspended;

-- Which organization a Stripe customer belongs to, read from the event store itself (a webhook
-- may arrive before the read model has caught up).
CREATE INDEX events_by_stripe_customer
    ON events ((payload -> 'BillingCustomerCreated' ->> 'customer_id'))
    WHERE event_type = 'BillingCustomerCreated';
