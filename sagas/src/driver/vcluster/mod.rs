//! The `vcluster` driver: each workspace is a release of the vCluster Helm chart in a namespace
//! of its own on a host cluster (`hxb-<workspace>`, labelled with the organization and the
//! workspace), its API server trusting the control plane through an `AuthenticationConfiguration`
//! kept in a Secret beside it and mounted into the control plane's pod. The plan's quota
//! becomes the chart's `policies.resourceQuota` and `policies.limitRange` (on the host, around
//! everything the vCluster runs); a workspace with dedicated nodes sees only its pool's nodes
//! and its pods tolerate the pool's taint.
//!
//! * `create` applies the namespace and the Secret, then installs or upgrades the release when
//!   its values differ from the ones recorded on the namespace (a plan change upgrades it; a
//!   repeated call changes nothing).
//! * `wait_ready`: the control plane's StatefulSet is ready and, once the vCluster has written
//!   its kubeconfig (Secret `vc-<release>`), its API server answers `/readyz`.
//! * `endpoint` and `admin_client` read that kubeconfig: the control plane reaches the server
//!   named in `control_plane_server`; users reach the Ingress host when there is one.
//! * `delete` uninstalls the release, then deletes the namespace (with the data volume), and
//!   waits until both are gone.

mod helm;
pub mod nodes;
mod settings;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hexabase_command::WorkspaceId;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::helm::{Chart, Helm};
use self::nodes::NodePool;
use self::values::{Placement, AUTHENTICATION_KEY, AUTHENTICATION_SECRET};
use super::{ClusterDriver, ClusterSpec, DriverError, Endpoint};

pub use self::settings::VclusterSettings;

/// The annotation on the host namespace holding the values the release was last installed
/// or upgraded with.
pub const VALUES_ANNOTATION: &str = "hexabase.ai/release-values";
pub const ORGANIZATION_LABEL: &str = "hexabase.ai/organization";
pub const WORKSPACE_LABEL: &str = "hexabase.ai/workspace";
const FIELD_MANAGER: &str = "hexabase";
/// The annotations `vcluster pause` puts on a paused vCluster's StatefulSet.
pub const PAUSED: &str = "loft.sh/paused";
pub const PAUSED_REPLICAS: &str = "loft.sh/paused-replicas";
pub const PAUSED_DATE: &str = "loft.sh/paused-date";
/// The label of the host pods a vCluster synced from inside it.
pub const MANAGED_BY_VCLUSTER: &str = "vcluster.loft.sh/managed-by";
const POLL: Duration = Duration::from_millis(500);

pub struct VclusterDriver {
    settings: VclusterSettings,
    helm: Helm,
    host: kube::Client,
    pool: NodePool,
}

/// A client of the host cluster: the configured kubeconfig, else in-cluster or the usual one.
pub async fn host_client(settings: &VclusterSettings) -> Result<kube::Client, DriverError> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| permanent(&format!("kubeconfig {}", path.display()), e))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| permanent("host kubeconfig", e))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| permanent("no host cluster configured", e))?,
    };
    kube::Client::try_from(config).map_err(|e| permanent("host client", e))
}

/// The host's pool of dedicated nodes.
pub async fn node_pool(settings: &VclusterSettings) -> Result<NodePool, DriverError> {
    Ok(NodePool::new(
        host_client(settings).await?,
        settings.free_pool.clone(),
    ))
}

fn transient(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Transient(format!("vcluster driver: {what}: {e}"))
}

