//! The HTTP API: routes, OpenAPI document, middleware.

mod auth;
mod context;
pub mod error;
mod groups;
mod idempotency;
pub mod middleware;
mod oidc;
mod ops;
mod organization;
mod page;
mod plans;
mod projects;
mod ratelimit;
mod rbac;
mod security;
mod workspace;

use std::sync::Arc;

use poem::middleware::AddData;
use poem::{get, Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

use crate::app::AppState;

pub use auth::AuthApi;
pub use organization::OrganizationsApi;

pub const TITLE: &str = "Hexabase KaaS control plane";

/// Every API of the control plane, as one OpenAPI document.
pub type Apis = (
    AuthApi,
    OrganizationsApi,
    plans::PlansApi,
    workspace::WorkspacesApi,
    groups::GroupsApi,
    projects::ProjectsApi,
    rbac::RbacApi,
    oidc::OidcApi,
);

pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            AuthApi,
            OrganizationsApi,
            plans::PlansApi,
            workspace::WorkspacesApi,
            groups::GroupsApi,
            projects::ProjectsApi,
            rbac::RbacApi,
            oidc::OidcApi,
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

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
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
        .around(oidc::oauth_pages)
        .with(AddData::new(state))
        .around(middleware::observe)
}
