//! The event-sourced spine against real PostgreSQL and NATS: HTTP API, invariants, schema.

mod api_auth;
mod api_bad_input;
mod api_groups;
mod api_members;
mod api_organizations;
mod api_plans;
mod api_projects;
mod api_rbac;
mod api_workspaces;
mod contract;
mod invariants;
mod isolation;
mod keyring;
mod oauth;
mod openapi;
mod operations;
mod rate_limit;
mod sagas;
mod schema;
mod workspace_tokens;
