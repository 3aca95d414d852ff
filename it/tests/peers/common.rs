//! What the tests against a real API server share: the control plane over HTTPS as the OIDC
//! issuer, RBAC bindings, the `hexabase` binary kubectl runs as its credential plugin.

use std::time::Duration;

use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase_command::WorkspaceId;
use hexabase_identity::issuer::authentication_configuration;
use hexabase_it::peers::pki::Ca;
use hexabase_it::peers::KubeCluster;
use hexabase_it::{TestApp, TestAppOptions};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use serde_json::json;

/// The control plane over HTTPS (its issuer URL), with a client trusting its CA, whose
/// workspaces get no cluster of the control plane's making (its driver's
/// program is missing, so provisioning fails): for tests where a KubeCluster of their own
/// stands in for the workspace's cluster.
pub async fn https_app_without_clusters() -> (TestApp, String) {
    https_app_configured(|settings| {
        settings.provisioning.local.kube_apiserver = Some("/nonexistent/kube-apiserver".into());
    })
    .await
}

/// The control plane over HTTPS (its issuer URL, whose CA the workspaces' API servers trust),
/// with a client trusting its CA; `configure` adjusts the settings last.
pub async fn https_app_configured(configure: impl FnOnce(&mut Settings)) -> (TestApp, String) {
    https_app_with_options(TestAppOptions::default(), configure).await
}

/// `https_app_configured` with `options` (e.g. no worker: the test runs what it needs).
pub async fn https_app_with_options(
    options: TestAppOptions,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, String) {
    hexabase_it::init_crypto();
    let ca = Ca::new("hexabase-test-control-plane-ca");
    let serving = ca.server(&[]);
    let dir = std::env::temp_dir().join(format!("hxb-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).unwrap();
    std::fs::write(&key, &serving.key_pem).unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://127.0.0.1:{}", server.addr.port());
    let server = server.with_tls(hexabase::tls::server_config(&cert, &key).unwrap());
    let public = issuer.clone();
    let mut app = TestApp::spawn_on(server, options, move |settings| {
        settings.http.public_url = public;
        // The workspaces' API servers trust the control plane's test CA as issuer.
        settings.provisioning.issuer_ca_file = Some(ca_file);
        configure(settings);
    })
    .await;
    app.base = issuer;
    app.client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (app, ca.cert_pem)
}

pub async fn bind(cluster: &KubeCluster, name: &str, group: &str, cluster_role: &str) {
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(cluster.client().await)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// A KubeCluster standing in for workspace `ws`'s vCluster: its API server trusts the control
/// plane `app` (CA `ca_pem`) as issuer for `ws`, `hxb:WSAdmins` are cluster admins and
/// `hxb:WorkspaceMembers` may read namespaces.
pub async fn trusting_cluster(app: &TestApp, ws: &str, ca_pem: &str) -> KubeCluster {
    let cluster = KubeCluster::start().await;
    bind(&cluster, "hxb-wsadmins", "hxb:WSAdmins", "cluster-admin").await;
    // (`view` is an aggregated ClusterRole, filled in by the controller-manager, which this
    // cluster does not run; a plain ClusterRole stands in for it.)
    let reader: ClusterRole = serde_json::from_value(json!({
        "metadata": { "name": "namespace-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"] }],
    }))
    .unwrap();
    Api::<ClusterRole>::all(cluster.client().await)
        .create(&PostParams::default(), &reader)
        .await
        .unwrap();
    bind(
        &cluster,
        "hxb-members",
        "hxb:WorkspaceMembers",
        "namespace-reader",
    )
    .await;
    let ws = WorkspaceId::parse(ws).unwrap();
    cluster
        .restart_with_authentication_config(&authentication_configuration(
            &app.base,
            &ws,
            Some(ca_pem),
        ))
        .await;
    cluster
}

pub fn namespace(name: &str) -> Namespace {
    serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap()
}

pub use hexabase_it::binary::hexabase_binary;

/// The pids of the live processes one of whose arguments satisfies `matches` (what really
/// runs on the machine, whoever started it).
pub fn pids_with_argument(matches: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|arg| std::str::from_utf8(arg).is_ok_and(&matches))
                .then_some(pid)
        })
        .collect()
}
