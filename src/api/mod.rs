//! The HTTP API: routes, the OpenAPI document, middleware. Each handler parses its input into
//! domain values, calls one operation of the application layer (`crate::app`), and shapes the
//! answer; errors are the one `crate::error::Error`, rendered by `error`.

mod audit;
mod auth;
mod billing;
mod context;
pub mod error;
mod groups;
mod idempotency;
pub mod middleware;
mod nodes;
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
mod text;
mod webhooks;
mod workspaces;
mod written;

use std::sync::Arc;

use poem::middleware::AddData;
use poem::{get, Endpoint, EndpointExt, IntoResponse, Route};
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
    billing::BillingApi,
    workspaces::WorkspacesApi,
    groups::GroupsApi,
    projects::ProjectsApi,
    nodes::NodesApi,
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
            billing::BillingApi,
            workspaces::WorkspacesApi,
            groups::GroupsApi,
            projects::ProjectsApi,
            nodes::NodesApi,
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

/// The committed `openapi/openapi.json` is exactly this, and `/openapi.json` serves it: the
/// document poem-openapi derives, completed with what the derive cannot say (see `complete`).
pub fn spec() -> String {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let mut doc: serde_json::Value =
            serde_json::from_str(&openapi().spec()).expect("poem-openapi writes JSON");
        complete(&mut doc);
        serde_json::to_string_pretty(&doc).expect("a JSON value serializes")
    })
    .clone()
}

/// Operations whose 401, 403 and 404 can be one of the provider's HTML pages (the sign-in page a
/// browser without a session gets, a device code that is unknown or not the user's to approve)
/// besides the JSON error of the same status.
const HTML_PAGES: &[(&str, &[&str])] = &[
    ("/oauth/authorize", &["401"]),
    ("/oauth/device", &["401", "403", "404"]),
];

/// What the derived document leaves out: JSON request bodies (and the objects within them)
/// refuse unknown fields, so their schemas have `additionalProperties: false`; the HTML pages
/// of `HTML_PAGES` are among the answers of their statuses.
fn complete(doc: &mut serde_json::Value) {
    let mut closed: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            let content = &operation["requestBody"]["content"];
            for (media, body) in content.as_object().into_iter().flatten() {
                if media.starts_with("application/json") {
                    collect_refs(&body["schema"], &mut pending);
                }
            }
        }
    }
    while let Some(name) = pending.pop() {
        if closed.contains(&name) {
            continue;
        }
        let schema = &mut doc["components"]["schemas"][&name];
        if schema["type"] == "object" {
            schema["additionalProperties"] = serde_json::Value::Bool(false);
        }
        let schema = schema.clone();
        collect_refs(&schema, &mut pending);
        closed.push(name);
    }
    for (path, statuses) in HTML_PAGES {
        let operation = &mut doc["paths"][*path]["get"];
        for status in *statuses {
            let response = &mut operation["responses"][*status];
            if response.is_null() {
                response["description"] = "".into();
            }
            response["content"]["text/html; charset=utf-8"] =
                serde_json::json!({ "schema": { "type": "string" } });
        }
    }
}

/// The names of the component schemas `schema` refers to (`$ref`), at any depth.
fn collect_refs(schema: &serde_json::Value, into: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    ("$ref", Some(target)) => {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            into.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(value, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

#[poem::handler]
fn spec_json() -> poem::Response {
    poem::Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(spec())
}

/// The methods the document has for the path `path` (its templates' `{parameters}` match any
/// one segment), as an `Allow` header value; `None` for a path it does not have.
pub fn allowed_methods(path: &str) -> Option<String> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&spec()).unwrap_or_default();
        spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let segments = template.split('/').map(str::to_owned).collect();
                        let mut methods: Vec<String> = item
                            .as_object()
                            .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                            .unwrap_or_default();
                        methods.sort();
                        (segments, methods.join(", "))
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let segments: Vec<&str> = path.split('/').collect();
    routes
        .iter()
        .find(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                })
        })
        .map(|(_, methods)| methods.clone())
}

/// `GET /` in a browser goes to the console, when this server has one.
async fn console_home<E: Endpoint>(
    next: E,
    req: poem::Request,
    console: bool,
) -> poem::Result<poem::Response> {
    if console && req.method() == poem::http::Method::GET && req.uri().path() == "/" {
        return Ok(poem::web::Redirect::see_other("/console/").into_response());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

pub fn routes(app: Arc<App>) -> impl Endpoint {
    crate::telemetry::metrics();
    let api = openapi();
    let docs = api.swagger_ui();
    let mut route = Route::new()
        .nest("/", api.around(idempotency::idempotency))
        .at("/openapi.json", get(spec_json))
        .at("/webhooks/stripe", poem::post(webhooks::stripe))
        .nest("/docs", docs)
        .at("/healthz", get(ops::healthz))
        .at("/readyz", get(ops::readyz))
        .at("/metrics", get(ops::prometheus));
    let console = app.settings.http.console_dir.is_some();
    if let Some(dir) = &app.settings.http.console_dir {
        // The console's static export: one `index.html` per page, same origin as the API, so
        // its session cookies and CSRF header work as they do for any browser.
        route = route.nest(
            "/console",
            poem::endpoint::StaticFilesEndpoint::new(dir)
                .index_file("index.html")
                .redirect_to_slash_directory(),
        );
    }
    route
        .around(move |next, req| console_home(next, req, console))
        .around(ratelimit::limit)
        .around(oauth::oauth_pages)
        .with(AddData::new(app))
        .around(middleware::observe)
}
