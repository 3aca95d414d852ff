//! Scale check: many workspaces and projects loaded through the real command path, then the list
//! endpoints' latency at page 1 against a deep page (keyset pagination should keep them flat).
//! Run through `scripts/bench scale`.
//!
//! Prints one figure per line as `name value unit`. Sizes come from the environment:
//!   SCALE_WORKSPACES (10000)  SCALE_PROJECTS_PER_WORKSPACE (10)  SCALE_ORGS (1)
//!   SCALE_CONCURRENCY (12)  SCALE_REQUESTS (200 per page measured)  SCALE_PAGE (500)
//!   SCALE_ANALYZE (1: ANALYZE before measuring; 0: measure right after the load)

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use hexabase::server::HttpServer;
use hexabase_command::organization::OrganizationCommand;
use hexabase_command::values::{DisplayName, DnsLabel};
use hexabase_command::workspace::WorkspaceCommand;
use hexabase_command::{CommandMetadata, GroupId, OrganizationId, ProjectId, UserId, WorkspaceId};
use hexabase_it::figures::{figure, percentile};
use hexabase_it::{services, TestApp, TestAppOptions};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    workspaces: usize,
    projects_per_workspace: usize,
    orgs: usize,
    concurrency: usize,
    requests: usize,
    page: usize,
}

fn args() -> Args {
    let get = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Args {
        workspaces: get("SCALE_WORKSPACES", 10_000),
        projects_per_workspace: get("SCALE_PROJECTS_PER_WORKSPACE", 10),
        orgs: get("SCALE_ORGS", 1).max(1),
        concurrency: get("SCALE_CONCURRENCY", 12).max(1),
        requests: get("SCALE_REQUESTS", 200).max(1),
        page: get("SCALE_PAGE", 500).max(2),
    }
}

/// Progress on stderr, so stdout stays one figure per line.
fn progress(what: &str) {
    eprintln!("scale: {what}");
}

fn metadata(actor: &UserId) -> std::collections::HashMap<String, String> {
    CommandMetadata::for_request(actor.clone(), CommandMetadata::new_request_id()).into_map()
}

/// Attach `count` workspaces to `org` one after another (one aggregate: concurrent commands
/// would only conflict), handing each on to be requested.
async fn attach_all(
    app: Arc<TestApp>,
    org: OrganizationId,
    actor: UserId,
    count: usize,
    mut out: mpsc::Sender<(OrganizationId, WorkspaceId)>,
) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let ws = WorkspaceId::generate();
        let attach = OrganizationCommand::AttachWorkspace {
            workspace_id: ws.clone(),
            actor: actor.clone(),
        };
        let t = Instant::now();
        app.state
            .organizations
            .execute_with_metadata(org.as_str(), attach, metadata(&actor))
            .await
            .expect("attach a workspace");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        if latencies.len() % 1000 == 0 {
            progress(&format!(
                "{org}: {} workspaces attached, the last in {:.1} ms",
                latencies.len(),
                latencies[latencies.len() - 1]
            ));
        }
        out.send((org.clone(), ws)).await.expect("requester alive");
    }
    latencies
}

async fn request_workspace(app: &TestApp, org: OrganizationId, ws: WorkspaceId, actor: &UserId) {
    let request = WorkspaceCommand::RequestWorkspace {
        id: ws.clone(),
        org_id: org,
        name: DisplayName::parse("name", &format!("Scale {ws}")).expect("name"),
        plan: "enterprise".into(),
        members_group: GroupId::generate(),
        admins_group: GroupId::generate(),
        actor: actor.clone(),
    };
    app.state
        .workspaces
        .execute_with_metadata(ws.as_str(), request, metadata(actor))
        .await
        .expect("request a workspace");
}

/// The workspace's projects, one after another (one aggregate), as `POST .../projects` does.
async fn create_projects(app: &TestApp, ws: &WorkspaceId, count: usize, actor: &UserId) {
    for n in 0..count {
        let id = ProjectId::generate();
        sqlx::query("INSERT INTO project_directory (project_id, ws_id) VALUES ($1, $2)")
            .bind(id.as_str())
            .bind(ws.as_str())
            .execute(&app.pool)
            .await
            .expect("register the project");
        let command = WorkspaceCommand::CreateProject {
            id,
            name: DnsLabel::parse("name", &format!("p-{n}")).expect("label"),
            parent: None,
            max_projects: 200,
        };
        app.state
            .workspaces
            .execute_with_metadata(ws.as_str(), command, metadata(actor))
            .await
            .expect("create a project");
    }
}

/// A database of the scale check's own: `scripts/test` drops every `hxb_test_*` database when
/// it starts, which a run this long would not survive on a shared machine. Dropped at the end.
struct ScaleDatabase {
    name: String,
    url: String,
}

impl ScaleDatabase {
    async fn admin() -> sqlx::PgConnection {
        services::admin_url()
            .parse::<PgConnectOptions>()
            .expect("HEXABASE_TEST_DATABASE_URL is not a Postgres URL")
            .disable_statement_logging()
            .connect()
            .await
            .expect("connect to PostgreSQL (start it with scripts/services)")
    }

