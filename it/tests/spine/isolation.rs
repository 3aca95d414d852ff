//! The isolation matrix: every operation of the OpenAPI document, called by every kind of caller,
//! answers what the policy (`command/src/policy.rs`) says. `matrix()` holds one entry per
//! operation; an operation without an entry, or an entry without an operation, fails the test,
//! so a new endpoint cannot ship without saying who may call it.
//!
//! Then the other organization's admin tries every operation with ids crossed: their own
//! organization, workspace or project, and within it (in the path or the body) a resource of
//! this one. It is never theirs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use hexabase::server::HttpServer;
use hexabase_command::user::{ExternalProfile, Identity, UserCommand};
use hexabase_command::values::Email;
use hexabase_command::workspace::MEMBERS_GROUP;
use hexabase_command::{CommandMetadata, UserId};
use hexabase_it::spine::Reply;
use hexabase_it::{TestApp, TestAppOptions};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    OrgAdmin,
    OrgMember,
    /// An organization member in the workspace's `WSAdmins` group.
    WsAdmin,
    /// An organization member in the workspace's `WorkspaceMembers` group only.
    WsMember,
    /// The admin of another organization.
    OtherOrg,
    Anonymous,
}

impl Caller {
    /// The order of the columns of `Entry::expect`.
    const ALL: [Caller; 6] = [
        Caller::OrgAdmin,
        Caller::OrgMember,
        Caller::WsAdmin,
        Caller::WsMember,
        Caller::OtherOrg,
        Caller::Anonymous,
    ];
}

/// No provider is configured in these tests (there is no identity provider to talk to).
const PROVIDER: &str = "google";
const PLAN: &str = "starter";

/// A resource made for one call, so that calls which succeed once per resource (deleting it,
/// assigning it a role) leave the shared fixture as the rest of the matrix needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// `{org_id}`: an organization without workspaces, with the same people in the same roles.
    Org,
    /// `{user_id}`: a new member of the organization.
    Member,
    /// `{ws_id}`: a workspace of the organization with the same people in the same groups.
    Workspace,
    /// `{group_id}`: a new group of the workspace.
    Group,
    /// `{user_id}`: a new member of the organization, in the group.
    GroupMember,
    /// `{project_id}`: a new project of the workspace.
    Project,
    /// `{role_id}`: a new custom role of the project.
    Role,
    /// `{assignment_id}`: a new role assignment of the project.
    Assignment,
    /// `{assignment_id}`: a new cluster role assignment of the workspace.
    ClusterAssignment,
}

struct Entry {
    method: &'static str,
    path: &'static str,
    /// Callable without a session (how a session starts).
    public: bool,
    query: &'static str,
    body: Option<fn(&Vars, usize) -> Value>,
    /// Callers expected to succeed act on a fresh resource, after every other entry; the
    /// others act on the shared fixture.
    fresh: Option<Fresh>,
    /// Status per caller, in `Caller::ALL` order.
    expect: [u16; 6],
    /// What naming another organization's resource in the body gets.
    foreign_in_body: u16,
}

impl Entry {
    fn public(method: &'static str, path: &'static str, expect: [u16; 6]) -> Self {
        Self {
            public: true,
            ..Self::session(method, path, expect)
        }
    }

    fn session(method: &'static str, path: &'static str, expect: [u16; 6]) -> Self {
        Self {
            method,
            path,
            public: false,
            query: "",
            body: None,
            fresh: None,
            expect,
            foreign_in_body: 404,
        }
    }

    fn body(self, body: fn(&Vars, usize) -> Value) -> Self {
        Self {
            body: Some(body),
            ..self
        }
    }

    fn query(self, query: &'static str) -> Self {
        Self { query, ..self }
    }

    fn fresh(self, fresh: Fresh) -> Self {
        Self {
            fresh: Some(fresh),
            ..self
        }
    }

    fn foreign_in_body(self, status: u16) -> Self {
        Self {
            foreign_in_body: status,
            ..self
        }
    }

    fn expected(&self, caller: Caller) -> u16 {
        let column = Caller::ALL.iter().position(|c| *c == caller);
        self.expect[column.expect("every caller has a column")]
    }

    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }
}

fn rules() -> Value {
    json!([{ "api_groups": [""], "resources": ["pods"], "verbs": ["get", "list"] }])
}