fn permanent(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Permanent(format!("vcluster driver: {what}: {e}"))
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// A host API error: refusals of what we sent are permanent, the rest is worth a retry.
fn host_error(what: &str, error: kube::Error) -> DriverError {
    match &error {
        kube::Error::Api(status) if status.code == 400 || status.code == 422 => {
            permanent(what, error)
        }
        _ => transient(what, error),
    }
}

impl VclusterDriver {
    /// Connect to the host cluster (configured kubeconfig, else in-cluster or the usual
    /// kubeconfig) and find `helm`.
    pub async fn new(settings: VclusterSettings) -> Result<Self, DriverError> {
        let host = host_client(&settings).await?;
        let program = match &settings.helm {
            Some(path) => path.clone(),
            None => super::peer_binary("helm").unwrap_or_else(|_| "helm".into()),
        };
        Ok(Self {
            helm: Helm {
                program,
                kubeconfig: settings.kubeconfig.clone(),
            },
            pool: NodePool::new(host.clone(), settings.free_pool.clone()),
            settings,
            host,
        })
    }

    /// Where the workspace's vCluster lives on the host.
    pub fn placement(&self, workspace: &WorkspaceId) -> Placement {
        Placement::of(&self.settings, workspace.as_str())
    }

    fn chart(&self) -> Chart<'_> {
        Chart {
            reference: &self.settings.chart,
            repository: self.settings.repository.as_deref(),
            version: &self.settings.version,
        }
    }

    fn namespaces(&self) -> Api<Namespace> {
        Api::all(self.host.clone())
    }

    /// The host namespace, labelled; refused while a previous one of the workspace is going.
    async fn ensure_namespace(
        &self,
        spec: &ClusterSpec,
        at: &Placement,
    ) -> Result<Namespace, DriverError> {
        let namespaces = self.namespaces();
        if let Some(existing) = namespaces
            .get_opt(&at.namespace)
            .await
            .map_err(|e| host_error("read the namespace", e))?
        {
            if existing.metadata.deletion_timestamp.is_some() {
                return Err(transient(
                    &at.namespace,
                    "the previous namespace of the workspace is still being deleted",
                ));
            }
        }
        let manifest = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": at.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": FIELD_MANAGER,
                    WORKSPACE_LABEL: spec.workspace.as_str(),
                    ORGANIZATION_LABEL: spec.organization.as_str(),
                },
            },
        });
        namespaces
            .patch(
                &at.namespace,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&manifest),
            )
            .await
            .map_err(|e| host_error("apply the namespace", e))
    }

    async fn apply_authentication(
        &self,
        spec: &ClusterSpec,
        at: &Placement,
    ) -> Result<(), DriverError> {
        let config = serde_json::to_string_pretty(&spec.authentication)
            .map_err(|e| permanent("authentication configuration", e))?;
        let manifest = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": AUTHENTICATION_SECRET,
                "namespace": at.namespace,
                "labels": { "app.kubernetes.io/managed-by": FIELD_MANAGER, WORKSPACE_LABEL: spec.workspace.as_str() },
            },
            "type": "Opaque",
            "stringData": { AUTHENTICATION_KEY: config },
        });
        Api::<Secret>::namespaced(self.host.clone(), &at.namespace)
            .patch(
                AUTHENTICATION_SECRET,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&manifest),
            )
            .await
            .map(drop)
            .map_err(|e| host_error("apply the authentication Secret", e))
    }

    /// The kubeconfig the running vCluster wrote, parsed; `None` until it has.
    async fn exported_kubeconfig(
        &self,
        at: &Placement,
    ) -> Result<Option<(Kubeconfig, String)>, DriverError> {
        let secret = Api::<Secret>::namespaced(self.host.clone(), &at.namespace)
            .get_opt(&at.kubeconfig_secret())
            .await
            .map_err(|e| host_error("read the kubeconfig Secret", e))?;
        let Some(data) = secret.and_then(|s| s.data) else {
            return Ok(None);
        };
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .ok_or_else(|| transient(&at.kubeconfig_secret(), format!("has no `{key}`")))
        };
        let kubeconfig = Kubeconfig::from_yaml(&text("config")?)
            .map_err(|e| transient(&at.kubeconfig_secret(), e))?;
        Ok(Some((kubeconfig, text("certificate-authority")?)))
    }

    fn not_written(at: &Placement) -> DriverError {
        DriverError::Transient(format!(
            "vcluster driver: the vCluster has not written its kubeconfig (Secret {} in {}) yet; \
             it does once its control plane runs",
            at.kubeconfig_secret(),
            at.namespace
        ))
    }

    async fn statefulset_ready(&self, at: &Placement) -> Result<bool, DriverError> {
        let Some(set) = Api::<StatefulSet>::namespaced(self.host.clone(), &at.namespace)
            .get_opt(&at.release)
            .await
            .map_err(|e| host_error("read the StatefulSet", e))?
        else {
            return Ok(false);
        };
        let wanted = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = set.status.unwrap_or_default();
        let current = status.observed_generation >= set.metadata.generation;
        Ok(wanted > 0 && current && status.ready_replicas.unwrap_or(0) >= wanted)
    }

    async fn answers_readyz(&self, at: &Placement) -> Result<bool, DriverError> {
        let Some(_) = self.exported_kubeconfig(at).await? else {
            // Not reachable through its own kubeconfig yet: the StatefulSet's readiness is all
            // there is to go by.
            return Ok(true);
        };
        let client = self.client_of(at).await?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| permanent("readyz request", e))?;
        Ok(client
            .request_text(request)
            .await
            .is_ok_and(|body| body.trim() == "ok"))
    }

    async fn client_of(&self, at: &Placement) -> Result<kube::Client, DriverError> {
        let (kubeconfig, _) = self
            .exported_kubeconfig(at)
            .await?
            .ok_or_else(|| Self::not_written(at))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| transient(&at.kubeconfig_secret(), e))?;
        kube::Client::try_from(config).map_err(|e| transient("vCluster client", e))
    }

    /// The values the release was last installed or upgraded with (recorded on the namespace).
    fn recorded_values(namespace: &Namespace) -> Option<&String> {
        namespace
            .metadata
            .annotations
            .as_ref()
            .and_then(|a: &BTreeMap<String, String>| a.get(VALUES_ANNOTATION))
    }
}