    async fn create() -> Self {
        let name = format!("hxb_scale_{}", Uuid::new_v4().simple());
        // Identifiers cannot be bound; this one is generated above from a UUID.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut Self::admin().await)
            .await
            .expect("create the scale database");
        let admin = services::admin_url();
        let url = format!("{}{name}", &admin[..=admin.rfind('/').expect("a path")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect to the scale database");
        hexabase::app::migrate(&pool)
            .await
            .expect("migrations apply");
        pool.close().await;
        Self { name, url }
    }

    async fn drop(self) {
        let dropped = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut Self::admin().await)
        .await;
        if let Err(e) = dropped {
            progress(&format!("cannot drop database {}: {e}", self.name));
        }
    }
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let reply = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    let status = reply.status();
    let text = reply.text().await.expect("body");
    assert!(status.is_success(), "GET {path}: {status} {text}");
    serde_json::from_str(&text).expect("json body")
}

/// Follow `next_cursor` from page 1 to page `page`; returns the cursor that opens it (None for
/// page 1) and its number. A list shorter than that gives its last full page instead (the last
/// page may hold a few rows only).
async fn cursor_of_page(
    app: &TestApp,
    token: &str,
    path: &str,
    page: usize,
) -> (Option<String>, usize) {
    let mut cursors: Vec<Option<String>> = vec![None];
    while cursors.len() < page {
        let current = cursors.last().expect("page 1").clone();
        let body = get_json(app, token, &with_cursor(path, current.as_deref())).await;
        match body["next_cursor"].as_str() {
            Some(next) => cursors.push(Some(next.to_owned())),
            None => {
                if cursors.len() > 2 {
                    cursors.pop();
                }
                break;
            }
        }
    }
    let at = cursors.len();
    (cursors.pop().expect("page 1"), at)
}

fn with_cursor(path: &str, cursor: Option<&str>) -> String {
    match cursor {
        Some(c) => format!("{path}&cursor={c}"),
        None => path.to_owned(),
    }
}

/// Time `requests` GETs of each path, alternating so that background noise hits both alike;
/// returns the sorted latencies (ms) of each.
async fn measure(app: &TestApp, token: &str, paths: &[String], requests: usize) -> Vec<Vec<f64>> {
    for path in paths {
        for _ in 0..10 {
            get_json(app, token, path).await;
        }
    }
    let mut all = vec![Vec::with_capacity(requests); paths.len()];
    for _ in 0..requests {
        for (path, latencies) in paths.iter().zip(all.iter_mut()) {
            let t = Instant::now();
            let body = get_json(app, token, path).await;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(
                body["items"].as_array().is_some_and(|i| !i.is_empty()),
                "GET {path} returned no items"
            );
        }
    }
    for latencies in &mut all {
        latencies.sort_by(f64::total_cmp);
    }
    all
}

fn report_pair(name: &str, deep_page: usize, latencies: &[Vec<f64>]) {
    let (first, deep) = (&latencies[0], &latencies[1]);
    figure(&format!("{name}_page1_p50"), percentile(first, 0.50), "ms");
    figure(&format!("{name}_page1_p99"), percentile(first, 0.99), "ms");
    figure(
        &format!("{name}_page{deep_page}_p50"),
        percentile(deep, 0.50),
        "ms",
    );
    figure(
        &format!("{name}_page{deep_page}_p99"),
        percentile(deep, 0.99),
        "ms",
    );
    figure(
        &format!("{name}_page{deep_page}_to_page1_p99"),
        percentile(deep, 0.99) / percentile(first, 0.99),
        "ratio",
    );
}

/// Wait cheaply (a poll every second) until the outbox is drained and the projections have been
/// quiet for two seconds, before the exact (and, at this size, heavy) `caught_up` check.
async fn settle(app: &TestApp) {
    loop {
        let busy: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox_pending) \
                 OR EXISTS (SELECT 1 FROM projection_offsets \
                            WHERE applied_at > now() - interval '2 seconds')",
        )
        .fetch_one(&app.pool)
        .await
        .expect("read the pipeline's progress");
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count(app: &TestApp, sql: &str) -> f64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&app.pool)
        .await
        .expect("count") as f64
}

