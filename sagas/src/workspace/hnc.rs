//! The "hnc" hierarchy: the Hierarchical Namespace Controller in each workspace's cluster
//! propagates a project's Roles and RoleBindings to the namespaces of its descendants, the
//! control plane only saying which namespace is whose child (a `HierarchyConfiguration` in each
//! child project's namespace). What it installs: HNC's CustomResourceDefinitions (v1.1.0,
//! `sagas/hnc/`), the `hnc-system` namespace, and the manager (a Deployment of `hnc_image`
//! with cluster-admin rights, without its admission webhooks: the control plane owns the
//! hierarchy and puts it back when it is edited by hand).

use serde::Deserialize;
use serde_json::{json, Value};

use super::kinds::{labels, Desired, Kind};
use hexabase_command::workspace::ClusterState;

/// How a project's roles and role bindings reach the namespaces of its descendants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// The control plane puts a copy into every descendant's namespace itself.
    #[default]
    Native,
    /// HNC, running in the workspace's cluster, propagates them.
    Hnc,
}

/// `workspace.*`: how the workspaces' clusters are laid out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSettings {
    pub hierarchy: Hierarchy,
    /// The HNC manager's image (with `hierarchy = "hnc"`).
    pub hnc_image: String,
}

/// The namespace HNC runs in.
pub const HNC_NAMESPACE: &str = "hnc-system";
const MANAGER: &str = "hnc-controller-manager";
/// The label HNC puts on the copies it propagates (which the control plane leaves alone).
pub const INHERITED_FROM: &str = "hnc.x-k8s.io/inherited-from";

const CRDS: [&str; 4] = [
    include_str!("../../hnc/hnc.x-k8s.io_hierarchyconfigurations.yaml"),
    include_str!("../../hnc/hnc.x-k8s.io_hncconfigurations.yaml"),
    include_str!("../../hnc/hnc.x-k8s.io_subnamespaceanchors.yaml"),
    include_str!("../../hnc/hnc.x-k8s.io_hierarchicalresourcequotas.yaml"),
];

fn desired(
    state: &ClusterState,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    mut manifest: Value,
) -> Desired {
    manifest["metadata"]["name"] = json!(name);
    manifest["metadata"]["labels"] = labels(state, &[]);
    if let Some(namespace) = namespace {
        manifest["metadata"]["namespace"] = json!(namespace);
    }
    Desired {
        kind,
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        manifest,
    }
}

/// HNC itself: its CRDs, namespace, service account, rights and manager.
pub fn installation(state: &ClusterState, image: &str) -> Vec<Desired> {
    let mut out = Vec::new();
    for crd in CRDS {
        let Ok(mut manifest) = serde_yaml::from_str::<Value>(crd) else {
            continue;
        };
        let Some(name) = manifest["metadata"]["name"].as_str().map(str::to_owned) else {
            continue;
        };
        // The generator's annotations and status are not ours to apply.
        if let Some(object) = manifest.as_object_mut() {
            object.remove("status");
        }
        out.push(desired(
            state,
            Kind::CustomResourceDefinition,
            None,
            &name,
            manifest,
        ));
    }
    out.push(desired(
        state,
        Kind::Namespace,
        None,
        HNC_NAMESPACE,
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {} }),
    ));
    out.push(desired(
        state,
        Kind::ServiceAccount,
        Some(HNC_NAMESPACE),
        MANAGER,
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {} }),
    ));
    out.push(desired(
        state,
        Kind::ClusterRoleBinding,
        None,
        "hnc-manager",
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {},
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [{ "kind": "ServiceAccount", "name": MANAGER, "namespace": HNC_NAMESPACE }],
        }),
    ));
    let selector = json!({ "app.kubernetes.io/name": "hnc-manager" });
    out.push(desired(
        state,
        Kind::Deployment,
        Some(HNC_NAMESPACE),
        MANAGER,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {},
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": selector },
                "template": {
                    "metadata": { "labels": selector },
                    "spec": {
                        "serviceAccountName": MANAGER,
                        "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 2000 },
                        "containers": [{
                            "name": "manager",
                            "image": image,
                            "command": ["/manager"],
                            "args": manager_args(),
                            "resources": {
                                "requests": { "cpu": "100m", "memory": "150Mi" },
                                "limits": { "cpu": "500m", "memory": "300Mi" },
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": { "drop": ["ALL"] },
                            },
                        }],
                    },
                },
            },
        }),
    ));
    out
}

/// The manager's arguments (upstream's `nowebhooks` variant, its excluded namespaces).
pub fn manager_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--no-webhooks",
        "--enable-stackdriver=false",
        "--max-reconciles=10",
    ]
    .map(str::to_owned)
    .to_vec();
    for namespace in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        HNC_NAMESPACE,
    ] {
        args.push(format!("--excluded-namespace={namespace}"));
    }
    args
}

/// The child project's namespace names its parent's.
pub fn hierarchy_configuration(state: &ClusterState, child: &str, parent: &str) -> Desired {
    desired(
        state,
        Kind::HierarchyConfiguration,
        Some(child),
        "hierarchy",
        json!({
            "apiVersion": "hnc.x-k8s.io/v1alpha2",
            "kind": "HierarchyConfiguration",
            "metadata": {},
            "spec": { "parent": parent },
        }),
    )
}
