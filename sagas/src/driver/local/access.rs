//! Reaching a workspace's API server as the control plane: the admin client certificate,
//! trusting only the workspace's own CA.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use super::workspace::{Spec, WorkspaceDir};
use crate::driver::DriverError;

pub fn server_url(spec: &Spec) -> String {
    format!("https://127.0.0.1:{}", spec.port)
}

struct Credentials {
    ca: String,
    cert: String,
    key: String,
}

impl Credentials {
    fn read(dir: &WorkspaceDir) -> Result<Self, DriverError> {
        Ok(Self {
            ca: dir.ca_pem()?,
            cert: dir.read("admin.crt")?,
            key: dir.read("admin.key")?,
        })
    }
}

/// A cluster-admin `kube::Client`, from a kubeconfig built in memory (no file to leak or to
/// clean up).
pub async fn admin_client(dir: &WorkspaceDir, spec: &Spec) -> Result<kube::Client, DriverError> {
    let credentials = Credentials::read(dir)?;
    let name = spec.workspace.as_str();
    let kubeconfig: Kubeconfig = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": name, "cluster": {
            "server": server_url(spec),
            "certificate-authority-data": BASE64.encode(&credentials.ca),
        }}],
        "users": [{ "name": "hexabase-control-plane", "user": {
            "client-certificate-data": BASE64.encode(&credentials.cert),
            "client-key-data": BASE64.encode(&credentials.key),
        }}],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": "hexabase-control-plane" } }],
        "current-context": name,
    }))
    .map_err(|e| permanent("kubeconfig", &e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| permanent("kubeconfig", &e))?;
    kube::Client::try_from(config).map_err(|e| permanent("client", &e))
}

fn permanent(what: &str, e: &dyn std::fmt::Display) -> DriverError {
    DriverError::Permanent(format!("local driver: admin {what}: {e}"))
}

/// Asks `/readyz` with the admin certificate (anonymous requests may be refused).
pub struct ReadyProbe {
    http: reqwest::Client,
    url: String,
}

impl ReadyProbe {
    pub fn new(dir: &WorkspaceDir, spec: &Spec) -> Result<Self, DriverError> {
        let credentials = Credentials::read(dir)?;
        let ca = reqwest::Certificate::from_pem(credentials.ca.as_bytes())
            .map_err(|e| permanent("CA", &e))?;
        let identity = reqwest::Identity::from_pem(
            format!("{}{}", credentials.cert, credentials.key).as_bytes(),
        )
        .map_err(|e| permanent("certificate", &e))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(identity)
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| permanent("HTTP client", &e))?;
        Ok(Self {
            http,
            url: format!("{}/readyz", server_url(spec)),
        })
    }

    pub async fn ready(&self) -> bool {
        match self.http.get(&self.url).send().await {
            Ok(response) if response.status().is_success() => {
                response.text().await.is_ok_and(|body| body.trim() == "ok")
            }
            _ => false,
        }
    }
}
