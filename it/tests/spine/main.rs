//! The event-sourced spine against real PostgreSQL and NATS: HTTP API, invariants, schema.

mod api_auth;
mod api_bad_input;
mod api_organizations;
mod invariants;
mod keyring;
mod openapi;
mod operations;
mod rate_limit;
mod schema;
