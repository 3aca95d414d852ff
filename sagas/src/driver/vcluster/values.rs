//! The chart values of a workspace's vCluster, computed from its spec and the driver's
//! settings alone (no I/O), so what a release gets is checked against the chart's
//! `values.schema.json` in tests and compared with what a release already has.

use serde_json::{json, Map, Value};

use super::settings::VclusterSettings;
use crate::driver::ClusterSpec;
use crate::quota::{LIMIT_DEFAULT, LIMIT_DEFAULT_REQUEST};

/// The label of a node in a workspace's dedicated pool; its value is the workspace id.
pub const NODE_POOL_LABEL: &str = "hexabase.ai/node-pool";
/// The taint key of a dedicated node: `dedicated=<workspace>:NoSchedule`.
pub const DEDICATED_TAINT: &str = "dedicated";

/// The Secret (in the host namespace) holding the API server's `AuthenticationConfiguration`.
pub const AUTHENTICATION_SECRET: &str = "hexabase-authentication";
/// Its key, and where the control plane's pod sees it.
pub const AUTHENTICATION_KEY: &str = "authentication-config.yaml";
const AUTHENTICATION_MOUNT: &str = "/etc/hexabase/authentication";
const AUTHENTICATION_VOLUME: &str = "hexabase-authentication";

/// The chart's default quota entries the plan does not set: removed (null), so the host's
/// ResourceQuota holds exactly what the plan says.
const CHART_QUOTA_KEYS: &[&str] = &[
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "services.nodeports",
    "services.loadbalancers",
    "count/endpoints",
    "count/pods",
    "count/services",
    "count/secrets",
    "count/configmaps",
    "count/persistentvolumeclaims",
];

/// Where a workspace's vCluster lives on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The Helm release, and the StatefulSet and Service the chart names after it.
    pub release: String,
    pub namespace: String,
}

impl Placement {
    pub fn of(settings: &VclusterSettings, spec_workspace: &str) -> Self {
        Self {
            release: spec_workspace.to_owned(),
            namespace: format!("{}{spec_workspace}", settings.namespace_prefix),
        }
    }

    /// The server the control plane reaches the vCluster at.
    pub fn control_plane_server(&self, settings: &VclusterSettings) -> String {
        settings
            .control_plane_server
            .replace("{release}", &self.release)
            .replace("{namespace}", &self.namespace)
    }

    /// The Ingress host users reach the vCluster at, when there is one.
    pub fn ingress_host(&self, settings: &VclusterSettings) -> Option<String> {
        settings
            .ingress_domain
            .as_deref()
            .map(|domain| format!("{}.{domain}", self.release))
    }

    /// The kubeconfig Secret the running vCluster writes.
    pub fn kubeconfig_secret(&self) -> String {
        format!("vc-{}", self.release)
    }

    /// The Secret the chart writes the values into (`config.yaml`).
    pub fn config_secret(&self) -> String {
        format!("vc-config-{}", self.release)
    }
}

/// The host name in an `https://host[:port][/path]` URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    (!host.is_empty()).then_some(host)
}

