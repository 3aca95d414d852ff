//! Saga processes: workspace provisioning (on `WorkspaceRequested`) and billing (on
//! `PaymentSucceeded` and friends) react to domain events by calling Kubernetes and Stripe,
//! with their state in Postgres so that a killed worker resumes where it stopped.
//!
//! No saga exists yet: the aggregates they react to arrive with the tenancy and billing work.
