//! What a `VclusterDriver` is configured with (`provisioning.vcluster`).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VclusterSettings {
    /// The `helm` program; default: the one `scripts/peers` built, else `helm` on `PATH`.
    #[serde(default)]
    pub helm: Option<PathBuf>,
    /// The host cluster's kubeconfig (for the driver and for `helm`); default: the in-cluster
    /// service account, else `$KUBECONFIG` / `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The chart: its name in `repository`, or a local directory or archive.
    pub chart: String,
    /// The Helm repository serving `chart` (none: `chart` is a path).
    #[serde(default)]
    pub repository: Option<String>,
    /// The chart version installed and upgraded to.
    pub version: String,
    /// The vCluster image: the open-source one by default.
    pub image_registry: String,
    pub image_repository: String,
    pub image_tag: String,
    /// A workspace's host namespace is this prefix and the workspace id.
    pub namespace_prefix: String,
    /// How the control plane reaches a vCluster's API server: the server its exported
    /// kubeconfig names (`{release}` and `{namespace}` are replaced), by default the Service
    /// inside the host cluster.
    pub control_plane_server: String,
    /// When set, each vCluster is served by an Ingress at `<workspace>.<ingress_domain>`,
    /// which is then the endpoint users' kubeconfigs name; otherwise the endpoint is the
    /// server of the exported kubeconfig.
    #[serde(default)]
    pub ingress_domain: Option<String>,
    /// The storage class of the vCluster's data volume (none: the host's default).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// How long `delete` waits for the release and the namespace to go.
    pub delete_timeout_secs: u64,
    /// The host's nodes labelled `hexabase.ai/node-pool=<free_pool>` can be dedicated to
    /// workspaces.
    pub free_pool: String,
}