/// The values the release of `spec`'s workspace is installed and upgraded with.
pub fn values(settings: &VclusterSettings, spec: &ClusterSpec) -> Value {
    let placement = Placement::of(settings, spec.workspace.as_str());
    let server = placement.control_plane_server(settings);
    let ingress = placement.ingress_host(settings);
    let mut sans: Vec<String> = host_of(&server).map(str::to_owned).into_iter().collect();
    sans.extend(ingress.clone());
    sans.dedup();

    let mut quota = Map::new();
    for key in CHART_QUOTA_KEYS {
        quota.insert((*key).to_owned(), Value::Null);
    }
    let q = &spec.quota;
    for (key, value) in [
        ("requests.cpu", json!(q.cpu)),
        ("limits.cpu", json!(q.cpu)),
        ("requests.memory", json!(q.memory)),
        ("limits.memory", json!(q.memory)),
        ("requests.storage", json!(q.storage)),
        ("count/pods", json!(q.pods)),
        ("count/services", json!(q.services)),
        (
            "count/persistentvolumeclaims",
            json!(q.persistent_volume_claims),
        ),
    ] {
        quota.insert(key.to_owned(), value);
    }

    let mut volume_claim = json!({ "enabled": true });
    if let Some(class) = &settings.storage_class {
        volume_claim["storageClass"] = json!(class);
    }
    let pool = spec.workspace.as_str();
    let toleration = json!({
        "key": DEDICATED_TAINT, "operator": "Equal", "value": pool, "effect": "NoSchedule",
    });
    let scheduling = if spec.dedicated {
        json!({
            "nodeSelector": { NODE_POOL_LABEL: pool },
            "tolerations": [toleration],
        })
    } else {
        json!({})
    };

    let mut values = json!({
        "controlPlane": {
            "distro": { "k8s": {
                "enabled": true,
                "apiServer": { "extraArgs": [
                    format!("--authentication-config={AUTHENTICATION_MOUNT}/{AUTHENTICATION_KEY}"),
                ]},
            }},
            "statefulSet": {
                "image": {
                    "registry": settings.image_registry,
                    "repository": settings.image_repository,
                    "tag": settings.image_tag,
                },
                "labels": {
                    "hexabase.ai/workspace": spec.workspace.as_str(),
                    "hexabase.ai/organization": spec.organization.as_str(),
                },
                "persistence": {
                    "volumeClaim": volume_claim,
                    "addVolumes": [{
                        "name": AUTHENTICATION_VOLUME,
                        "secret": { "secretName": AUTHENTICATION_SECRET },
                    }],
                    "addVolumeMounts": [{
                        "name": AUTHENTICATION_VOLUME,
                        "mountPath": AUTHENTICATION_MOUNT,
                        "readOnly": true,
                    }],
                },
                "scheduling": scheduling,
            },
            "proxy": { "extraSANs": sans },
        },
        "policies": {
            "resourceQuota": { "enabled": true, "quota": quota },
            "limitRange": {
                "enabled": true,
                "default": { "cpu": LIMIT_DEFAULT.cpu, "memory": LIMIT_DEFAULT.memory, "ephemeral-storage": null },
                "defaultRequest": { "cpu": LIMIT_DEFAULT_REQUEST.cpu, "memory": LIMIT_DEFAULT_REQUEST.memory, "ephemeral-storage": null },
            },
        },
        "exportKubeConfig": { "server": server },
    });
    if let Some(host) = ingress {
        values["controlPlane"]["ingress"] = json!({ "enabled": true, "host": host });
    }
    if spec.dedicated {
        values["sync"] = json!({
            "fromHost": { "nodes": {
                "enabled": true,
                "selector": { "all": false, "labels": { NODE_POOL_LABEL: pool } },
            }},
            "toHost": { "pods": {
                "enforceTolerations": [format!("{DEDICATED_TAINT}={pool}:NoSchedule")],
            }},
        });
    }
    values
}

#[cfg(test)]
mod tests {
    use hexabase_command::{OrganizationId, WorkspaceId};

    use super::*;
    use crate::quota::Quota;

    pub(crate) fn settings() -> VclusterSettings {
        VclusterSettings {
            helm: None,
            kubeconfig: None,
            chart: "vcluster".into(),
            repository: Some("https://charts.loft.sh".into()),
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

    fn spec(dedicated: bool) -> ClusterSpec {
        ClusterSpec {
            workspace: WorkspaceId::generate(),
            organization: OrganizationId::generate(),
            authentication: json!({}),
            quota: Quota {
                cpu: "4".into(),
                memory: "8Gi".into(),
                storage: "50Gi".into(),
                pods: 50,
                services: 20,
                persistent_volume_claims: 10,
            },
            dedicated,
        }
    }

    fn schema() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../it/data/vcluster-chart-v0.35.3/values.schema.json"
        );
        let text = std::fs::read_to_string(path).expect("the chart's schema");
        serde_json::from_str(&text).expect("schema JSON")
    }

