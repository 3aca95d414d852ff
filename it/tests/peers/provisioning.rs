//! Workspaces become real clusters with the `local` driver: a requested workspace walks its
//! provisioning steps to `Ready`, plain kubectl (with the `hexabase` credential plugin) reaches
//! its own API server, projects and role assignments made through the API become namespaces
//! and RoleBindings that the API server enforces, drift is repaired, and deletion leaves no
//! API server and no data. Then the sagas themselves: every step run twice ends the same, and a
//! failure at any step is undone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hexabase_command::WorkspaceId;
use hexabase_it::TestApp;
use hexabase_it::TestAppOptions;
use hexabase_sagas::driver::local::{etcd_prefix, LocalDriver};
use hexabase_sagas::driver::ClusterDriver;
use hexabase_sagas::engine::testing::{FailingAt, Twice};
use hexabase_sagas::engine::{Aggregate, Outcome, Registry, Saga};
use hexabase_sagas::workspace::{self, Env, ProvisionWorkspace, ReconcileWorkspace};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::common::{hexabase_binary, https_app_configured, https_app_with_options};

/// Until `status` is reached (or `Failed`, which stops the wait); returns the last view and
/// the provisioning steps seen on the way.
pub async fn wait_for_status(
    app: &TestApp,
    link: &str,
    token: &str,
    status: &str,
) -> (Value, Vec<String>) {
    let mut steps: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let view = app.get(link, token).await;
        if let Some(step) = view.body["progress"]["step"].as_str() {
            if steps.last().map(String::as_str) != Some(step) {
                steps.push(step.to_owned());
            }
        }
        let now = view.body["status"].as_str().unwrap_or_default();
        if now == status || (now == "Failed" && status != "Failed") {
            return (view.body, steps);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {now}, not {status}: {}",
            view.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A HOME for kubectl with `kubeconfig` and the control plane's CA.
pub fn home(kubeconfig: &str, ca_pem: &str) -> PathBuf {
    let home = std::env::temp_dir().join(format!("hxb-ws-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("kubeconfig"), kubeconfig).unwrap();
    std::fs::write(home.join("ca.crt"), ca_pem).unwrap();
    home
}

/// kubectl with that HOME, the credential plugin on PATH and `token` (a control-plane access
/// token) for it to get workspace tokens with.
pub async fn kubectl(home: &Path, token: &str, args: &[&str]) -> (bool, String) {
    let hexabase = hexabase_binary();
    let path = format!(
        "{}:{}",
        hexabase.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new(hexabase_it::peers::binary("kubectl"))
        .args(args)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("HOME", home)
        .env("PATH", path)
        .env("HEXABASE_TOKEN", token)
        .env("HEXABASE_CA_FILE", home.join("ca.crt"))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `kubectl auth can-i` as the holder of `token`: the answer, `yes` or `no`.
async fn can_i(home: &Path, token: &str, verb: &str, resource: &str, namespace: &str) -> String {
    let (_, out) = kubectl(
        home,
        token,
        &["auth", "can-i", verb, resource, "-n", namespace],
    )
    .await;
    out.lines().next().unwrap_or_default().trim().to_owned()
}

async fn eventually_can_i(
    home: &Path,
    token: &str,
    (verb, resource, namespace): (&str, &str, &str),
    want: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = can_i(home, token, verb, resource, namespace).await;
        if answer == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "can-i {verb} {resource} -n {namespace}: {answer}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn port_answers(server: &str) -> bool {
    let port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A driver of the app's clusters (for looking at what it left: keys, directories).
fn observer(app: &TestApp) -> LocalDriver {
    LocalDriver::new(app.settings.provisioning.local.clone()).unwrap()
}

#[tokio::test]
async fn a_workspace_is_provisioned_reached_with_kubectl_kept_in_step_and_deleted() {
    let (app, ca_pem) = https_app_configured(|settings| {
        settings.sagas.maintenance_secs = 2;
    })
    .await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");

    let (view, steps) = wait_for_status(&app, &link, &admin, "Ready").await;
    assert_eq!(view["status"], "Ready", "{view}");
    assert!(
        !steps.is_empty(),
        "the status showed the provisioning steps"
    );
    let tasks = app
        .get(&format!("/api/v1/workspaces/{ws}/tasks"), &admin)
        .await;
    let task = &tasks.body["items"][0];
    assert_eq!(task["kind"], "workspace.provision", "{}", tasks.text);
    assert_eq!(task["state"], "done");
    let detail = app
        .get(
            &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    let names: Vec<&str> = detail.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "start",
            "create-cluster",
            "endpoint",
            "namespaces",
            "quotas",
            "rbac",
            "provisioned"
        ]
    );
    assert!(detail.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["finished_at"].is_string()));

    // The kubeconfig names this workspace's own API server; kubectl as WSAdmin works there.
    let kubeconfig = app.get(&format!("{link}/kubeconfig"), &admin).await;
    assert_eq!(kubeconfig.status, StatusCode::OK, "{}", kubeconfig.text);
    let document: Value = serde_json::from_str(&kubeconfig.text).unwrap();
    let server = document["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(port_answers(&server), "{server}");
    let admin_home = home(&kubeconfig.text, &ca_pem);
    let (ok, out) = kubectl(&admin_home, &admin, &["get", "namespaces", "-o", "name"]).await;
    assert!(ok, "kubectl as WSAdmin: {out}");

    // A member of a group given `edit` in a project may edit there and in its child project,
    // nowhere else; taking the assignment back takes the permission.
    let (bob, bob_token) = app.member_of(&org, &admin, "member").await;
    let developers = app
        .post(
            &format!("/api/v1/workspaces/{ws}/groups"),
            &admin,
            &json!({ "name": "developers" }),
        )
        .await;
    let developers = developers.body["id"].as_str().unwrap().to_owned();
    app.add_to_group(&ws, &developers, &admin, bob.as_str())
        .await;
    let project = |name: &str, parent: Option<String>| {
        let body = json!({ "name": name, "parent_id": parent });
        let path = format!("/api/v1/workspaces/{ws}/projects");
        let app = &app;
        let admin = &admin;
        async move {
            app.post(&path, admin, &body).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let team = project("team", None).await;
    project("team-api", Some(team.clone())).await;
    project("other", None).await;
    let assigned = app
        .post(
            &format!("/api/v1/projects/{team}/roleassignments"),
            &admin,
            &json!({ "group_id": developers, "role": "edit" }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{}", assigned.text);
    let assignment = assigned.body["id"].as_str().unwrap().to_owned();
    let bob_home = home(&kubeconfig.text, &ca_pem);
    let edit = |ns| ("create", "deployments", ns);
    eventually_can_i(&bob_home, &bob_token, edit("team"), "yes").await;
    eventually_can_i(&bob_home, &bob_token, edit("team-api"), "yes").await;
    assert_eq!(
        can_i(&bob_home, &bob_token, "create", "deployments", "other").await,
        "no"
    );
    // Members read the whole workspace (`view`), but write nothing outside their projects.
    assert_eq!(
        can_i(&bob_home, &bob_token, "list", "pods", "other").await,
        "yes"
    );
    let (ok, out) = kubectl(
        &admin_home,
        &admin,
        &[
            "get",
            "rolebinding",
            &assignment,
            "-n",
            "team-api",
            "-o",
            "name",
        ],
    )
    .await;
    assert!(ok, "the binding propagated to the child project: {out}");
    let (ok, out) = kubectl(
        &admin_home,
        &admin,
        &["get", "resourcequota", "-n", "team", "-o", "name"],
    )
    .await;
    assert!(ok && out.contains("hexabase-plan"), "{out}");

    // Drift: a managed RoleBinding deleted by hand comes back with the maintenance pass.
    let (ok, out) = kubectl(
        &admin_home,
        &admin,
        &["delete", "rolebinding", &assignment, "-n", "team"],
    )
    .await;
    assert!(ok, "{out}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, _) = kubectl(
            &admin_home,
            &admin,
            &["get", "rolebinding", &assignment, "-n", "team"],
        )
        .await;
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the RoleBinding did not come back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let removed = app
        .delete(
            &format!("/api/v1/projects/{team}/roleassignments/{assignment}"),
            &admin,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    eventually_can_i(&bob_home, &bob_token, edit("team-api"), "no").await;
    eventually_can_i(&bob_home, &bob_token, edit("team"), "no").await;

    // Deleting the workspace leaves no API server, no data and status Deleted.
    let deleted = app.delete(&link, &admin).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    let (view, _) = wait_for_status(&app, &link, &admin, "Deleted").await;
    assert_eq!(view["status"], "Deleted", "{view}");
    assert!(!port_answers(&server), "the API server is gone");
    let prefix = etcd_prefix(&WorkspaceId::parse(&ws).unwrap());
    assert_eq!(
        observer(&app)
            .keys_under(&format!("{prefix}/"))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_step_that_keeps_failing_ends_failed_with_its_reason_and_the_cluster_undone() {
    // A quota Kubernetes refuses: the `quotas` step fails for good, after the cluster exists.
    let (app, _) = https_app_configured(|settings| {
        if let Some(plan) = settings.plans.get_mut("starter") {
            plan.quota.cpu = "lots".into();
        }
    })
    .await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Doomed").await;
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let (view, _) = wait_for_status(&app, &link, &admin, "Failed").await;
    assert_eq!(view["status"], "Failed", "{view}");
    let reason = view["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("quotas"), "{reason}");
    let tasks = app
        .get(&format!("/api/v1/workspaces/{ws}/tasks"), &admin)
        .await;
    let task = tasks.body["items"][0]["id"].as_str().unwrap().to_owned();
    let detail = app.get(&format!("/api/v1/tasks/{task}"), &admin).await;
    assert_eq!(detail.body["state"], "failed", "{}", detail.text);
    assert_eq!(detail.body["failed_step"], "quotas");
    let create = detail.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "create-cluster")
        .unwrap();
    assert!(create["undone_at"].is_string(), "{}", detail.text);
    // What the cluster held is gone: no directory, no keys; no kubeconfig to hand out.
    let ws_id = WorkspaceId::parse(&ws).unwrap();
    let observer = observer(&app);
    assert!(!observer.state_dir().join(ws.as_str()).exists());
    assert_eq!(
        observer
            .keys_under(&format!("{}/", etcd_prefix(&ws_id)))
            .await
            .unwrap(),
        0
    );
    app.caught_up().await;
    let kubeconfig = app.get(&format!("{link}/kubeconfig"), &admin).await;
    assert_eq!(
        kubeconfig.status,
        StatusCode::CONFLICT,
        "{}",
        kubeconfig.text
    );
    let history = app
        .get(
            &format!("/api/v1/organizations/{org}/events?aggregate_type=Workspace"),
            &admin,
        )
        .await;
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "WorkspaceProvisioningStarted",
        "EndpointAssigned",
        "WorkspaceStepFailed",
        "WorkspaceProvisioningFailed",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
}

/// The pipeline alone (no saga runner of the app's own): the test runs its sagas itself.
pub async fn app_without_runner() -> TestApp {
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    let (app, _) = https_app_with_options(options, |_| {}).await;
    let (state, token) = (app.state.clone(), CancellationToken::new());
    tokio::spawn(async move { hexabase::worker::run_pipeline(state, token).await });
    app
}

/// Run `saga` (registered under its kind) for `ws` until it is done or failed.
pub async fn run<D: ClusterDriver>(
    app: &TestApp,
    driver: &std::sync::Arc<D>,
    ws: &str,
    saga: impl Saga<Env>,
) {
    let registry = Registry::default().with(saga);
    let runner = hexabase::worker::saga_runner(&app.state, driver.clone(), registry).unwrap();
    let aggregate = Aggregate {
        aggregate_type: "Workspace".into(),
        aggregate_id: ws.to_owned(),
    };
    for _ in 0..200 {
        match runner.process(&aggregate).await.unwrap() {
            Outcome::Idle => return,
            Outcome::Later(delay) => tokio::time::sleep(delay).await,
            Outcome::Busy => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the saga of {ws} did not end");
}

pub async fn status(app: &TestApp, org: &str, ws: &str, admin: &str) -> String {
    app.caught_up().await;
    let view = app
        .get(
            &format!("/api/v1/organizations/{org}/workspaces/{ws}"),
            admin,
        )
        .await;
    view.body["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_workspace_saga_ends_the_same_with_each_step_run_twice_and_undoes_a_failure_at_any_step(
) {
    let app = app_without_runner().await;
    let driver = std::sync::Arc::new(observer(&app));
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;

    // Every step twice: provisioned once, one cluster, reconciled and deleted the same.
    let ws = app.create_workspace(&admin, &org, "Twice").await;
    app.caught_up().await;
    run(&app, &driver, &ws, Twice(ProvisionWorkspace)).await;
    assert_eq!(status(&app, &org, &ws, &admin).await, "Ready");
    let project = app
        .post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            &admin,
            &json!({ "name": "team" }),
        )
        .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    run(&app, &driver, &ws, Twice(ReconcileWorkspace)).await;
    let ws_id = WorkspaceId::parse(&ws).unwrap();
    let client = hexabase_sagas::driver::ClusterDriver::admin_client(driver.as_ref(), &ws_id)
        .await
        .unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    namespaces
        .get("team")
        .await
        .expect("the project's namespace");
    suspend_and_resume_sagas(&app, &driver, (&org, &ws, &admin)).await;
    let deleted = app
        .delete(
            &format!("/api/v1/organizations/{org}/workspaces/{ws}"),
            &admin,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    app.caught_up().await;
    run(&app, &driver, &ws, Twice(workspace::DeleteWorkspace)).await;
    assert_eq!(status(&app, &org, &ws, &admin).await, "Deleted");
    assert!(!driver.state_dir().join(&ws).exists());

    // A failure at each step in turn: the finished steps are undone, nothing of the cluster
    // stays, and the workspace says it failed.
    let steps = ProvisionWorkspace.steps().len();
    for at in 0..steps {
        let ws = app
            .create_workspace(&admin, &org, &format!("Fails at {at}"))
            .await;
        app.caught_up().await;
        run(
            &app,
            &driver,
            &ws,
            FailingAt {
                saga: ProvisionWorkspace,
                at,
            },
        )
        .await;
        assert_eq!(
            status(&app, &org, &ws, &admin).await,
            "Failed",
            "failing at step {at}"
        );
        let ws_id = WorkspaceId::parse(&ws).unwrap();
        assert!(
            !driver.state_dir().join(&ws).exists(),
            "failing at step {at}"
        );
        assert_eq!(
            driver
                .keys_under(&format!("{}/", etcd_prefix(&ws_id)))
                .await
                .unwrap(),
            0,
            "failing at step {at}"
        );
        let kubeconfig = app
            .get(
                &format!("/api/v1/organizations/{org}/workspaces/{ws}/kubeconfig"),
                &admin,
            )
            .await;
        assert_eq!(
            kubeconfig.status,
            StatusCode::CONFLICT,
            "failing at step {at}"
        );
    }
}

#[tokio::test]
async fn an_org_admin_suspends_a_workspace_whose_cluster_stops_and_resumes_it_with_its_data() {
    let (app, ca_pem) = https_app_configured(|_| {}).await;
    let (alice, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let (view, _) = wait_for_status(&app, &link, &admin, "Ready").await;
    assert_eq!(view["status"], "Ready", "{view}");
    let kubeconfig = app.get(&format!("{link}/kubeconfig"), &admin).await;
    let home = home(&kubeconfig.text, &ca_pem);
    let (ok, out) = kubectl(
        &home,
        &admin,
        &["create", "configmap", "kept", "--from-literal=a=b"],
    )
    .await;
    assert!(ok, "{out}");
    let server = serde_json::from_str::<Value>(&kubeconfig.text).unwrap()["clusters"][0]["cluster"]
        ["server"]
        .as_str()
        .unwrap()
        .to_owned();

    let suspended = app
        .post(
            &format!("{link}/suspend"),
            &admin,
            &json!({ "reason": "maintenance" }),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::ACCEPTED, "{}", suspended.text);
    assert_eq!(suspended.body["status"], "Suspending");
    let (view, _) = wait_for_status(&app, &link, &admin, "Suspended").await;
    assert_eq!(view["status"], "Suspended", "{view}");
    assert_eq!(view["status_reason"], "maintenance");
    assert!(
        !port_answers(&server),
        "the suspended API server still listens at {server}"
    );
    // Asking again changes nothing.
    let again = app
        .post(&format!("{link}/suspend"), &admin, &json!({}))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.body["status"], "Suspended");

    let resumed = app
        .post(&format!("{link}/resume"), &admin, &json!({}))
        .await;
    assert_eq!(resumed.status, StatusCode::ACCEPTED, "{}", resumed.text);
    assert_eq!(resumed.body["status"], "Resuming");
    let (view, _) = wait_for_status(&app, &link, &admin, "Ready").await;
    assert_eq!(view["status"], "Ready", "{view}");
    // The same endpoint, the same data.
    let after = app.get(&format!("{link}/kubeconfig"), &admin).await;
    assert_eq!(after.text, kubeconfig.text);
    let (ok, out) = kubectl(&home, &admin, &["get", "configmap", "kept", "-o", "name"]).await;
    assert!(ok && out.contains("configmap/kept"), "{out}");

    // The history says who asked, each time.
    let history = app
        .get(
            &format!("/api/v1/organizations/{org}/events?aggregate_type=Workspace&limit=100"),
            &admin,
        )
        .await;
    let events: Vec<(&str, Option<&str>)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event_type"].as_str().unwrap(), e["actor"].as_str()))
        .filter(|(t, _)| t.contains("Suspen") || t.contains("Resum"))
        .collect();
    let mut types: Vec<&str> = events.iter().map(|(t, _)| *t).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "WorkspaceResumed",
            "WorkspaceResumptionRequested",
            "WorkspaceSuspended",
            "WorkspaceSuspensionRequested"
        ]
    );
    for (event_type, actor) in &events {
        if event_type.ends_with("Requested") {
            assert_eq!(*actor, Some(alice.as_str()), "{event_type}");
        }
    }
}

/// The suspension and resumption sagas of the Ready workspace `ws` on `driver`: each step run
/// twice ends the same (suspended: the cluster does not answer; resumed: it does), and a
/// failure at any step leaves the workspace where an admin can ask again either way.
pub async fn suspend_and_resume_sagas<D: ClusterDriver>(
    app: &TestApp,
    driver: &std::sync::Arc<D>,
    (org, ws, admin): (&str, &str, &str),
) {
    use hexabase_sagas::workspace::{ResumeWorkspace, SuspendWorkspace};
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let ws_id = WorkspaceId::parse(ws).unwrap();
    let running = || async {
        driver
            .wait_ready(&ws_id, Duration::from_secs(2))
            .await
            .is_ok()
    };
    let ask = |action: &'static str| {
        let link = link.clone();
        async move {
            let reply = app
                .post(&format!("{link}/{action}"), admin, &json!({}))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::ACCEPTED,
                "{action}: {}",
                reply.text
            );
            app.caught_up().await;
        }
    };

    ask("suspend").await;
    run(app, driver, ws, Twice(SuspendWorkspace)).await;
    assert_eq!(status(app, org, ws, admin).await, "Suspended");
    assert!(!running().await, "a suspended cluster answers");
    ask("resume").await;
    run(app, driver, ws, Twice(ResumeWorkspace)).await;
    assert_eq!(status(app, org, ws, admin).await, "Ready");
    assert!(running().await, "a resumed cluster does not answer");

    for at in 0..SuspendWorkspace.steps().len() {
        ask("suspend").await;
        let saga = FailingAt {
            saga: SuspendWorkspace,
            at,
        };
        run(app, driver, ws, saga).await;
        assert_eq!(
            status(app, org, ws, admin).await,
            "Suspending",
            "failing at {at}"
        );
        ask("resume").await;
        run(app, driver, ws, ResumeWorkspace).await;
        assert_eq!(
            status(app, org, ws, admin).await,
            "Ready",
            "failing at {at}"
        );
        assert!(running().await, "failing at {at}");
    }
    for at in 0..ResumeWorkspace.steps().len() {
        ask("suspend").await;
        run(app, driver, ws, SuspendWorkspace).await;
        ask("resume").await;
        let saga = FailingAt {
            saga: ResumeWorkspace,
            at,
        };
        run(app, driver, ws, saga).await;
        assert_eq!(
            status(app, org, ws, admin).await,
            "Resuming",
            "failing at {at}"
        );
        ask("suspend").await;
        run(app, driver, ws, SuspendWorkspace).await;
        assert_eq!(
            status(app, org, ws, admin).await,
            "Suspended",
            "failing at {at}"
        );
        ask("resume").await;
        run(app, driver, ws, ResumeWorkspace).await;
        assert_eq!(
            status(app, org, ws, admin).await,
            "Ready",
            "failing at {at}"
        );
    }
}