#[tokio::main]
async fn main() {
    let args = args();
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let options = TestAppOptions {
        max_connections: 2 * args.concurrency as u32,
        ..TestAppOptions::default()
    };
    let database = ScaleDatabase::create().await;
    progress(&format!("database {}", database.name));
    // One client on one address makes every request: measure the reads, not the limiter.
    let url = database.url.clone();
    let app = Arc::new(
        TestApp::spawn_on(server, options, move |settings| {
            settings.rate_limit.api_per_window = 0;
            settings.database.url = SecretString::from(url);
        })
        .await,
    );
    let (admin, token) = app.user();
    let mut orgs = Vec::new();
    for n in 0..args.orgs {
        let (id, _) = app.create_org(&token, &format!("Scale {n}")).await;
        orgs.push(OrganizationId::parse(&id).expect("organization id"));
    }

    // Workspaces: each organization attaches its share in order; the requests run alongside.
    progress(&format!(
        "loading {} workspaces in {} organization(s)",
        args.workspaces, args.orgs
    ));
    let started = Instant::now();
    let (tx, rx) = mpsc::channel(4 * args.concurrency);
    let mut attachers = Vec::new();
    for (n, org) in orgs.iter().enumerate() {
        let share = args.workspaces / args.orgs + usize::from(n < args.workspaces % args.orgs);
        attachers.push(tokio::spawn(attach_all(
            app.clone(),
            org.clone(),
            admin.clone(),
            share,
            tx.clone(),
        )));
    }
    drop(tx);
    let workspaces: Vec<WorkspaceId> = rx
        .map(|(org, ws)| {
            let (app, admin) = (app.clone(), admin.clone());
            async move {
                request_workspace(&app, org, ws.clone(), &admin).await;
                ws
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let mut attach_latencies = Vec::new();
    for attacher in attachers {
        attach_latencies.extend(attacher.await.expect("attacher"));
    }
    let workspace_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "{} workspaces in {workspace_seconds:.1} s",
        workspaces.len()
    ));

    // Projects: one task per workspace at a time, `concurrency` workspaces at once.
    let started = Instant::now();
    let per = args.projects_per_workspace;
    futures::stream::iter(workspaces.iter().cloned())
        .map(|ws| {
            let (app, admin) = (app.clone(), admin.clone());
            async move { create_projects(&app, &ws, per, &admin).await }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<()>>()
        .await;
    let project_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "{} projects in {project_seconds:.1} s",
        workspaces.len() * per
    ));

    let started = Instant::now();
    settle(&app).await;
    app.caught_up_within(Duration::from_secs(1800)).await;
    let catch_up_seconds = started.elapsed().as_secs_f64();
    progress(&format!("projections caught up in {catch_up_seconds:.1} s"));

    let org = &orgs[0];
    figure("organizations_loaded", orgs.len() as f64, "count");
    figure(
        "workspaces_loaded",
        count(&app, "SELECT count(*) FROM rm_workspaces").await,
        "count",
    );
    figure(
        "projects_loaded",
        count(&app, "SELECT count(*) FROM project_directory").await,
        "count",
    );
    figure(
        "events_loaded",
        count(&app, "SELECT count(*) FROM events").await,
        "count",
    );
    figure(
        "load_workspaces_per_s",
        workspaces.len() as f64 / workspace_seconds,
        "ws/s",
    );
    attach_latencies.sort_by(f64::total_cmp);
    figure(
        "attach_workspace_p50",
        percentile(&attach_latencies, 0.50),
        "ms",
    );
    figure(
        "attach_workspace_last_1pct_p50",
        {
            let tail = attach_latencies.len() / 100;
            let mut last: Vec<f64> =
                attach_latencies[attach_latencies.len() - tail.max(1)..].to_vec();
            last.sort_by(f64::total_cmp);
            percentile(&last, 0.50)
        },
        "ms",
    );
    figure(
        "load_projects_per_s",
        (workspaces.len() * per) as f64 / project_seconds,
        "projects/s",
    );
    figure("catch_up_after_load", catch_up_seconds, "s");

    // In service, autovacuum analyzes tables this much larger within a minute or so; right after
    // the load the planner may still see them as nearly empty and read every row of the
    // organization to sort it (SCALE_ANALYZE=0 measures that state).
    let analyze = std::env::var("SCALE_ANALYZE").map_or(true, |v| v != "0");
    if analyze {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&app.pool)
        .await
        .expect("list the tables");
        sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
            .execute(&app.pool)
            .await
            .expect("analyze");
    }
    figure("analyzed", f64::from(u8::from(analyze)), "bool");

    // Workspaces of the (first) organization, 20 a page.
    progress("measuring the workspaces list");
    let path = format!("/api/v1/organizations/{org}/workspaces?limit=20");
    let (cursor, deep) = cursor_of_page(&app, &token, &path, args.page).await;
    let paths = [path.clone(), with_cursor(&path, cursor.as_deref())];
    let latencies = measure(&app, &token, &paths, args.requests).await;
    report_pair("workspaces_list", deep, &latencies);

    // The organization's audit history, 100 events a page (a position cursor).
    progress("measuring the events list");
    let path = format!("/api/v1/organizations/{org}/events?limit=100");
    let (cursor, deep) = cursor_of_page(&app, &token, &path, args.page).await;
    let paths = [path.clone(), with_cursor(&path, cursor.as_deref())];
    let latencies = measure(&app, &token, &paths, args.requests).await;
    report_pair("events_list", deep, &latencies);

    // One workspace's projects, first page, at this data size.
    if per > 0 {
        progress("measuring the projects list");
        let ws = &workspaces[workspaces.len() / 2];
        let paths = [format!("/api/v1/workspaces/{ws}/projects?limit=20")];
        let latencies = measure(&app, &token, &paths, args.requests).await;
        figure("projects_list_p50", percentile(&latencies[0], 0.50), "ms");
        figure("projects_list_p99", percentile(&latencies[0], 0.99), "ms");
    }

    // Stop the app (and its JetStream stream), then give the disk back.
    drop(app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    database.drop().await;
}
