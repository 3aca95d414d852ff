//! Configuration, layered: built-in defaults → an optional TOML file → `HEXABASE_…` environment
//! variables (`__` separates sections: `HEXABASE_DATABASE__URL`). Secrets are `SecretString`s,
//! which print as `[REDACTED]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use hexabase_identity::config::{AuthSettings, ProviderKind, ProviderSettings, RedisSettings};
pub use hexabase_sagas::driver::local::LocalDriverSettings;
pub use hexabase_sagas::driver::vcluster::VclusterSettings;
pub use hexabase_sagas::engine::RunnerSettings;
pub use hexabase_sagas::workspace::hnc::{Hierarchy, WorkspaceSettings};
use secrecy::SecretString;
use serde::Deserialize;

const DEFAULTS: &str = r#"
[http]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
read_wait_ms = 5000

[database]
url = "postgres://hexabase:hexabase@127.0.0.1:5432/hexabase"
max_connections = 20

[nats]
url = "nats://127.0.0.1:4222"
stream = "HEXABASE_EVENTS"
subject_prefix = "hxb.events"

[auth]
issuer = "http://127.0.0.1:8080"
audience = "hexabase-api"
key_encryption_key_file = ".hexabase/key-encryption-key"
key_rotation_secs = 604800
token_ttl_secs = 900
refresh_ttl_secs = 2592000
login_ttl_secs = 600

[redis]
url = "redis://127.0.0.1:6379"
key_prefix = "hxb"

[rate_limit]
window_secs = 60
auth_per_window = 30
api_per_window = 1200
trust_forwarded_for = false

[plans.starter]
name = "Starter"
price_id = "price_starter_monthly"
max_projects = 5
dedicated_nodes = false
quota = { cpu = "4", memory = "8Gi", storage = "50Gi", pods = 50, services = 20, persistent_volume_claims = 10 }

[plans.team]
name = "Team"
price_id = "price_team_monthly"
max_projects = 25
dedicated_nodes = false
quota = { cpu = "16", memory = "64Gi", storage = "500Gi", pods = 300, services = 100, persistent_volume_claims = 50 }

[plans.enterprise]
name = "Enterprise"
price_id = "price_enterprise_monthly"
max_projects = 200
dedicated_nodes = true
max_dedicated_nodes = 10
quota = { cpu = "128", memory = "512Gi", storage = "5Ti", pods = 3000, services = 1000, persistent_volume_claims = 500 }

[billing]
api_url = "https://api.stripe.com"
webhook_tolerance_secs = 300
grace_period_secs = 604800
success_url = "http://127.0.0.1:8080/?billing=success&session_id={CHECKOUT_SESSION_ID}"
cancel_url = "http://127.0.0.1:8080/?billing=canceled"
portal_return_url = "http://127.0.0.1:8080/"
notification_stream = "HEXABASE_NOTIFICATIONS"

[workspace]
hierarchy = "native"
hnc_image = "gcr.io/k8s-staging-multitenancy/hnc-manager:v1.1.0"

[provisioning]
driver = "local"
ready_timeout_secs = 60

[provisioning.local]
state_dir = ".hexabase/clusters"
etcd_port = 0

[provisioning.vcluster]
chart = "vcluster"
repository = "https://charts.loft.sh"
version = "0.35.3"
image_registry = "ghcr.io"
image_repository = "loft-sh/vcluster-oss"
image_tag = "0.35.3"
namespace_prefix = "hxb-"
control_plane_server = "https://{release}.{namespace}.svc:443"
delete_timeout_secs = 300
free_pool = "free"

[sagas]
step_timeout_secs = 300
concurrency = 8
ack_wait_secs = 10
recovery_secs = 5
maintenance_secs = 60
stream = "HEXABASE_TASKS"

[sagas.backoff]
base_ms = 500
max_ms = 30000
max_attempts = 8

[log]
format = "json"
filter = "info"

[runtime]
threads = 0
"#;

/// Unknown top-level keys are ignored (other tools share the `HEXABASE_` prefix); unknown keys
/// inside a section are refused, so a typo never silently falls back to a default.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub nats: NatsSettings,
    pub auth: AuthSettings,
    pub redis: RedisSettings,
    pub rate_limit: RateLimitSettings,
    /// The plan catalogue by id (`plans.<id>`).
    pub plans: BTreeMap<String, PlanSettings>,
    /// Stripe: keys, webhook secrets, the grace period, Checkout's URLs.
    pub billing: BillingSettings,
    /// How the workspaces' clusters are laid out: how a project's roles reach its
    /// descendants (`native` copies, or `hnc`).
    pub workspace: WorkspaceSettings,
    pub provisioning: ProvisioningSettings,
    pub sagas: RunnerSettings,
    pub log: LogSettings,
    pub runtime: RuntimeSettings,
}