/// Who gets what. Columns: org admin, org member, WSAdmin, workspace member, admin of another
/// organization, anonymous. 404: "this does not exist for you"; 403: "you see it but may not".
#[rustfmt::skip]
fn matrix() -> Vec<Entry> {
    use Fresh::*;
    vec![
        // Signing in. No provider is configured: login, link and callback answer 404.
        // The sign-in page's list of providers (none here), before anyone has a session.
        Entry::public("get", "/auth/providers",                                       [200, 200, 200, 200, 200, 200]),
        Entry::public("post", "/auth/login/{provider}",                               [404, 404, 404, 404, 404, 404]),
        Entry::public("get", "/auth/login/{provider}/browser",                        [404, 404, 404, 404, 404, 404]),
        Entry::public("get", "/auth/callback/{provider}",                             [404, 404, 404, 404, 404, 404])
            .query("?code=c&state=s"),
        Entry::public("post", "/auth/refresh",                                        [401, 401, 401, 401, 401, 401])
            .body(|_, _| json!({ "refresh_token": "not-a-refresh-token" })),
        // Test tokens carry no session id: a bearer sign-out revokes nothing and succeeds.
        Entry::public("post", "/auth/logout",                                         [204, 204, 204, 204, 204, 401]),
        Entry::session("post", "/auth/link/{provider}",                              [404, 404, 404, 404, 404, 401]),
        Entry::session("get", "/auth/me",                                             [200, 200, 200, 200, 200, 401]),

        Entry::session("get", "/api/v1/plans",                                        [200, 200, 200, 200, 200, 401]),
        Entry::session("get", "/api/v1/plans/{plan_id}",                              [200, 200, 200, 200, 200, 401]),

        Entry::session("post", "/api/v1/organizations",                               [201, 201, 201, 201, 201, 401])
            .body(|_, n| json!({ "name": format!("New {n}") })),
        Entry::session("get", "/api/v1/organizations",                                [200, 200, 200, 200, 200, 401]),
        Entry::session("get", "/api/v1/organizations/{org_id}",                       [200, 200, 200, 200, 404, 401]),
        Entry::session("patch", "/api/v1/organizations/{org_id}",                     [200, 403, 403, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("Renamed {n}") })),
        Entry::session("delete", "/api/v1/organizations/{org_id}",                    [200, 403, 403, 403, 404, 401])
            .fresh(Org),
        Entry::session("get", "/api/v1/organizations/{org_id}/events",                [200, 403, 403, 403, 404, 401]),
        // Billing is organization admins' (this control plane has no Stripe: the admin learns
        // that billing is not configured).
        Entry::session("get", "/api/v1/organizations/{org_id}/billing",               [200, 403, 403, 403, 404, 401]),
        Entry::session("post", "/api/v1/organizations/{org_id}/billing/checkout",     [404, 403, 403, 403, 404, 401])
            .body(|_, _| json!({ "plan": "team" })),
        Entry::session("post", "/api/v1/organizations/{org_id}/billing/portal",       [404, 403, 403, 403, 404, 401]),

        Entry::session("get", "/api/v1/organizations/{org_id}/users",                 [200, 200, 200, 200, 404, 401]),
        Entry::session("post", "/api/v1/organizations/{org_id}/users",                [201, 403, 403, 403, 404, 401])
            .body(|_, n| json!({ "email": format!("invitee-{n}@example.com"), "role": "member" })),
        // Every caller signed in with a verified email that nobody invited to this organization.
        Entry::session("post", "/api/v1/organizations/{org_id}/invitations/accept",   [404, 404, 404, 404, 404, 401]),
        Entry::session("patch", "/api/v1/organizations/{org_id}/users/{user_id}",     [200, 403, 403, 403, 404, 401])
            .body(|_, _| json!({ "role": "admin" }))
            .fresh(Member),
        Entry::session("delete", "/api/v1/organizations/{org_id}/users/{user_id}",    [200, 403, 403, 403, 404, 401])
            .fresh(Member),

        Entry::session("post", "/api/v1/organizations/{org_id}/workspaces",           [202, 403, 403, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("Workspace {n}"), "plan": PLAN })),
        // An organization member sees only the workspaces they are in a group of.
        Entry::session("get", "/api/v1/organizations/{org_id}/workspaces",            [200, 200, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/organizations/{org_id}/workspaces/{ws_id}",   [200, 404, 200, 200, 404, 401]),
        Entry::session("patch", "/api/v1/organizations/{org_id}/workspaces/{ws_id}",  [200, 404, 200, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("Renamed {n}") })),
        Entry::session("delete", "/api/v1/organizations/{org_id}/workspaces/{ws_id}", [202, 404, 202, 403, 404, 401])
            .fresh(Workspace),
        // The OIDC provider: discovery and keys are public; workspace tokens go to the members
        // of the workspace's groups only (the org admin, in none of them here, is refused).
        Entry::public("get", "/.well-known/openid-configuration",                    [200, 200, 200, 200, 200, 200]),
        Entry::public("get", "/.well-known/jwks.json",                               [200, 200, 200, 200, 200, 200]),
        Entry::session("post", "/api/v1/workspaces/{ws_id}/token",                   [403, 404, 200, 200, 404, 401]),
        // The authorization code flow: a signed-in browser is always sent back to the client's
        // loopback address (here with `access_denied`: no such workspace); the token endpoint
        // takes a form, not JSON.
        Entry::session("get", "/oauth/authorize",                                    [302, 302, 302, 302, 302, 401])
            .query("?response_type=code&client_id=ws-01900000000070008000000000000000\
                    &redirect_uri=http://127.0.0.1:9/cb&scope=openid\
                    &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"),
        // Nobody has a request waiting for approval under this secret.
        Entry::session("get", "/oauth/approve",                                      [404, 404, 404, 404, 404, 401])
            .query("?approval=not-a-pending-approval&decision=allow"),
        Entry::public("post", "/oauth/token",                                        [415, 415, 415, 415, 415, 415])
            .body(|_, _| json!({ "grant_type": "refresh_token" })),
        // The device flow: the machine's request takes a form too; anyone signed in gets the
        // form to enter a code; nobody has a device waiting under this approval secret.
        Entry::public("post", "/oauth/device_authorization",                         [415, 415, 415, 415, 415, 415])
            .body(|_, _| json!({ "client_id": "ws-01900000000070008000000000000000" })),
        Entry::session("get", "/oauth/device",                                       [200, 200, 200, 200, 200, 401]),
        Entry::session("get", "/oauth/device/approve",                               [404, 404, 404, 404, 404, 401])
            .query("?approval=not-a-pending-approval&decision=allow"),
        // Those who may read it pass the policy and learn that the workspace has no API server yet.
        Entry::session("get", "/api/v1/organizations/{org_id}/workspaces/{ws_id}/kubeconfig",
                                                                                      [409, 404, 409, 409, 404, 401]),

        Entry::session("post", "/api/v1/workspaces/{ws_id}/groups",                  [201, 404, 201, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("group-{n}") })),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/groups",                   [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/groups/{group_id}",        [200, 404, 200, 200, 404, 401]),
        Entry::session("patch", "/api/v1/workspaces/{ws_id}/groups/{group_id}",      [200, 404, 200, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("team-{n}") })),
        Entry::session("delete", "/api/v1/workspaces/{ws_id}/groups/{group_id}",     [200, 404, 200, 403, 404, 401])
            .fresh(Group),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/groups/{group_id}/members", [200, 404, 200, 200, 404, 401]),
        // Only members of the workspace's organization can join its groups (422).
        Entry::session("post", "/api/v1/workspaces/{ws_id}/groups/{group_id}/members",
                                                                                      [201, 404, 201, 403, 404, 401])
            .body(|vars, _| json!({ "user_id": vars.user }))
            .fresh(Member)
            .foreign_in_body(422),
        Entry::session("delete", "/api/v1/workspaces/{ws_id}/groups/{group_id}/members/{user_id}",
                                                                                      [200, 404, 200, 403, 404, 401])
            .fresh(GroupMember),

        // The workspace never became Ready (no https issuer here): nothing to suspend or resume.
        Entry::session("post", "/api/v1/organizations/{org_id}/workspaces/{ws_id}/suspend", [409, 404, 403, 403, 404, 401])
            .body(|_, _| json!({})),
        Entry::session("post", "/api/v1/organizations/{org_id}/workspaces/{ws_id}/resume",  [409, 404, 403, 403, 404, 401]),
        // Its plan has no dedicated nodes, and this control plane no host.
        Entry::session("post", "/api/v1/workspaces/{ws_id}/nodes",                   [409, 404, 409, 403, 404, 401])
            .body(|_, _| json!({ "count": 1 })),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/nodes",                    [200, 404, 200, 200, 404, 401]),
        Entry::session("delete", "/api/v1/workspaces/{ws_id}/nodes/{node}",          [404, 404, 404, 403, 404, 401]),

        Entry::session("post", "/api/v1/workspaces/{ws_id}/projects",                [201, 404, 201, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("project-{n}") })),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/projects",                 [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/projects/{project_id}",    [200, 404, 200, 200, 404, 401]),
        Entry::session("patch", "/api/v1/workspaces/{ws_id}/projects/{project_id}",  [200, 404, 200, 403, 404, 401])
            .body(|_, _| json!({ "parent_id": null })),
        Entry::session("delete", "/api/v1/workspaces/{ws_id}/projects/{project_id}", [200, 404, 200, 403, 404, 401])
            .fresh(Project),

        // The workspace member is in no group granted `admin` on the project: no project admin.
        Entry::session("post", "/api/v1/projects/{project_id}/roles",                [201, 404, 201, 403, 404, 401])
            .body(|_, n| json!({ "name": format!("role-{n}"), "rules": rules() })),
        Entry::session("get", "/api/v1/projects/{project_id}/roles",                 [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/projects/{project_id}/roles/{role_id}",       [200, 404, 200, 200, 404, 401]),
        Entry::session("patch", "/api/v1/projects/{project_id}/roles/{role_id}",     [200, 404, 200, 403, 404, 401])
            .body(|_, _| json!({ "rules": rules() })),
        Entry::session("delete", "/api/v1/projects/{project_id}/roles/{role_id}",    [200, 404, 200, 403, 404, 401])
            .fresh(Role),
        Entry::session("post", "/api/v1/projects/{project_id}/roleassignments",      [201, 404, 201, 403, 404, 401])
            .body(|vars, _| json!({ "group_id": vars.group, "role": "view" }))
            .fresh(Group),
        Entry::session("get", "/api/v1/projects/{project_id}/roleassignments",       [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/projects/{project_id}/roleassignments/{assignment_id}",
                                                                                      [200, 404, 200, 200, 404, 401]),
        Entry::session("delete", "/api/v1/projects/{project_id}/roleassignments/{assignment_id}",
                                                                                      [200, 404, 200, 403, 404, 401])
            .fresh(Assignment),
        Entry::session("post", "/api/v1/workspaces/{ws_id}/clusterroleassignments",  [201, 404, 201, 403, 404, 401])
            .body(|vars, _| json!({ "group_id": vars.group, "cluster_role": "view" }))
            .fresh(Group),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/clusterroleassignments",   [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/workspaces/{ws_id}/clusterroleassignments/{assignment_id}",
                                                                                      [200, 404, 200, 200, 404, 401]),
        Entry::session("delete", "/api/v1/workspaces/{ws_id}/clusterroleassignments/{assignment_id}",
                                                                                      [200, 404, 200, 403, 404, 401])
            .fresh(ClusterAssignment),

        // What the control plane does to the workspace's cluster, for whoever sees the workspace.
        Entry::session("get", "/api/v1/workspaces/{ws_id}/tasks",                    [200, 404, 200, 200, 404, 401]),
        Entry::session("get", "/api/v1/tasks/{task_id}",                              [200, 404, 200, 200, 404, 401]),
    ]
}