#[async_trait]
impl ClusterDriver for VclusterDriver {
    fn name(&self) -> &'static str {
        "vcluster"
    }

    fn runs_controllers(&self) -> bool {
        true
    }

    #[tracing::instrument(skip_all, fields(workspace = %spec.workspace))]
    async fn create(&self, spec: &ClusterSpec) -> Result<(), DriverError> {
        let at = self.placement(&spec.workspace);
        let namespace = self.ensure_namespace(spec, &at).await?;
        self.apply_authentication(spec, &at).await?;
        let values = values::values(&self.settings, spec);
        let recorded = json!({ "chart": self.settings.chart, "version": self.settings.version, "values": values })
            .to_string();
        let release = self.helm.status(&at.release, &at.namespace).await?;
        let current = release.as_ref().is_some_and(|r| r.status == "deployed")
            && Self::recorded_values(&namespace) == Some(&recorded);
        if current {
            return Ok(());
        }
        self.helm
            .upgrade(&at.release, &at.namespace, &self.chart(), &values)
            .await?;
        let annotate = json!({ "metadata": { "annotations": { VALUES_ANNOTATION: recorded } } });
        self.namespaces()
            .patch(
                &at.namespace,
                &PatchParams::default(),
                &Patch::Merge(&annotate),
            )
            .await
            .map_err(|e| host_error("record the release's values", e))?;
        tracing::info!(release = %at.release, namespace = %at.namespace, "vcluster driver: release installed or upgraded");
        Ok(())
    }

    async fn wait_ready(
        &self,
        workspace: &WorkspaceId,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let at = self.placement(workspace);
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .helm
                .status(&at.release, &at.namespace)
                .await?
                .is_none()
            {
                return Err(DriverError::NotFound(workspace.to_string()));
            }
            if self.statefulset_ready(&at).await? && self.answers_readyz(&at).await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Transient(format!(
                    "vcluster driver: the control plane of {workspace} (StatefulSet {} in {}) is \
                     not ready after {timeout:?}",
                    at.release, at.namespace
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn endpoint(&self, workspace: &WorkspaceId) -> Result<Endpoint, DriverError> {
        let at = self.placement(workspace);
        let (kubeconfig, ca_pem) = self
            .exported_kubeconfig(&at)
            .await?
            .ok_or_else(|| Self::not_written(&at))?;
        let server = match at.ingress_host(&self.settings) {
            Some(host) => format!("https://{host}"),
            None => kubeconfig
                .clusters
                .first()
                .and_then(|c| c.cluster.as_ref())
                .and_then(|c| c.server.clone())
                .ok_or_else(|| transient(&at.kubeconfig_secret(), "names no server"))?,
        };
        Ok(Endpoint { server, ca_pem })
    }

    async fn admin_client(&self, workspace: &WorkspaceId) -> Result<kube::Client, DriverError> {
        self.client_of(&self.placement(workspace)).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let at = self.placement(workspace);
        let timeout = Duration::from_secs(self.settings.delete_timeout_secs);
        if self
            .namespaces()
            .get_opt(&at.namespace)
            .await
            .map_err(|e| host_error("read the namespace", e))?
            .is_some()
        {
            self.helm
                .uninstall(
                    &at.release,
                    &at.namespace,
                    &format!("{}s", timeout.as_secs()),
                )
                .await?;
        }
        match self
            .namespaces()
            .delete(&at.namespace, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(host_error("delete the namespace", e)),
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.namespaces().get_opt(&at.namespace).await {
                Ok(None) => break,
                Ok(Some(_)) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(Some(_)) => {
                    return Err(transient(
                        &at.namespace,
                        format!("still being deleted after {timeout:?}"),
                    ))
                }
                Err(e) => return Err(host_error("read the namespace", e)),
            }
        }
        tracing::info!(release = %at.release, namespace = %at.namespace, "vcluster driver: release and namespace deleted");
        Ok(())
    }

    /// What `vcluster pause` does: the StatefulSet annotated `loft.sh/paused` with the
    /// replicas it had, scaled to 0, and the workloads the vCluster synced to the host (pods
    /// labelled `vcluster.loft.sh/managed-by=<release>`) deleted. Data volume, Services and
    /// Secrets stay, so the endpoint and the data come back with `resume`.
    #[tracing::instrument(skip(self))]
    async fn suspend(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let at = self.placement(workspace);
        let sets: Api<StatefulSet> = Api::namespaced(self.host.clone(), &at.namespace);
        let set = sets
            .get_opt(&at.release)
            .await
            .map_err(|e| host_error("read the StatefulSet", e))?
            .ok_or_else(|| DriverError::NotFound(workspace.to_string()))?;
        let annotations = set.metadata.annotations.clone().unwrap_or_default();
        if annotations.get(PAUSED).map(String::as_str) != Some("true") {
            let replicas = set
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1)
                .max(1);
            let patch = json!({
                "metadata": { "annotations": {
                    PAUSED: "true",
                    PAUSED_REPLICAS: replicas.to_string(),
                    PAUSED_DATE: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }},
                "spec": { "replicas": 0 },
            });
            sets.patch(&at.release, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| host_error("scale the StatefulSet to 0", e))?;
        }
        let pods: Api<Pod> = Api::namespaced(self.host.clone(), &at.namespace);
        let synced = ListParams::default().labels(&format!("{MANAGED_BY_VCLUSTER}={}", at.release));
        pods.delete_collection(&DeleteParams::default(), &synced)
            .await
            .map_err(|e| host_error("delete the synced pods", e))?;
        tracing::info!(release = %at.release, namespace = %at.namespace, "vcluster driver: suspended");
        Ok(())
    }

    /// What `vcluster resume` does: back to the replicas recorded at suspension, the pause
    /// annotations removed.
    #[tracing::instrument(skip(self))]
    async fn resume(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let at = self.placement(workspace);
        let sets: Api<StatefulSet> = Api::namespaced(self.host.clone(), &at.namespace);
        let set = sets
            .get_opt(&at.release)
            .await
            .map_err(|e| host_error("read the StatefulSet", e))?
            .ok_or_else(|| DriverError::NotFound(workspace.to_string()))?;
        let annotations = set.metadata.annotations.unwrap_or_default();
        if !annotations.contains_key(PAUSED) && !annotations.contains_key(PAUSED_REPLICAS) {
            return Ok(());
        }
        let replicas: i32 = annotations
            .get(PAUSED_REPLICAS)
            .and_then(|r| r.parse().ok())
            .filter(|r| *r > 0)
            .unwrap_or(1);
        let patch = json!({
            "metadata": { "annotations": { PAUSED: null, PAUSED_REPLICAS: null, PAUSED_DATE: null } },
            "spec": { "replicas": replicas },
        });
        sets.patch(&at.release, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| host_error("scale the StatefulSet back", e))?;
        tracing::info!(release = %at.release, namespace = %at.namespace, replicas, "vcluster driver: resumed");
        Ok(())
    }

    async fn free_nodes(&self) -> Result<Vec<String>, DriverError> {
        self.pool.free().await
    }

    async fn claim_nodes(
        &self,
        workspace: &WorkspaceId,
        request: &str,
        count: usize,
    ) -> Result<Vec<String>, DriverError> {
        self.pool.claim(workspace.as_str(), request, count).await
    }

    async fn release_nodes(
        &self,
        workspace: &WorkspaceId,
        keep: &BTreeSet<String>,
    ) -> Result<(), DriverError> {
        self.pool.release(workspace.as_str(), keep).await
    }

    async fn supervise(&self, _shutdown: CancellationToken) {}
}
