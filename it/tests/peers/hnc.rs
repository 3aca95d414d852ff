//! `workspace.hierarchy = "hnc"` against the real HNC manager (v1.1.0, built by
//! `scripts/peers`) running against a workspace's API server (the `local` driver's): the
//! control plane installs HNC's CRDs, puts a child project's namespace below its parent's, and
//! makes role bindings only where they were assigned; HNC propagates them to the descendants,
//! and the control plane's reconciliation leaves HNC's copies alone. (The HNC manager's
//! Deployment that the control plane installs never runs here: the local driver's clusters
//! run no workloads, so the test runs the manager beside them.)

use std::time::Duration;

use hexabase_command::WorkspaceId;
use hexabase_it::peers::binary;
use hexabase_it::peers::process::{Peer, TempDir};
use hexabase_sagas::driver::local::LocalDriver;
use hexabase_sagas::driver::ClusterDriver;
use hexabase_sagas::workspace::hnc::{manager_args, Hierarchy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use reqwest::StatusCode;
use serde_json::json;

use super::common::https_app_configured;

/// The HNC manager against the workspace's API server, as the control plane's admin.
fn run_manager(driver: &LocalDriver, ws: &WorkspaceId, server: &str, dir: &TempDir) -> Peer {
    let files = driver.state_dir().join(ws.as_str());
    let kubeconfig = dir.path().join("kubeconfig");
    let document = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "ws", "cluster": {
            "server": server, "certificate-authority": files.join("ca.crt"),
        }}],
        "users": [{ "name": "admin", "user": {
            "client-certificate": files.join("admin.crt"), "client-key": files.join("admin.key"),
        }}],
        "contexts": [{ "name": "ws", "context": { "cluster": "ws", "user": "admin" } }],
        "current-context": "ws",
    });
    std::fs::write(&kubeconfig, document.to_string()).unwrap();
    let mut command = std::process::Command::new(binary("hnc-manager"));
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(manager_args())
        .args(["--metrics-addr=0", "--health-probe-bind-address=0"]);
    Peer::spawn("hnc-manager", command, &dir.path().join("hnc-manager.log"))
}

async fn eventually<T>(
    what: &str,
    log: &std::path::Path,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after 90 s; HNC's log:\n{}",
            hexabase_it::peers::process::log_tail(log, 30)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hnc_a_child_projects_namespace_inherits_its_parents_role_bindings() {
    let (app, _) = https_app_configured(|settings| {
        settings.workspace.hierarchy = Hierarchy::Hnc;
        settings.sagas.maintenance_secs = 2;
    })
    .await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let view = app.get(&link, &admin).await;
        match view.body["status"].as_str().unwrap_or_default() {
            "Ready" => break,
            "Failed" => panic!("{}", view.text),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", view.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ws_id = WorkspaceId::parse(&ws).unwrap();
    let driver = LocalDriver::new(app.settings.provisioning.local.clone()).unwrap();
    let client = driver.admin_client(&ws_id).await.unwrap();
    // HNC is installed.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.get("hierarchyconfigurations.hnc.x-k8s.io")
        .await
        .expect("HNC's CRDs");
    let server = driver.endpoint(&ws_id).await.unwrap().server;
    let dir = TempDir::new("hxb-hnc");
    let _manager = run_manager(&driver, &ws_id, &server, &dir);
    let log = dir.path().join("hnc-manager.log");

    let developers = app
        .post(
            &format!("/api/v1/workspaces/{ws}/groups"),
            &admin,
            &json!({ "name": "developers" }),
        )
        .await;
    let developers = developers.body["id"].as_str().unwrap().to_owned();
    let project = |name: &'static str, parent: Option<String>| {
        let (app, admin, path) = (&app, &admin, format!("/api/v1/workspaces/{ws}/projects"));
        async move {
            let reply = app
                .post(&path, admin, &json!({ "name": name, "parent_id": parent }))
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body["id"].as_str().unwrap().to_owned()
        }
    };
    let team = project("team", None).await;
    project("team-api", Some(team.clone())).await;
    let assigned = app
        .post(
            &format!("/api/v1/projects/{team}/roleassignments"),
            &admin,
            &json!({ "group_id": developers, "role": "edit" }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{}", assigned.text);
    let assignment = assigned.body["id"].as_str().unwrap().to_owned();

    // The control plane says who is whose child.
    let gvk = GroupVersionKind::gvk("hnc.x-k8s.io", "v1alpha2", "HierarchyConfiguration");
    let hierarchy: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "team-api", &ApiResource::from_gvk(&gvk));
    let parent = eventually("the child's hierarchy configuration", &log, async || {
        let found = hierarchy.get_opt("hierarchy").await.ok().flatten()?;
        found.data["spec"]["parent"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(parent, "team");

    // The binding is made in the parent's namespace; HNC copies it into the child's.
    let in_team: Api<RoleBinding> = Api::namespaced(client.clone(), "team");
    let in_child: Api<RoleBinding> = Api::namespaced(client.clone(), "team-api");
    eventually("the binding in the parent", &log, async || {
        in_team.get_opt(&assignment).await.ok().flatten()
    })
    .await;
    let copy = eventually("HNC's copy in the child", &log, async || {
        in_child.get_opt(&assignment).await.ok().flatten()
    })
    .await;
    let labels = copy.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("hnc.x-k8s.io/inherited-from")
            .map(String::as_str),
        Some("team"),
        "{labels:?}"
    );
    assert_eq!(copy.subjects.unwrap()[0].name, "hxb:developers");

    // Maintenance passes reconcile the workspace meanwhile: the copy stays.
    let tasks = format!("/api/v1/workspaces/{ws}/tasks?limit=100");
    eventually("two reconciliations", &log, async || {
        let listed = app.get(&tasks, &admin).await;
        let done = listed.body["items"]
            .as_array()?
            .iter()
            .filter(|t| t["kind"] == "workspace.reconcile" && t["state"] == "done")
            .count();
        (done >= 2).then_some(())
    })
    .await;
    let copy = in_child.get_opt(&assignment).await.unwrap();
    assert!(copy.is_some(), "the control plane pruned HNC's copy");

    // Taking the assignment back: gone from the parent, and HNC removes the copy.
    let removed = app
        .delete(
            &format!("/api/v1/projects/{team}/roleassignments/{assignment}"),
            &admin,
        )
        .await;
    assert!(removed.status.is_success(), "{}", removed.text);
    eventually("the copy removed", &log, async || {
        in_child
            .get_opt(&assignment)
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}
