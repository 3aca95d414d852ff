use std::time::Duration;

use hexabase_it::peers::{KubeCluster, KubeClusterOptions};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn the_admin_lists_namespaces_with_kube_rs() {
    let cluster = KubeCluster::start().await;
    let startup = *cluster.startup.lock().unwrap();
    eprintln!("kube-apiserver ready in {:.1} s", startup.as_secs_f64());
    let namespaces: Api<Namespace> = Api::all(cluster.client().await);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for expected in ["default", "kube-system", "kube-public"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn a_statefulset_on_kwok_nodes_becomes_ready() {
    let cluster = KubeCluster::start_with(KubeClusterOptions { nodes: 2 }).await;
    let client = cluster.client().await;
    let sets: Api<StatefulSet> = Api::namespaced(client, "default");
    let set: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "serviceName": "web",
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": {
                    "containers": [{ "name": "web", "image": "registry.invalid/web:1" }],
                },
            },
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let ready = sets
            .get("web")
            .await
            .unwrap()
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready == 2 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let pods: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(cluster.client().await, "default");
            let pods: Vec<String> = pods
                .list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .map(|p| {
                            format!(
                                "{:?} {:?}",
                                p.metadata.name,
                                p.status.as_ref().map(|s| (&s.phase, &s.conditions))
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "StatefulSet not ready (ready replicas: {ready}); pods: {pods:#?}\n{}",
                cluster.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
