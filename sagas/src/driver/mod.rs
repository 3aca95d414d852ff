//! Cluster drivers: what creates, runs and removes a workspace's Kubernetes API server.
//!
//! Every method is idempotent — creating what exists, or deleting what is gone, succeeds — so
//! a saga step that calls one can simply be run again after a crash or a retry.

pub mod local;
pub mod unavailable;
pub mod vcluster;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use hexabase_command::{OrganizationId, WorkspaceId};
use tokio_util::sync::CancellationToken;

use crate::quota::Quota;

/// What a workspace's cluster is created with.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub workspace: WorkspaceId,
    pub organization: OrganizationId,
    /// The `AuthenticationConfiguration` (`apiserver.config.k8s.io/v1`) the API server starts
    /// with: it trusts the control plane as OIDC issuer for this workspace's tokens.
    pub authentication: serde_json::Value,
    /// The plan's quota, for drivers that enforce it around the whole cluster (`vcluster`:
    /// on the host namespace).
    pub quota: Quota,
    /// Whether the workspace runs on nodes of its own (those labelled with its pool).
    pub dedicated: bool,
}

/// Where clients reach a workspace's API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host:port`.
    pub server: String,
    /// PEM of the CA that signed the API server's serving certificate.
    pub ca_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying: the cluster is still starting, a process or a peer is briefly away.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: bad configuration, an invalid authentication configuration…
    #[error("{0}")]
    Permanent(String),
    /// The driver has no such cluster.
    #[error("workspace {0} has no cluster")]
    NotFound(String),
}

#[async_trait]
pub trait ClusterDriver: Send + Sync + 'static {
    /// `local`, `vcluster`.
    fn name(&self) -> &'static str;

    /// Whether the cluster runs Kubernetes' controllers (namespace finalization, quota usage,
    /// workloads). Without them the control plane finalizes the namespaces it deletes itself.
    fn runs_controllers(&self) -> bool;

    /// Create the cluster, or find the one already created for `spec.workspace`.
    async fn create(&self, spec: &ClusterSpec) -> Result<(), DriverError>;

    /// Wait (at most `timeout`) until the API server answers `/readyz`; `Transient` when it
    /// does not in time.
    async fn wait_ready(
        &self,
        workspace: &WorkspaceId,
        timeout: Duration,
    ) -> Result<(), DriverError>;

    /// The API server's URL and CA.
    async fn endpoint(&self, workspace: &WorkspaceId) -> Result<Endpoint, DriverError>;

    /// A client of the workspace's API server with cluster-admin rights, for the control
    /// plane's own changes (namespaces, quotas, RBAC).
    async fn admin_client(&self, workspace: &WorkspaceId) -> Result<kube::Client, DriverError>;

    /// Remove the cluster and all its data; a cluster already gone is success.
    async fn delete(&self, workspace: &WorkspaceId) -> Result<(), DriverError>;

    /// Stop the cluster's control plane (and, where the driver runs them, its workloads),
    /// keeping its data and its endpoint; a cluster already suspended is success.
    async fn suspend(&self, workspace: &WorkspaceId) -> Result<(), DriverError>;

    /// Start a suspended cluster again with the same data and endpoint (`wait_ready` says
    /// when it answers); a running one is success.
    async fn resume(&self, workspace: &WorkspaceId) -> Result<(), DriverError>;

    /// The names of the host's nodes free to be dedicated to a workspace; refused by drivers
    /// without host nodes.
    async fn free_nodes(&self) -> Result<Vec<String>, DriverError> {
        Err(no_nodes(self.name()))
    }

    /// Dedicate `count` free nodes to the workspace for `request` (labelled and tainted as
    /// its pool); safe to repeat. `Permanent` when too few are free, having claimed nothing.
    async fn claim_nodes(
        &self,
        workspace: &WorkspaceId,
        request: &str,
        count: usize,
    ) -> Result<Vec<String>, DriverError> {
        let _ = (workspace, request, count);
        Err(no_nodes(self.name()))
    }

    /// Give every node of the workspace's pool not in `keep` back to the free pool.
    async fn release_nodes(
        &self,
        workspace: &WorkspaceId,
        keep: &BTreeSet<String>,
    ) -> Result<(), DriverError> {
        let _ = (workspace, keep);
        Ok(())
    }

    /// Keep the created clusters running until `shutdown` (restart what crashed, bring back
    /// what a previous run had started). Drivers whose clusters run elsewhere return at once.
    async fn supervise(&self, shutdown: CancellationToken);
}

/// `${HEXABASE_PEERS_DIR:-/var/cache/hexabase/peers}`, where `scripts/peers` keeps its builds.
fn peers_dir() -> PathBuf {
    std::env::var_os("HEXABASE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hexabase/peers"))
}

/// The path `scripts/peers`' manifest gives for the program `name` (lines
/// `name version /abs/path`).
pub fn peer_binary(name: &str) -> Result<PathBuf, String> {
    let manifest = peers_dir().join("manifest.txt");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("no {name} ({}: {e})", manifest.display()))?;
    text.lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some(name)).then(|| parts.nth(1).map(PathBuf::from))?
        })
        .ok_or_else(|| format!("{name} is not in {}", manifest.display()))
}

fn no_nodes(driver: &str) -> DriverError {
    DriverError::Permanent(format!(
        "the `{driver}` cluster driver has no host nodes to dedicate to a workspace"
    ))
}
