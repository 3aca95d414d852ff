//! The `vcluster` driver against a real host: kube-apiserver with controller-manager, scheduler
//! and KWOK nodes, `helm` installing the real vCluster chart (`it/data/vcluster-chart-v0.35.3`)
//! with the values the driver generates. KWOK runs no container, so the vCluster itself never
//! starts and never writes its kubeconfig Secret: what is checked is everything on the host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hexabase_command::{OrganizationId, WorkspaceId};
use hexabase_identity::issuer::authentication_configuration;
use hexabase_it::peers::pki::Ca;
use hexabase_it::peers::{binary, test_quota, KubeCluster, KubeClusterOptions};
use hexabase_sagas::driver::vcluster::values::{Placement, NODE_POOL_LABEL};
use hexabase_sagas::driver::vcluster::{VclusterDriver, VclusterSettings};
use hexabase_sagas::driver::{ClusterDriver, ClusterSpec, DriverError};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, Node, PersistentVolume, Pod, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const READY: Duration = Duration::from_secs(30);

pub fn chart_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/vcluster-chart-v0.35.3"
    ))
}

/// The driver's settings for `host`: the chart from the shared copy, the host's admin
/// kubeconfig, the `helm` that `scripts/peers` built.
pub fn settings(host: &KubeCluster) -> VclusterSettings {
    VclusterSettings {
        helm: Some(binary("helm")),
        kubeconfig: Some(host.kubeconfig().to_owned()),
        chart: chart_dir().display().to_string(),
        repository: None,
        version: "0.35.3".into(),
        image_registry: "ghcr.io".into(),
        image_repository: "loft-sh/vcluster-oss".into(),
        image_tag: "0.35.3".into(),
        namespace_prefix: "hxb-".into(),
        control_plane_server: "https://{release}.{namespace}.svc:443".into(),
        ingress_domain: None,
        storage_class: None,
        delete_timeout_secs: 120,
        free_pool: "free".into(),
    }
}

pub fn spec(workspace: &WorkspaceId, dedicated: bool) -> ClusterSpec {
    let ca = Ca::new("hexabase-test-issuer-ca");
    ClusterSpec {
        workspace: workspace.clone(),
        organization: OrganizationId::generate(),
        authentication: authentication_configuration(
            "https://hexabase.example",
            workspace,
            Some(&ca.cert_pem),
        ),
        quota: test_quota(),
        dedicated,
    }
}

/// A volume for the vCluster's data claim (`data-<release>-0`): the host has no provisioner.
pub async fn provide_volume(host: &kube::Client, at: &Placement) {
    Api::<PersistentVolume>::all(host.clone())
        .create(&PostParams::default(), &volume(at))
        .await
        .unwrap();
}

fn volume(at: &Placement) -> PersistentVolume {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": { "name": format!("pv-{}", at.release) },
        "spec": {
            "capacity": { "storage": "5Gi" },
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": { "path": format!("/tmp/pv-{}", at.release) },
            "claimRef": { "namespace": at.namespace, "name": format!("data-{}-0", at.release) },
        },
    }))
    .unwrap()
}