/// Which driver makes the workspaces' clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// A kube-apiserver per workspace on this machine (`provisioning.local`).
    Local,
    /// A release of the vCluster chart per workspace on a host cluster
    /// (`provisioning.vcluster`): what production runs.
    Vcluster,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSettings {
    pub driver: DriverKind,
    /// How long one attempt waits for a new API server to answer `/readyz`.
    pub ready_timeout_secs: u64,
    /// The CA (PEM) of the control plane's serving certificate, for the workspaces' API servers
    /// to trust it as OIDC issuer when it is not a public one.
    #[serde(default)]
    pub issuer_ca_file: Option<PathBuf>,
    pub local: LocalDriverSettings,
    pub vcluster: VclusterSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    pub name: String,
    /// The Stripe price organizations on this plan are billed with; none: a free plan, which
    /// needs no subscription.
    #[serde(default)]
    pub price_id: Option<String>,
    /// Projects (namespaces) a workspace on this plan may have.
    pub max_projects: u32,
    /// Whether workspaces on this plan may have nodes of their own.
    pub dedicated_nodes: bool,
    /// How many (those a workspace has and has asked for), when it may.
    #[serde(default)]
    pub max_dedicated_nodes: u32,
    pub quota: QuotaSettings,
    /// Whether new workspaces may choose it; a withdrawn plan stays with the workspaces that
    /// have it. (The catalogue adds to the built-in plans, so withdrawing is how one goes.)
    #[serde(default = "yes")]
    pub available: bool,
}

/// Billing through Stripe. Billing is on when `secret_key` is set: organizations then get a
/// Stripe customer, workspaces on a paid plan need the organization's subscription to pay for
/// it, and `/webhooks/stripe` takes events signed with one of `webhook_secrets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    /// Stripe's secret API key (`sk_…`).
    #[serde(default)]
    pub secret_key: Option<SecretString>,
    /// Stripe's API (stripe-mock's in tests).
    pub api_url: String,
    /// The webhook endpoint's signing secrets (`whsec_…`); during a rotation both the new and
    /// the old one.
    #[serde(default)]
    pub webhook_secrets: Vec<SecretString>,
    /// How old a signed webhook may be.
    pub webhook_tolerance_secs: u64,
    /// How long after a failed payment the organization's workspaces are suspended.
    pub grace_period_secs: u64,
    /// Where Checkout sends the buyer back to (`{CHECKOUT_SESSION_ID}` is Stripe's placeholder).
    pub success_url: String,
    pub cancel_url: String,
    /// Where the Billing Portal returns to.
    pub portal_return_url: String,
    /// The JetStream stream of the `user.notification.*` messages.
    pub notification_stream: String,
}

impl BillingSettings {
    pub fn enabled(&self) -> bool {
        self.secret_key.is_some()
    }
}

fn yes() -> bool {
    true
}

/// The resource quota of a workspace, in Kubernetes quantities (the provisioning sagas put it
/// into every project namespace).
pub type QuotaSettings = hexabase_sagas::workspace::Quota;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the API listens on.
    pub listen: String,
    /// How clients reach the API (used in links).
    pub public_url: String,
    /// How long a read carrying `position` waits for the read model to catch up.
    pub read_wait_ms: u64,
    /// Serve HTTPS with this PEM certificate chain and key (both or neither).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Serve the web console's static build (`web/out`) from this directory at `/console/`.
    #[serde(default)]
    pub console_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    pub url: String,
    /// JetStream stream holding the domain events.
    pub stream: String,
    /// Events are published on `{subject_prefix}.{AggregateType}.{id}`.
    pub subject_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Length of a rate-limit window.
    pub window_secs: u64,
    /// Requests per window to `/auth/…`, per client IP (0: no limit).
    pub auth_per_window: u64,
    /// Requests per window to `/api/…`, per client IP and per signed-in user (0: no limit).
    pub api_per_window: u64,
    /// Take the client IP from the right-most `X-Forwarded-For` entry (what the proxy in front
    /// saw); only behind a proxy that
    /// replaces that header, or clients choose their own IP.
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (one object per line) or `text`.
    pub format: String,
    /// tracing `EnvFilter` directives, e.g. `info,hexabase=debug`.
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Threads of a `serve` or `worker` process: 0 is one per core; 1 runs everything on one
    /// thread, without handing tasks between threads (see the README on small machines).
    pub threads: usize,
}

impl RuntimeSettings {
    /// The async runtime these settings ask for.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self.threads {
            1 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            0 => tokio::runtime::Runtime::new(),
            n => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(#[from] config::ConfigError);

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let settings = builder
            .add_source(
                config::Environment::with_prefix("HEXABASE")
                    .prefix_separator("_")
                    .separator("__"),
            )
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_load_and_secrets_do_not_print() {
        let settings = Settings::load(None).unwrap();
        assert_eq!(settings.nats.stream, "HEXABASE_EVENTS");
        assert!(settings.database.url.expose_secret().contains("hexabase"));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hexabase:hexabase@"), "{printed}");
    }

    #[test]
    fn a_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("hxb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hexabase.toml");
        std::fs::write(&file, "[http]\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        assert_eq!(settings.http.listen, "0.0.0.0:9000");
        assert_eq!(settings.http.read_wait_ms, 5000);
        std::fs::write(&file, "[http]\nlisten_on = 1\n").unwrap();
        assert!(Settings::load(Some(&file)).is_err());
    }
}