/// The operations of the OpenAPI document, as (method, path template).
fn operations(spec: &Value) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];
    let paths = spec["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item");
            item.keys()
                .filter(|method| METHODS.contains(&method.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn is_public(spec: &Value, method: &str, path: &str) -> bool {
    spec["paths"][path][method]["security"]
        .as_array()
        .is_none_or(|schemes| schemes.is_empty())
}

/// What is wrong with the table itself: operations without an entry, entries without an
/// operation, duplicates, and entries disagreeing with the document about needing a session.
fn table_errors(spec: &Value, entries: &[Entry]) -> Vec<String> {
    let operations = operations(spec);
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries {
        let key = (entry.method.to_owned(), entry.path.to_owned());
        if !seen.insert(key.clone()) {
            errors.push(format!("{} has two entries", entry.name()));
        }
        if !operations.contains(&key) {
            errors.push(format!(
                "{} has an entry but is not in the OpenAPI document: remove it",
                entry.name()
            ));
            continue;
        }
        let public = is_public(spec, entry.method, entry.path);
        if public != entry.public {
            let kind = |public| if public { "public" } else { "session needed" };
            errors.push(format!(
                "{}: the document says {}, the entry says {}",
                entry.name(),
                kind(public),
                kind(entry.public)
            ));
        }
        if !entry.public && entry.expected(Caller::Anonymous) != 401 {
            errors.push(format!(
                "{} needs a session: anonymous must get 401",
                entry.name()
            ));
        }
    }
    for (method, path) in operations.difference(&seen) {
        errors.push(format!(
            "{} {path} has no entry in the isolation matrix (it/tests/spine/isolation.rs, \
             `matrix()`): say what every caller gets",
            method.to_uppercase()
        ));
    }
    errors
}

fn spec() -> Value {
    serde_json::from_str(&hexabase::api::spec()).expect("the OpenAPI document is JSON")
}

#[test]
fn every_operation_of_the_openapi_document_has_an_entry_in_the_isolation_matrix() {
    let errors = table_errors(&spec(), &matrix());
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

/// Values for the path parameters (and the ids bodies name). Empty: the fixture has none.
#[derive(Clone, Default)]
struct Vars {
    org: String,
    ws: String,
    user: String,
    group: String,
    project: String,
    role: String,
    assignment: String,
    cluster_assignment: String,
    task: String,
}

/// The path parameters that name a resource.
const IDS: [&str; 8] = [
    "org_id",
    "ws_id",
    "user_id",
    "group_id",
    "project_id",
    "role_id",
    "assignment_id",
    "task_id",
];

impl Vars {
    /// The value of `{parameter}` after the path segment `collection`.
    fn value(&self, collection: &str, parameter: &str) -> Option<&str> {
        let value = match (collection, parameter) {
            (_, "org_id") => &self.org,
            (_, "ws_id") => &self.ws,
            (_, "user_id") => &self.user,
            (_, "group_id") => &self.group,
            (_, "project_id") => &self.project,
            (_, "role_id") => &self.role,
            ("roleassignments", "assignment_id") => &self.assignment,
            ("clusterroleassignments", "assignment_id") => &self.cluster_assignment,
            (_, "task_id") => &self.task,
            (_, "plan_id") => PLAN,
            (_, "provider") => PROVIDER,
            // A node nobody has.
            (_, "node") => "kwok-node-0",
            _ => return None,
        };
        Some(value).filter(|v| !v.is_empty())
    }

    fn fill(&self, template: &str) -> Result<String, String> {
        fill(template, |_| self)
    }

    /// These values with each of `hidden` replaced by an id of the same kind that exists
    /// nowhere.
    fn ghost(&self, hidden: &[&str]) -> Vars {
        let ghost = |id: &String| match hidden.contains(&id.as_str()) {
            true => format!("{}{}", &id[..id.len() - 32], uuid::Uuid::new_v4().simple()),
            false => id.clone(),
        };
        Vars {
            org: ghost(&self.org),
            ws: ghost(&self.ws),
            user: ghost(&self.user),
            group: ghost(&self.group),
            project: ghost(&self.project),
            role: ghost(&self.role),
            assignment: ghost(&self.assignment),
            cluster_assignment: ghost(&self.cluster_assignment),
            task: ghost(&self.task),
        }
    }

    /// `template` with its outermost resource from `self` and those within it from `inner`;
    /// `None` when it names fewer than two resources.
    fn crossed(&self, template: &str, inner: &Vars) -> Option<Result<String, String>> {
        let resources = IDS
            .iter()
            .filter(|id| template.contains(&format!("{{{id}}}")))
            .count();
        (resources >= 2).then(|| fill(template, |i| if i == 0 { self } else { inner }))
    }
}

/// `template` with the `i`-th resource parameter from `vars(i)`.
fn fill<'a>(template: &str, vars: impl Fn(usize) -> &'a Vars) -> Result<String, String> {
    let mut path = String::new();
    let mut rest = template;
    let mut resource = 0;
    while let Some((head, tail)) = rest.split_once('{') {
        let (parameter, tail) = tail.split_once('}').unwrap_or((tail, ""));
        let collection = head.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let value = vars(resource).value(collection, parameter).ok_or_else(|| {
            format!("{template}: the fixture has no value for {{{parameter}}} (see `Vars`)")
        })?;
        resource += usize::from(IDS.contains(&parameter));
        path.push_str(head);
        path.push_str(value);
        rest = tail;
    }
    path.push_str(rest);
    Ok(path)
}

/// Someone signed in: registered (as a first sign-in would) with a verified email.
struct Person {
    id: UserId,
    token: String,
    email: String,
}

async fn person(app: &TestApp, label: &str) -> Person {
    let (id, token) = app.user();
    let email = format!("{label}-{}@example.com", &id.as_str()[8..20]);
    let command = UserCommand::Register {
        id: id.clone(),
        profile: ExternalProfile {
            identity: Identity {
                provider: "dex".into(),
                subject: id.to_string(),
            },
            email: Some(Email::parse("email", &email).expect("an email")),
            email_verified: true,
            display_name: Some(label.into()),
        },
    };
    let metadata = CommandMetadata::for_request(id.clone(), "it".into());
    app.state
        .users
        .execute_with_metadata(id.as_str(), command, metadata.into_map())
        .await
        .expect("register the user");
    Person { id, token, email }
}

/// A fixture step through the API by `by`; it must answer `status`. Returns the body.
async fn step(app: &TestApp, by: &Person, call: (Method, &str), body: Value, status: u16) -> Value {
    let (method, path) = call;
    let reply = app
        .request(method.clone(), path, Some(&by.token), Some(&body))
        .await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{method} {path}: {}",
        reply.text
    );
    reply.body
}

/// A fixture step that creates something; returns its id.
async fn create(app: &TestApp, by: &Person, path: &str, body: Value, status: u16) -> String {
    let created = step(app, by, (Method::POST, path), body, status).await;
    created["id"].as_str().expect("an id").to_owned()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `person` joins `org` as `role`: invited by `admin`, accepted by them.
async fn join(app: &TestApp, org: &str, admin: &Person, person: &Person, role: &str) {
    let users = format!("/api/v1/organizations/{org}/users");
    let invite = json!({ "email": person.email, "role": role });
    step(app, admin, (Method::POST, &users), invite, 201).await;
    let accept = format!("/api/v1/organizations/{org}/invitations/accept");
    step(app, person, (Method::POST, &accept), json!({}), 200).await;
}

/// The scenario: organization `org` with an admin and a member; workspace `ws` in it with a
/// WSAdmin and a workspace member, both organization members, and in it a group, a project, a
/// custom role, a role assignment and a cluster role assignment (`vars`); another organization
/// with its own admin, workspace, group and project (`theirs`).
struct Fixture {
    admin: Person,
    member: Person,
    ws_admin: Person,
    ws_member: Person,
    other: Person,
    vars: Vars,
    theirs: Vars,
}

impl Fixture {
    async fn build(app: &TestApp) -> Self {
        let admin = person(app, "admin").await;
        let other = person(app, "other").await;
        let (org, _) = app.create_org(&admin.token, "Isolated").await;
        let mut fixture = Self {
            member: person(app, "member").await,
            ws_admin: person(app, "wsadmin").await,
            ws_member: person(app, "wsmember").await,
            vars: Vars {
                org,
                ..Vars::default()
            },
            theirs: Vars {
                org: app.create_org(&other.token, "Elsewhere").await.0,
                user: other.id.to_string(),
                ..Vars::default()
            },
            admin,
            other,
        };
        let org = fixture.vars.org.clone();
        for person in [&fixture.member, &fixture.ws_admin, &fixture.ws_member] {
            join(app, &org, &fixture.admin, person, "member").await;
        }
        fixture.vars.user = fixture.member.id.to_string();
        fixture.vars.ws = fixture.workspace(app).await;
        fixture.vars.group = fixture.group(app).await;
        fixture.vars.project = fixture.project(app).await;
        fixture.vars.role = fixture.role(app).await;
        fixture.vars.assignment = fixture.assignment(app, &fixture.vars.group).await;
        let group = &fixture.vars.group;
        fixture.vars.cluster_assignment = fixture.cluster_assignment(app, group).await;
        fixture.vars.task = fixture.task(app).await;

        let (other, theirs) = (&fixture.other, &mut fixture.theirs);
        let workspaces = format!("/api/v1/organizations/{}/workspaces", theirs.org);
        let body = json!({ "name": "Theirs", "plan": PLAN });
        theirs.ws = create(app, other, &workspaces, body, 202).await;
        app.caught_up().await;
        let groups = format!("/api/v1/workspaces/{}/groups", theirs.ws);
        theirs.group = create(app, other, &groups, json!({ "name": "theirs" }), 201).await;
        let projects = format!("/api/v1/workspaces/{}/projects", theirs.ws);
        let body = json!({ "name": "theirs" });
        theirs.project = create(app, other, &projects, body, 201).await;
        app.caught_up().await;
        fixture
    }

    /// A workspace of the organization whose `WSAdmins` hold `ws_admin` alone and whose
    /// `WorkspaceMembers` hold `ws_member`. Only an admin may request a workspace (and lands in
    /// its `WSAdmins`), so `ws_admin` is an organization admin for the request and a member
    /// again afterwards; the organization admin is in none of its groups and manages it through
    /// their role alone.
    async fn workspace(&self, app: &TestApp) -> String {
        let (org, admin, ws_admin) = (&self.vars.org, &self.admin, &self.ws_admin);
        let role = format!("/api/v1/organizations/{org}/users/{}", ws_admin.id);
        step(
            app,
            admin,
            (Method::PATCH, &role),
            json!({ "role": "admin" }),
            200,
        )
        .await;
        let workspaces = format!("/api/v1/organizations/{org}/workspaces");
        let body = json!({ "name": "Shared", "plan": PLAN });
        let ws = create(app, ws_admin, &workspaces, body, 202).await;
        step(
            app,
            admin,
            (Method::PATCH, &role),
            json!({ "role": "member" }),
            200,
        )
        .await;
        app.caught_up().await;

        let groups = format!("/api/v1/workspaces/{ws}/groups");
        let groups = step(app, admin, (Method::GET, &groups), Value::Null, 200).await;
        let members_group = groups["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["name"] == MEMBERS_GROUP)
            .and_then(|g| g["id"].as_str())
            .expect("the preset members group");
        let members = format!("/api/v1/workspaces/{ws}/groups/{members_group}/members");
        let body = json!({ "user_id": self.ws_member.id });
        step(app, admin, (Method::POST, &members), body, 201).await;
        app.caught_up().await;
        ws
    }

    /// An organization without workspaces with the same people in the same roles.
    async fn organization(&self, app: &TestApp) -> String {
        let (org, _) = app.create_org(&self.admin.token, "Throwaway").await;
        for person in [&self.member, &self.ws_admin, &self.ws_member] {
            join(app, &org, &self.admin, person, "member").await;
        }
        app.caught_up().await;
        org
    }

    async fn group(&self, app: &TestApp) -> String {
        let groups = format!("/api/v1/workspaces/{}/groups", self.vars.ws);
        let body = json!({ "name": unique("team") });
        let group = create(app, &self.admin, &groups, body, 201).await;
        app.caught_up().await;
        group
    }

    async fn project(&self, app: &TestApp) -> String {
        let projects = format!("/api/v1/workspaces/{}/projects", self.vars.ws);
        let body = json!({ "name": unique("web") });
        let project = create(app, &self.admin, &projects, body, 201).await;
        app.caught_up().await;
        project
    }

    async fn role(&self, app: &TestApp) -> String {
        let roles = format!("/api/v1/projects/{}/roles", self.vars.project);
        let body = json!({ "name": unique("reader"), "rules": rules() });
        let role = create(app, &self.admin, &roles, body, 201).await;
        app.caught_up().await;
        role
    }

    /// `group` gets `view` on the project.
    async fn assignment(&self, app: &TestApp, group: &str) -> String {
        let assignments = format!("/api/v1/projects/{}/roleassignments", self.vars.project);
        let body = json!({ "group_id": group, "role": "view" });
        let assignment = create(app, &self.admin, &assignments, body, 201).await;
        app.caught_up().await;
        assignment
    }

    /// `group` gets the `view` cluster role in the workspace.
    /// The workspace's provisioning task, once its saga has started.
    async fn task(&self, app: &TestApp) -> String {
        let tasks = format!("/api/v1/workspaces/{}/tasks", self.vars.ws);
        for _ in 0..300 {
            let reply = app.get(&tasks, &self.admin.token).await;
            if let Some(id) = reply.body["items"][0]["id"].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the workspace's provisioning task never started")
    }

    async fn cluster_assignment(&self, app: &TestApp, group: &str) -> String {
        let path = format!("/api/v1/workspaces/{}/clusterroleassignments", self.vars.ws);
        let body = json!({ "group_id": group, "cluster_role": "view" });
        let assignment = create(app, &self.admin, &path, body, 201).await;
        app.caught_up().await;
        assignment
    }

    async fn member(&self, app: &TestApp) -> String {
        let admin = &self.admin.token;
        let (user, _) = app.member_of(&self.vars.org, admin, "member").await;
        user.to_string()
    }

    /// The shared fixture with `fresh` made anew.
    async fn with_fresh(&self, app: &TestApp, fresh: Fresh) -> Vars {
        let mut vars = self.vars.clone();
        match fresh {
            Fresh::Org => vars.org = self.organization(app).await,
            Fresh::Member => vars.user = self.member(app).await,
            Fresh::Workspace => vars.ws = self.workspace(app).await,
            Fresh::Group => vars.group = self.group(app).await,
            Fresh::GroupMember => {
                vars.user = self.member(app).await;
                let members = format!(
                    "/api/v1/workspaces/{}/groups/{}/members",
                    vars.ws, vars.group
                );
                let body = json!({ "user_id": vars.user });
                step(app, &self.admin, (Method::POST, &members), body, 201).await;
                app.caught_up().await;
            }
            Fresh::Project => vars.project = self.project(app).await,
            Fresh::Role => vars.role = self.role(app).await,
            Fresh::Assignment => {
                let group = self.group(app).await;
                vars.assignment = self.assignment(app, &group).await;
            }
            Fresh::ClusterAssignment => {
                let group = self.group(app).await;
                vars.cluster_assignment = self.cluster_assignment(app, &group).await;
            }
        }
        vars
    }

    fn callers(&self) -> [(Caller, Option<&str>); 6] {
        [
            (Caller::OrgAdmin, Some(self.admin.token.as_str())),
            (Caller::OrgMember, Some(self.member.token.as_str())),
            (Caller::WsAdmin, Some(self.ws_admin.token.as_str())),
            (Caller::WsMember, Some(self.ws_member.token.as_str())),
            (Caller::OtherOrg, Some(self.other.token.as_str())),
            (Caller::Anonymous, None),
        ]
    }

    /// Ids that must not appear in any successful answer to `caller`.
    fn hidden_from(&self, caller: Caller) -> Vec<&str> {
        let v = &self.vars;
        let workspace = [
            &v.ws,
            &v.group,
            &v.project,
            &v.role,
            &v.assignment,
            &v.cluster_assignment,
            &v.task,
        ]
        .map(String::as_str);
        match caller {
            Caller::OtherOrg | Caller::Anonymous => {
                [&[v.org.as_str(), v.user.as_str()], &workspace[..]].concat()
            }
            Caller::OrgMember => workspace.to_vec(),
            Caller::OrgAdmin | Caller::WsAdmin | Caller::WsMember => vec![],
        }
    }
}

/// One call of the matrix.
struct Call<'a> {
    entry: &'a Entry,
    caller: Caller,
    token: Option<&'a str>,
    path: Result<String, String>,
    body: Option<Value>,
    expected: u16,
    /// The same call naming, instead of what the caller may not see, ids that exist nowhere:
    /// a 404 must not tell them apart.
    ghost: Option<(Result<String, String>, Option<Value>)>,
}

struct Mismatch {
    caller: String,
    operation: String,
    expected: u16,
    got: String,
    body: String,
}

/// Makes `call` and returns what differs from the table, if anything.
async fn check(app: &TestApp, fixture: &Fixture, call: Call<'_>, label: &str) -> Option<Mismatch> {
    let mismatch = |operation: String, got: String, body: String| Mismatch {
        caller: format!("{:?}{label}", call.caller),
        operation,
        expected: call.expected,
        got,
        body,
    };
    let path = match call.path {
        Ok(path) => format!("{path}{}", call.entry.query),
        Err(e) => return Some(mismatch(call.entry.name(), "-".into(), e)),
    };
    let method = Method::from_bytes(call.entry.method.to_uppercase().as_bytes()).expect("a method");
    let reply = app
        .request(method.clone(), &path, call.token, call.body.as_ref())
        .await;
    let operation = format!("{method} {path}");
    let got = reply.status.as_u16();
    if got != call.expected {
        return Some(mismatch(operation, got.to_string(), reply.text));
    }
    if let Some(leaked) = leaks(&reply, &fixture.hidden_from(call.caller)) {
        return Some(mismatch(
            operation,
            format!("{got} leaking {leaked}"),
            reply.text,
        ));
    }
    let (ghost_path, ghost_body) = call.ghost.filter(|_| got == 404)?;
    let ghost_path = format!("{}{}", ghost_path.ok()?, call.entry.query);
    if ghost_path == path && ghost_body == call.body {
        return None;
    }
    let ghost = app
        .request(method, &ghost_path, call.token, ghost_body.as_ref())
        .await;
    let same = ghost.status == reply.status && without_ids(&ghost.text) == without_ids(&reply.text);
    (!same).then(|| {
        let got = format!(
            "404 unlike a missing one ({}: {})",
            ghost.status.as_u16(),
            ghost.text
        );
        mismatch(operation, got, reply.text)
    })
}

/// `text` with every id suffix (32 hex digits) blanked out.
fn without_ids(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 32 { "…" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// The hidden ids a successful answer mentions.
fn leaks(reply: &Reply, hidden: &[&str]) -> Option<String> {
    if !reply.status.is_success() {
        return None;
    }
    let leaked: Vec<&str> = hidden
        .iter()
        .copied()
        .filter(|id| reply.text.contains(id))
        .collect();
    (!leaked.is_empty()).then(|| leaked.join(", "))
}

fn report(mismatches: &[Mismatch]) -> String {
    let mut out = format!(
        "{} mismatch(es) in the isolation matrix:\n{:<24} | {:<110} | {:<8} | {:<6} | body\n",
        mismatches.len(),
        "caller",
        "operation",
        "expected",
        "got"
    );
    for m in mismatches {
        let body: String = m.body.chars().take(200).collect();
        let _ = writeln!(
            out,
            "{:<24} | {:<110} | {:<8} | {:<6} | {body}",
            m.caller, m.operation, m.expected, m.got
        );
    }
    out
}

/// One app, one scenario, every operation by every caller, then with crossed ids.
#[tokio::test]
async fn every_caller_gets_what_the_policy_says_on_every_operation() {
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let app = TestApp::spawn_on(server, TestAppOptions::default(), |settings| {
        // The matrix calls from one address far more often than a person would; the limits
        // have their own tests (rate_limit.rs).
        settings.rate_limit.auth_per_window = 0;
        settings.rate_limit.api_per_window = 0;
        settings.auth.providers.clear();
    })
    .await;
    let fixture = Fixture::build(&app).await;

    let spec = spec();
    let entries = matrix();
    let mut failures = table_errors(&spec, &entries);
    let operations = operations(&spec);
    let (shared, fresh): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .filter(|e| operations.contains(&(e.method.to_owned(), e.path.to_owned())))
        .partition(|e| e.fresh.is_none());
    // Entries with fresh resources (deletions above all) last, so that anything they wrongly
    // allow cannot hide what the others do.
    let entries: Vec<&Entry> = shared.into_iter().chain(fresh).collect();

    let mut mismatches = Vec::new();
    let mut n = 0;
    for entry in &entries {
        for (caller, token) in fixture.callers() {
            n += 1;
            let expected = entry.expected(caller);
            let made;
            let vars = match entry.fresh {
                Some(fresh) if (200..300).contains(&expected) => {
                    made = fixture.with_fresh(&app, fresh).await;
                    &made
                }
                _ => &fixture.vars,
            };
            let ghost = vars.ghost(&fixture.hidden_from(caller));
            let call = Call {
                entry,
                caller,
                token,
                path: vars.fill(entry.path),
                body: entry.body.map(|body| body(vars, n)),
                expected,
                ghost: Some((
                    ghost.fill(entry.path),
                    entry.body.map(|body| body(&ghost, n)),
                )),
            };
            mismatches.extend(check(&app, &fixture, call, "").await);
        }
    }

    // Crossed ids, by the other organization's admin: never theirs.
    let (ours, theirs, other) = (&fixture.vars, &fixture.theirs, &fixture.other);
    let ghosts = ours.ghost(&fixture.hidden_from(Caller::OtherOrg));
    for entry in &entries {
        n += 1;
        // Their organization, workspace or project in the path, ours within it: 404.
        if let Some(path) = theirs.crossed(entry.path, ours) {
            let call = Call {
                entry,
                caller: Caller::OtherOrg,
                token: Some(&other.token),
                path,
                body: entry.body.map(|body| body(theirs, n)),
                expected: 404,
                ghost: theirs
                    .crossed(entry.path, &ghosts)
                    .map(|path| (path, entry.body.map(|body| body(theirs, n)))),
            };
            mismatches.extend(check(&app, &fixture, call, " (ids in path)").await);
        }
        // Their path, and one of our resources in the body.
        let bodies = entry.body.map(|body| (body(theirs, n), body(ours, n)));
        if let Some((_, our_body)) = bodies.filter(|(theirs, ours)| theirs != ours) {
            let call = Call {
                entry,
                caller: Caller::OtherOrg,
                token: Some(&other.token),
                path: theirs.fill(entry.path),
                body: Some(our_body),
                expected: entry.foreign_in_body,
                ghost: Some((
                    theirs.fill(entry.path),
                    entry.body.map(|body| body(&ghosts, n)),
                )),
            };
            mismatches.extend(check(&app, &fixture, call, " (ids in body)").await);
        }
    }

    if !mismatches.is_empty() {
        failures.push(report(&mismatches));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