async fn revision(settings: &VclusterSettings, at: &Placement) -> u64 {
    let out = std::process::Command::new(settings.helm.as_ref().unwrap())
        .args([
            "status",
            &at.release,
            "--namespace",
            &at.namespace,
            "--output",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(settings.kubeconfig.as_ref().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["version"].as_u64().unwrap()
}

/// The namespace's pods and claims, for failure messages.
async fn describe(host: &KubeCluster, namespace: &str) -> String {
    let client = host.client().await;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let claims =
        Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(client, namespace)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
    let mut out = String::new();
    for pod in pods {
        out.push_str(&format!(
            "pod {:?}: {}\n",
            pod.metadata.name,
            serde_json::to_string(&pod.status).unwrap()
        ));
    }
    for claim in claims {
        out.push_str(&format!(
            "claim {:?}: {}\n",
            claim.metadata.name,
            serde_json::to_string(&claim.status).unwrap()
        ));
    }
    format!("{out}{}", host.diagnostics())
}

fn hard(quota: &ResourceQuota) -> BTreeMap<String, String> {
    quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_of_the_real_chart_holds_what_the_plan_says_and_deletion_leaves_nothing() {
    let host = KubeCluster::start_with(KubeClusterOptions { nodes: 2 }).await;
    let client = host.client().await;
    let settings = settings(&host);
    let driver = VclusterDriver::new(settings.clone()).await.unwrap();
    let ws = WorkspaceId::generate();
    let mut spec = spec(&ws, false);
    let at = driver.placement(&ws);
    provide_volume(&client, &at).await;

    driver.create(&spec).await.unwrap();
    // Again: nothing changes, no new revision.
    driver.create(&spec).await.unwrap();
    assert_eq!(revision(&settings, &at).await, 1);

    // The host namespace, labelled with the organization and the workspace.
    let ns = Api::<Namespace>::all(client.clone())
        .get(&at.namespace)
        .await
        .unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["hexabase.ai/workspace"], ws.as_str());
    assert_eq!(
        labels["hexabase.ai/organization"],
        spec.organization.as_str()
    );

    // What the chart creates, in the namespace.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &at.namespace);
    let set = sets.get(&at.release).await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &at.namespace);
    for name in [at.release.clone(), format!("{}-headless", at.release)] {
        services
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("Service {name}: {e}"));
    }
    let pod = set.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "hexabase-authentication")
        .expect("the authentication volume");
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("hexabase-authentication")
    );
    let mounted = pod.containers.iter().any(|c| {
        c.volume_mounts.iter().flatten().any(|m| {
            m.name == "hexabase-authentication" && m.mount_path == "/etc/hexabase/authentication"
        })
    });
    assert!(
        mounted,
        "the authentication configuration is mounted in the control plane's pod"
    );

    // The Secret mounted holds the workspace's AuthenticationConfiguration.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &at.namespace);
    let authn = secrets.get("hexabase-authentication").await.unwrap();
    let authn: serde_json::Value =
        serde_json::from_slice(&authn.data.unwrap()["authentication-config.yaml"].0).unwrap();
    assert_eq!(authn, spec.authentication);

    // The vCluster starts its API server from the chart's rendering of the values.
    let config = secrets.get(&at.config_secret()).await.unwrap();
    let config: serde_json::Value =
        serde_yaml::from_slice(&config.data.unwrap()["config.yaml"].0).unwrap();
    let args = &config["controlPlane"]["distro"]["k8s"]["apiServer"]["extraArgs"];
    assert_eq!(
        args,
        &json!(["--authentication-config=/etc/hexabase/authentication/authentication-config.yaml"])
    );
    assert_eq!(
        config["controlPlane"]["statefulSet"]["image"]["repository"],
        "loft-sh/vcluster-oss"
    );

    // Quota and limits exactly as the plan says.
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &at.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(quotas.items.len(), 1);
    let expected = |cpu: &str, memory: &str, pods: &str| -> BTreeMap<String, String> {
        [
            ("count/persistentvolumeclaims", "10"),
            ("count/pods", pods),
            ("count/services", "20"),
            ("limits.cpu", cpu),
            ("limits.memory", memory),
            ("requests.cpu", cpu),
            ("requests.memory", memory),
            ("requests.storage", "50Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    };
    assert_eq!(hard(&quotas.items[0]), expected("4", "8Gi", "50"));
    let limits = Api::<LimitRange>::namespaced(client.clone(), &at.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(limits.items.len(), 1);
    let limit = &limits.items[0].spec.as_ref().unwrap().limits[0];
    let default: BTreeMap<_, _> = limit
        .default
        .clone()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    assert_eq!(
        default,
        BTreeMap::from([
            ("cpu".into(), "500m".into()),
            ("memory".into(), "512Mi".into())
        ])
    );

    // The control plane's pod runs (on a KWOK node): the StatefulSet is ready.
    if let Err(e) = driver.wait_ready(&ws, READY).await {
        panic!("{e}\n{}", describe(&host, &at.namespace).await);
    }
    // Without a running vCluster there is no kubeconfig to read an endpoint from; the driver
    // says so and a saga step would retry.
    assert!(
        matches!(driver.endpoint(&ws).await, Err(DriverError::Transient(m)) if m.contains("vc-"))
    );

    // Suspended as `vcluster pause` does: annotated, scaled to 0, synced workloads deleted;
    // the data claim and the Service (the endpoint) stay.
    let synced: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-x-default-x-vcluster",
            "labels": { "vcluster.loft.sh/managed-by": at.release },
        },
        "spec": { "containers": [{ "name": "web", "image": "nginx",
            "resources": { "requests": { "cpu": "100m", "memory": "64Mi" },
                           "limits": { "cpu": "100m", "memory": "64Mi" } } }] },
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &at.namespace);
    pods.create(&PostParams::default(), &synced).await.unwrap();
    let service = services.get(&at.release).await.unwrap();
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), &at.namespace);
    let claim_name = format!("data-{}-0", at.release);
    let claim = claims.get(&claim_name).await.unwrap();
    driver.suspend(&ws).await.unwrap();
    driver.suspend(&ws).await.unwrap();
    let set = sets.get(&at.release).await.unwrap();
    let annotations = set.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["loft.sh/paused"], "true");
    assert_eq!(annotations["loft.sh/paused-replicas"], "1");
    assert_eq!(set.spec.unwrap().replicas, Some(0));
    let deadline = std::time::Instant::now() + READY;
    while !pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the pods are not gone"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(driver
        .wait_ready(&ws, Duration::from_secs(2))
        .await
        .is_err());
    // Resumed: the replicas it had, the annotations gone, the same data and endpoint.
    driver.resume(&ws).await.unwrap();
    driver.resume(&ws).await.unwrap();
    let set = sets.get(&at.release).await.unwrap();
    assert_eq!(set.spec.unwrap().replicas, Some(1));
    assert!(!set
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("loft.sh/paused"));
    if let Err(e) = driver.wait_ready(&ws, READY).await {
        panic!("{e}\n{}", describe(&host, &at.namespace).await);
    }
    assert_eq!(
        claims.get(&claim_name).await.unwrap().metadata.uid,
        claim.metadata.uid
    );
    let again = services.get(&at.release).await.unwrap();
    assert_eq!(
        again.spec.unwrap().cluster_ip,
        service.spec.unwrap().cluster_ip
    );

    // A plan change upgrades the release, and the host's quota follows.
    spec.quota.cpu = "8".into();
    spec.quota.memory = "16Gi".into();
    spec.quota.pods = 100;
    driver.create(&spec).await.unwrap();
    assert_eq!(revision(&settings, &at).await, 2);
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &at.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(hard(&quotas.items[0]), expected("8", "16Gi", "100"));

    // Deletion: the release, its cluster-wide objects and the namespace are gone.
    driver.delete(&ws).await.unwrap();
    assert!(Api::<Namespace>::all(client.clone())
        .get_opt(&at.namespace)
        .await
        .unwrap()
        .is_none());
    let cluster_roles = Api::<ClusterRole>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        !cluster_roles.items.iter().any(|r| r
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .contains(&at.release)),
        "a cluster role of the release is left"
    );
    // Deleting what is gone succeeds.
    driver.delete(&ws).await.unwrap();
    assert!(matches!(
        driver.wait_ready(&ws, READY).await,
        Err(DriverError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_workspaces_control_plane_runs_on_its_pool() {
    let host = KubeCluster::start_with(KubeClusterOptions { nodes: 3 }).await;
    let client = host.client().await;
    let driver = VclusterDriver::new(settings(&host)).await.unwrap();
    let ws = WorkspaceId::generate();
    let at = driver.placement(&ws);
    provide_volume(&client, &at).await;
    // The pool of the workspace: one node, labelled and tainted as the node saga does.
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = json!({
        "metadata": { "labels": { NODE_POOL_LABEL: ws.as_str() } },
        "spec": { "taints": [{ "key": "dedicated", "value": ws.as_str(), "effect": "NoSchedule" }] },
    });
    nodes
        .patch(
            "kwok-node-2",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();

    driver.create(&spec(&ws, true)).await.unwrap();
    if let Err(e) = driver.wait_ready(&ws, READY).await {
        panic!("{e}\n{}", describe(&host, &at.namespace).await);
    }
    let pod = Api::<Pod>::namespaced(client.clone(), &at.namespace)
        .get(&format!("{}-0", at.release))
        .await
        .unwrap();
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("kwok-node-2"));

    let config = Api::<Secret>::namespaced(client.clone(), &at.namespace)
        .get(&at.config_secret())
        .await
        .unwrap();
    let config: serde_json::Value =
        serde_yaml::from_slice(&config.data.unwrap()["config.yaml"].0).unwrap();
    assert_eq!(
        config["sync"]["fromHost"]["nodes"]["selector"]["labels"][NODE_POOL_LABEL],
        ws.as_str()
    );
    assert_eq!(
        config["sync"]["toHost"]["pods"]["enforceTolerations"],
        json!([format!("dedicated={ws}:NoSchedule")])
    );
    driver.delete(&ws).await.unwrap();
}

/// What a vCluster's container does once it runs, which KWOK cannot: write the kubeconfig
/// Secret `vc-<release>`. Here it names `inside`, a real kube-apiserver standing for the
/// vCluster's own. Until `stop`, every workspace namespace on `host` whose StatefulSet exists
/// gets it (and a volume for its data claim).
fn stand_in_for_running_vclusters(
    host: kube::Client,
    inside: &KubeCluster,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use base64::Engine;
    let b64 = |name: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(inside.dir().join(name)).unwrap())
    };
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "vcluster", "cluster": {
            "server": inside.server_url(),
            "certificate-authority-data": b64("ca.crt"),
        }}],
        "users": [{ "name": "admin", "user": {
            "client-certificate-data": b64("admin.crt"),
            "client-key-data": b64("admin.key"),
        }}],
        "contexts": [{ "name": "vcluster", "context": { "cluster": "vcluster", "user": "admin" } }],
        "current-context": "vcluster",
    })
    .to_string();
    let ca = inside.ca_pem.clone();
    tokio::spawn(async move {
        let namespaces: Api<Namespace> = Api::all(host.clone());
        let with_workspace = ListParams::default().labels("hexabase.ai/workspace");
        while !stop.is_cancelled() {
            for ns in namespaces
                .list(&with_workspace)
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                let name = ns.metadata.name.unwrap_or_default();
                let release =
                    ns.metadata.labels.unwrap_or_default()["hexabase.ai/workspace"].clone();
                let at = Placement {
                    release,
                    namespace: name.clone(),
                };
                let _ = Api::<PersistentVolume>::all(host.clone())
                    .create(&PostParams::default(), &volume(&at))
                    .await;
                let sets: Api<StatefulSet> = Api::namespaced(host.clone(), &name);
                if sets.get_opt(&at.release).await.ok().flatten().is_none() {
                    continue;
                }
                let secret: Secret = serde_json::from_value(json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": { "name": at.kubeconfig_secret(), "namespace": name },
                    "stringData": { "config": kubeconfig, "certificate-authority": ca },
                }))
                .unwrap();
                let _ = Api::<Secret>::namespaced(host.clone(), &name)
                    .create(&PostParams::default(), &secret)
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workspace_saga_on_the_vcluster_driver_ends_the_same_with_each_step_run_twice_and_undoes_a_failure_at_any_step(
) {
    use hexabase_sagas::engine::testing::{FailingAt, Twice};
    use hexabase_sagas::engine::Saga;
    use hexabase_sagas::workspace::{DeleteWorkspace, ProvisionWorkspace, ReconcileWorkspace};
    use reqwest::StatusCode;

    use super::provisioning::{app_without_runner, run, status};

    let (host, inside) = tokio::join!(
        KubeCluster::start_with(KubeClusterOptions { nodes: 2 }),
        KubeCluster::start()
    );
    let client = host.client().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let stand_in = stand_in_for_running_vclusters(client.clone(), &inside, stop.clone());
    let driver = std::sync::Arc::new(VclusterDriver::new(settings(&host)).await.unwrap());
    let app = app_without_runner().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let gone = |ws: &str| {
        let (client, at) = (
            client.clone(),
            driver.placement(&WorkspaceId::parse(ws).unwrap()),
        );
        async move {
            Api::<Namespace>::all(client)
                .get_opt(&at.namespace)
                .await
                .unwrap()
                .is_none()
        }
    };

    // Every step twice: one release, provisioned, reconciled and deleted the same.
    let ws = app.create_workspace(&admin, &org, "Twice").await;
    app.caught_up().await;
    run(&app, &driver, &ws, Twice(ProvisionWorkspace)).await;
    assert_eq!(status(&app, &org, &ws, &admin).await, "Ready");
    let at = driver.placement(&WorkspaceId::parse(&ws).unwrap());
    assert_eq!(revision(&settings(&host), &at).await, 1);
    let view = app
        .get(
            &format!("/api/v1/organizations/{org}/workspaces/{ws}/kubeconfig"),
            &admin,
        )
        .await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    assert!(view.text.contains(&inside.server_url()), "{}", view.text);
    let project = app
        .post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            &admin,
            &json!({ "name": "team" }),
        )
        .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    app.caught_up().await;
    run(&app, &driver, &ws, Twice(ReconcileWorkspace)).await;
    Api::<Namespace>::all(inside.client().await)
        .get("team")
        .await
        .expect("the project's namespace inside the vCluster");
    assert_eq!(
        revision(&settings(&host), &at).await,
        1,
        "an unchanged plan upgrades nothing"
    );
    let deleted = app
        .delete(
            &format!("/api/v1/organizations/{org}/workspaces/{ws}"),
            &admin,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    app.caught_up().await;
    run(&app, &driver, &ws, Twice(DeleteWorkspace)).await;
    assert_eq!(status(&app, &org, &ws, &admin).await, "Deleted");
    assert!(gone(&ws).await);

    // A failure at each step in turn: the release and the namespace are undone.
    for at in 0..ProvisionWorkspace.steps().len() {
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
        assert!(
            gone(&ws).await,
            "failing at step {at}: the host namespace is left"
        );
    }
    stop.cancel();
    stand_in.await.unwrap();
}

/// Label `nodes` of `host` as the free pool, once KWOK has made them Ready (only Ready nodes
/// are given out).
async fn free_pool(client: &kube::Client, nodes: &[&str]) {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = std::time::Instant::now() + READY;
    for node in nodes {
        loop {
            let ready = api
                .get(node)
                .await
                .ok()
                .and_then(|n| n.status?.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{node} is not Ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let patch = json!({ "metadata": { "labels": { NODE_POOL_LABEL: "free" } } });
        api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

/// The nodes in `pool`, by name, each with whether it carries the pool's taint.
async fn pool(client: &kube::Client, pool: &str) -> BTreeMap<String, bool> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{NODE_POOL_LABEL}={pool}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| {
            let tainted = n
                .spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .iter()
                .any(|t| {
                    t.key == "dedicated"
                        && t.value.as_deref() == Some(pool)
                        && t.effect == "NoSchedule"
                });
            (n.metadata.name.unwrap(), tainted)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_claiming_nodes_at_once_never_get_the_same_one() {
    use hexabase_sagas::driver::vcluster::node_pool;
    let host = KubeCluster::start_with(KubeClusterOptions { nodes: 5 }).await;
    let client = host.client().await;
    free_pool(
        &client,
        &["kwok-node-0", "kwok-node-1", "kwok-node-2", "kwok-node-3"],
    )
    .await;
    let nodes = node_pool(&settings(&host)).await.unwrap();
    assert_eq!(nodes.free().await.unwrap().len(), 4);

    let workspaces: Vec<WorkspaceId> = (0..5).map(|_| WorkspaceId::generate()).collect();
    let claims = futures::future::join_all(workspaces.iter().map(|ws| {
        let nodes = nodes.clone();
        async move { nodes.claim(ws.as_str(), "nreq-1", 1).await }
    }))
    .await;
    let mut given: Vec<String> = claims.iter().flatten().flatten().cloned().collect();
    let refused = claims.iter().filter(|c| c.is_err()).count();
    assert_eq!((given.len(), refused), (4, 1), "{claims:?}");
    given.sort();
    given.dedup();
    assert_eq!(given.len(), 4, "a node was given twice: {claims:?}");
    for ws in &workspaces {
        let mine = pool(&client, ws.as_str()).await;
        assert!(
            mine.len() <= 1 && mine.values().all(|tainted| *tainted),
            "{mine:?}"
        );
    }
    // Claiming again for the same request changes nothing.
    let (winner, _) = workspaces
        .iter()
        .zip(&claims)
        .find(|(_, c)| c.is_ok())
        .unwrap();
    let again = nodes.claim(winner.as_str(), "nreq-1", 1).await.unwrap();
    assert_eq!(pool(&client, winner.as_str()).await.len(), 1);
    // Released: back in the free pool, untainted.
    nodes
        .release(winner.as_str(), &Default::default())
        .await
        .unwrap();
    assert!(pool(&client, winner.as_str()).await.is_empty());
    assert_eq!(pool(&client, "free").await.get(&again[0]), Some(&false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedicated_nodes_are_asked_for_within_the_plan_and_the_pool_and_go_back_when_released() {
    use hexabase_sagas::engine::testing::{FailingAt, Twice};
    use hexabase_sagas::engine::Saga;
    use hexabase_sagas::workspace::{DedicateNodes, DeleteWorkspace};
    use reqwest::StatusCode;

    use super::common::https_app_with_options;
    use super::provisioning::run;

    let host = KubeCluster::start_with(KubeClusterOptions { nodes: 4 }).await;
    let client = host.client().await;
    free_pool(&client, &["kwok-node-0", "kwok-node-1", "kwok-node-2"]).await;
    let vcluster = settings(&host);
    let options = hexabase_it::TestAppOptions {
        worker: false,
        ..Default::default()
    };
    let (app, _) = https_app_with_options(options, |s| {
        s.provisioning.driver = hexabase::config::DriverKind::Vcluster;
        s.provisioning.vcluster = vcluster.clone();
    })
    .await;
    let (state, token) = (
        app.state.clone(),
        tokio_util::sync::CancellationToken::new(),
    );
    tokio::spawn(async move { hexabase::worker::run_pipeline(state, token).await });
    let driver = std::sync::Arc::new(VclusterDriver::new(vcluster.clone()).await.unwrap());
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let create = |name: &'static str, plan: &'static str| {
        let (app, admin, org) = (&app, &admin, &org);
        async move {
            let reply = app
                .post(
                    &format!("/api/v1/organizations/{org}/workspaces"),
                    admin,
                    &json!({ "name": name, "plan": plan }),
                )
                .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
            reply.body["id"].as_str().unwrap().to_owned()
        }
    };
    let (a, b, starter) = (
        create("A", "enterprise").await,
        create("B", "enterprise").await,
        create("S", "starter").await,
    );
    app.caught_up().await;
    let ask = |ws: &str, count: u32| {
        let path = format!("/api/v1/workspaces/{ws}/nodes");
        let (app, admin) = (&app, &admin);
        async move { app.post(&path, admin, &json!({ "count": count })).await }
    };
    let history = format!("/api/v1/organizations/{org}/events?aggregate_type=Workspace&limit=100");
    let requested = || async {
        app.get(&history, &admin).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == "DedicatedNodesRequested")
            .count()
    };

    // Refused, recording nothing: a plan without dedicated nodes, more than the pool has,
    // more than the plan allows, a count out of range.
    let reply = ask(&starter, 1).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert!(reply.text.contains("no dedicated nodes"), "{}", reply.text);
    let reply = ask(&a, 4).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert!(reply.text.contains("3 free"), "{}", reply.text);
    for count in [0, 101] {
        let reply = ask(&a, count).await;
        assert!(
            reply.status.is_client_error() && reply.status != StatusCode::CONFLICT,
            "{}",
            reply.text
        );
    }
    app.caught_up().await;
    assert_eq!(requested().await, 0);

    // Two workspaces asking for 2 of the 3 free nodes at once: one is answered, one refused.
    let (first, second) = tokio::join!(ask(&a, 2), ask(&b, 2));
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{} / {}",
        first.text,
        second.text
    );
    app.caught_up().await;
    assert_eq!(requested().await, 1);
    let (winner, loser) = if first.status == StatusCode::ACCEPTED {
        (&a, &b)
    } else {
        (&b, &a)
    };
    run(&app, &driver, winner, DedicateNodes).await;
    let mine = pool(&client, winner).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.values().all(|tainted| *tainted), "{mine:?}");
    app.caught_up().await;
    let listed = app
        .get(&format!("/api/v1/workspaces/{winner}/nodes"), &admin)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let names: Vec<&str> = listed.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, mine.keys().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(listed.body["requests"][0]["status"], "Assigned");

    // The other gets the last free node; nobody shares one.
    let reply = ask(loser, 1).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    app.caught_up().await;
    run(&app, &driver, loser, DedicateNodes).await;
    let theirs = pool(&client, loser).await;
    assert_eq!(theirs.len(), 1);
    assert!(theirs.keys().all(|n| !mine.contains_key(n)));
    assert!(pool(&client, "free").await.is_empty());

    // Released: back to the pool, untainted; an unknown node is not found.
    let node = mine.keys().next().unwrap().clone();
    let reply = app
        .delete(&format!("/api/v1/workspaces/{winner}/nodes/{node}"), &admin)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = app
        .delete(
            &format!("/api/v1/workspaces/{winner}/nodes/kwok-node-3"),
            &admin,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    app.caught_up().await;
    run(&app, &driver, winner, DedicateNodes).await;
    assert_eq!(
        pool(&client, "free").await,
        BTreeMap::from([(node.clone(), false)])
    );
    assert_eq!(pool(&client, winner).await.len(), 1);

    // The node saga with each step run twice, and failing at each step: afterwards (and after
    // the next run) the host holds exactly the nodes the workspace's record names.
    let recorded = || async {
        app.caught_up().await;
        let listed = app
            .get(&format!("/api/v1/workspaces/{winner}/nodes"), &admin)
            .await;
        listed.body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let on_host = || async { pool(&client, winner).await.into_keys().collect::<Vec<_>>() };
    let release_all_but_one = || async {
        for node in recorded().await.into_iter().skip(1) {
            let path = format!("/api/v1/workspaces/{winner}/nodes/{node}");
            assert_eq!(app.delete(&path, &admin).await.status, StatusCode::OK);
        }
        app.caught_up().await;
        run(&app, &driver, winner, DedicateNodes).await;
    };
    assert_eq!(ask(winner, 1).await.status, StatusCode::ACCEPTED);
    app.caught_up().await;
    run(&app, &driver, winner, Twice(DedicateNodes)).await;
    assert_eq!(recorded().await.len(), 2);
    assert_eq!(on_host().await, recorded().await);
    release_all_but_one().await;
    for at in 0..DedicateNodes.steps().len() {
        assert_eq!(
            ask(winner, 1).await.status,
            StatusCode::ACCEPTED,
            "failing at {at}"
        );
        app.caught_up().await;
        run(
            &app,
            &driver,
            winner,
            FailingAt {
                saga: DedicateNodes,
                at,
            },
        )
        .await;
        assert_eq!(on_host().await, recorded().await, "failing at {at}");
        // Failing before claiming refuses the request; after, the nodes are the workspace's.
        let listed = app
            .get(&format!("/api/v1/workspaces/{winner}/nodes"), &admin)
            .await;
        let (status, held) = if at == 0 {
            ("Failed", 1)
        } else {
            ("Assigned", 2)
        };
        assert_eq!(
            listed.body["requests"][0]["status"], status,
            "failing at {at}: {}",
            listed.text
        );
        assert_eq!(recorded().await.len(), held, "failing at {at}");
        assert_eq!(on_host().await, recorded().await, "failing at {at}");
        release_all_but_one().await;
        assert_eq!(on_host().await, recorded().await, "failing at {at}");
    }

    // Deleting the workspace gives back the rest.
    let reply = app
        .delete(
            &format!("/api/v1/organizations/{org}/workspaces/{winner}"),
            &admin,
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    app.caught_up().await;
    run(&app, &driver, winner, DeleteWorkspace).await;
    assert!(pool(&client, winner).await.is_empty());
    assert_eq!(pool(&client, "free").await.len(), 2);
}
