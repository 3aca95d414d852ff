//! The objects the control plane manages in a workspace's cluster: their kinds, the labels
//! they all carry, and one desired object.

use hexabase_command::workspace::ClusterState;
use serde_json::{json, Value};

/// The label every object the control plane manages carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "hexabase";
pub const WORKSPACE_LABEL: &str = "hexabase.ai/workspace";
pub const PROJECT_LABEL: &str = "hexabase.ai/project";
pub const PARENT_LABEL: &str = "hexabase.ai/parent";

/// The kinds of object the control plane manages, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    CustomResourceDefinition,
    ServiceAccount,
    Role,
    RoleBinding,
    ResourceQuota,
    LimitRange,
    ClusterRoleBinding,
    Deployment,
    HierarchyConfiguration,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Namespace,
        Kind::CustomResourceDefinition,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::ClusterRoleBinding,
        Kind::Deployment,
        Kind::HierarchyConfiguration,
    ];

    /// (group, version, kind)
    pub fn gvk(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Namespace => ("", "v1", "Namespace"),
            Kind::Role => ("rbac.authorization.k8s.io", "v1", "Role"),
            Kind::RoleBinding => ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
            Kind::ResourceQuota => ("", "v1", "ResourceQuota"),
            Kind::LimitRange => ("", "v1", "LimitRange"),
            Kind::ClusterRoleBinding => ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
            Kind::CustomResourceDefinition => {
                ("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            }
            Kind::ServiceAccount => ("", "v1", "ServiceAccount"),
            Kind::Deployment => ("apps", "v1", "Deployment"),
            Kind::HierarchyConfiguration => ("hnc.x-k8s.io", "v1alpha2", "HierarchyConfiguration"),
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Kind::Namespace | Kind::ClusterRoleBinding | Kind::CustomResourceDefinition
        )
    }

    pub fn api_version(self) -> String {
        match self.gvk() {
            ("", version, _) => version.to_owned(),
            (group, version, _) => format!("{group}/{version}"),
        }
    }
}

/// One object the cluster should hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub manifest: Value,
}

pub fn labels(state: &ClusterState, extra: &[(&str, &str)]) -> Value {
    let mut labels = json!({
        MANAGED_BY: MANAGER,
        WORKSPACE_LABEL: state.workspace.as_str(),
    });
    for (key, value) in extra {
        labels[*key] = json!(value);
    }
    labels
}
