//! The HTTP API: routes, the OpenAPI document, middleware. Each handler parses its input into
//! domain values, calls one operation of the application layer (`crate::app`), and shapes the
//! answer; errors are the one `crate::error::Error`, rendered by `error`.

mod audit;
mod auth;
mod context;
pub mod error;
mod groups;
mod idempotency;
pub mod middleware;
mod oauth;
mod ops;
mod organizations;
mod page;
mod pages;
mod plans;
mod projects;
mod ratelimit;
mod roles;
mod security;
mod tasks;
mod workspaces;
mod written;

use std::sync::Arc;

use poem::middleware::AddData;
use poem::{get, Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

use crate::app::App;

pub use auth::AuthApi;
pub use organizations::OrganizationsApi;

pub const TITLE: &str = "Hexabase KaaS control plane";

/// Every API of the control plane, as one OpenAPI document.
pub type Apis = (
    AuthApi,
    OrganizationsApi,
    audit::AuditApi,
    plans::PlansApi,
    workspaces::WorkspacesApi,
    groups::GroupsApi,
    projects::ProjectsApi,
    roles::RbacApi,
    tasks::TasksApi,
    oauth::OidcApi,
);

pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            AuthApi,
            OrganizationsApi,
            audit::AuditApi,
            plans::PlansApi,
            workspaces::WorkspacesApi,
            groups::GroupsApi,
            projects::ProjectsApi,
            roles::RbacApi,
            tasks::TasksApi,
            oauth::OidcApi,
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Multi-tenant Kubernetes as a Service. Sign in through `/auth/login/{provider}`; every \
             /api/v1 call then needs the session's access token, as a bearer JWT or (browsers) \
             the `hxb_session` cookie with `X-CSRF-Token` on writes. Writes answer once their \
             event is committed and return its `position`; pass it as `position` to a read to \
             see the write reflected. Every POST accepts an `Idempotency-Key`.",
    )
}

/// The committed `openapi/openapi.json` is exactly this.
pub fn spec() -> String {
    openapi().spec()
}

pub fn routes(app: Arc<App>) -> impl Endpoint {
    crate::telemetry::metrics();
    let api = openapi();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/", api.around(idempotency::idempotency))
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/healthz", get(ops::healthz))
        .at("/readyz", get(ops::readyz))
        .at("/metrics", get(ops::prometheus))
        .around(ratelimit::limit)
        .around(oauth::oauth_pages)
        .with(AddData::new(app))
        .around(middleware::observe)
}