    fn assert_valid(values: &Value) {
        let validator = jsonschema::validator_for(&schema()).expect("a schema");
        let errors: Vec<String> = validator
            .iter_errors(values)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn values_of_shared_and_dedicated_workspaces_follow_the_charts_schema() {
        let mut settings = settings();
        assert_valid(&values(&settings, &spec(false)));
        settings.ingress_domain = Some("ws.example.com".into());
        settings.storage_class = Some("fast".into());
        assert_valid(&values(&settings, &spec(true)));
        // The check refuses what the chart does not know.
        let mut typo = values(&settings, &spec(false));
        typo["controlPlane"]["distro"]["k8s"]["apiServer"]["extraArg"] = json!([]);
        let validator = jsonschema::validator_for(&schema()).expect("a schema");
        assert!(!validator.is_valid(&typo));
    }

    #[test]
    fn the_api_server_trusts_the_mounted_authentication_configuration() {
        let values = values(&settings(), &spec(false));
        let arg = &values["controlPlane"]["distro"]["k8s"]["apiServer"]["extraArgs"][0];
        let mount = &values["controlPlane"]["statefulSet"]["persistence"]["addVolumeMounts"][0];
        assert_eq!(
            arg.as_str(),
            Some(
                format!(
                    "--authentication-config={}/{AUTHENTICATION_KEY}",
                    mount["mountPath"].as_str().unwrap()
                )
                .as_str()
            )
        );
        let volume = &values["controlPlane"]["statefulSet"]["persistence"]["addVolumes"][0];
        assert_eq!(volume["name"], mount["name"]);
        assert_eq!(volume["secret"]["secretName"], AUTHENTICATION_SECRET);
    }

    #[test]
    fn the_quota_is_the_plans_and_nothing_of_the_charts_defaults() {
        let values = values(&settings(), &spec(false));
        let quota = values["policies"]["resourceQuota"]["quota"]
            .as_object()
            .unwrap();
        let set: Vec<_> = quota
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        assert_eq!(
            set,
            [
                ("count/persistentvolumeclaims", "10".into()),
                ("count/pods", "50".into()),
                ("count/services", "20".into()),
                ("limits.cpu", "\"4\"".into()),
                ("limits.memory", "\"8Gi\"".into()),
                ("requests.cpu", "\"4\"".into()),
                ("requests.memory", "\"8Gi\"".into()),
                ("requests.storage", "\"50Gi\"".into()),
            ]
        );
        assert!(quota["count/secrets"].is_null());
    }

    #[test]
    fn dedicated_workspaces_sync_their_pool_and_tolerate_its_taint() {
        let spec = spec(true);
        let ws = spec.workspace.to_string();
        let values = values(&settings(), &spec);
        assert_eq!(
            values["sync"]["fromHost"]["nodes"]["selector"]["labels"][NODE_POOL_LABEL],
            ws.as_str()
        );
        assert_eq!(
            values["sync"]["toHost"]["pods"]["enforceTolerations"][0],
            format!("dedicated={ws}:NoSchedule")
        );
        assert_eq!(
            values["controlPlane"]["statefulSet"]["scheduling"]["nodeSelector"][NODE_POOL_LABEL],
            ws.as_str()
        );
        let shared = super::values(&settings(), &super::tests::spec(false));
        assert!(shared.get("sync").is_none());
    }

    #[test]
    fn the_exported_kubeconfig_names_the_server_the_control_plane_reaches() {
        let spec = spec(false);
        let ws = spec.workspace.to_string();
        let values = values(&settings(), &spec);
        assert_eq!(
            values["exportKubeConfig"]["server"],
            format!("https://{ws}.hxb-{ws}.svc:443")
        );
        assert_eq!(
            values["controlPlane"]["proxy"]["extraSANs"],
            json!([format!("{ws}.hxb-{ws}.svc")])
        );
        assert_eq!(host_of("https://a.b:6443/x"), Some("a.b"));
    }
}
