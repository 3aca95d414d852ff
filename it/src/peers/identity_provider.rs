//! `IdentityProvider`: dex, a real OpenID Connect provider, over HTTPS with its own CA, with a
//! local password database of static users and one confidential client.
//!
//! dex v2.41 has no group memberships for static users; tests that need groups in tokens use
//! the control plane's own issuer, which is what the vClusters trust.

use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::binary;
use super::pki::Ca;
use super::process::{answers, free_port, wait_ready, Peer, TempDir};

#[derive(Debug, Clone)]
pub struct IdpUser {
    pub email: String,
    pub password: String,
    pub username: String,
}

impl IdpUser {
    pub fn new(name: &str) -> Self {
        Self {
            email: format!("{name}@example.com"),
            password: format!(
                "{name}-password-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            username: name.to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub id_token: String,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
}

pub struct IdentityProvider {
    _dir: TempDir,
    _peer: Peer,
    pub issuer: String,
    pub ca_pem: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub users: Vec<IdpUser>,
}

impl IdentityProvider {
    /// Start dex with these users; `redirect_uri` is registered for the client.
    pub async fn start(users: &[IdpUser], redirect_uri: &str) -> Self {
        crate::init_crypto();
        let dir = TempDir::new("hxb-dex");
        let d = dir.path();
        let ca = Ca::new("hexabase-test-idp-ca");
        let serving = ca.server(&[]);
        std::fs::write(d.join("tls.crt"), &serving.cert_pem).expect("write cert");
        std::fs::write(d.join("tls.key"), &serving.key_pem).expect("write key");
        let port = free_port();
        let issuer = format!("https://127.0.0.1:{port}/dex");
        let client_id = "hexabase-control-plane".to_owned();
        let client_secret = uuid::Uuid::new_v4().simple().to_string();
        let passwords: Vec<_> = users
            .iter()
            .map(|u| {
                json!({
                    "email": u.email,
                    // dex requires bcrypt with cost of at least 10.
                    "hash": bcrypt::hash(&u.password, 10).expect("bcrypt"),
                    "username": u.username,
                    "userID": uuid::Uuid::new_v4().to_string(),
                })
            })
            .collect();
        let config = json!({
            "issuer": issuer,
            "storage": { "type": "memory" },
            "web": {
                "https": format!("127.0.0.1:{port}"),
                "tlsCert": d.join("tls.crt"),
                "tlsKey": d.join("tls.key"),
            },
            "oauth2": { "skipApprovalScreen": true, "passwordConnector": "local" },
            "enablePasswordDB": true,
            "staticPasswords": passwords,
            "staticClients": [{
                "id": client_id,
                "secret": client_secret,
                "name": "Hexabase",
                "redirectURIs": [redirect_uri],
            }],
            "logger": { "level": "info", "format": "json" },
        });
        let config_path = d.join("dex.yaml");
        std::fs::write(&config_path, config.to_string()).expect("write dex config");
        let mut command = Command::new(binary("dex"));
        command.arg("serve").arg(&config_path);
        let mut peer = Peer::spawn("dex", command, &d.join("dex.log"));
        let client = trusting(&ca.cert_pem);
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        wait_ready(&mut peer, Duration::from_secs(30), || {
            answers(&client, &discovery)
        })
        .await;
        Self {
            issuer,
            ca_pem: ca.cert_pem.clone(),
            client_id,
            client_secret,
            redirect_uri: redirect_uri.to_owned(),
            users: users.to_vec(),
            _dir: dir,
            _peer: peer,
        }
    }

    /// Provider settings (`auth.providers.<name>`) for the control plane to sign users in here.
    pub fn provider_settings(&self) -> hexabase::config::ProviderSettings {
        let ca_file = self._dir.path().join("ca.crt");
        std::fs::write(&ca_file, &self.ca_pem).expect("write the IdP's CA");
        hexabase::config::ProviderSettings {
            kind: hexabase::config::ProviderKind::Oidc,
            client_id: self.client_id.clone(),
            client_secret: secrecy::SecretString::from(self.client_secret.clone()),
            issuer: Some(self.issuer.clone()),
            scopes: None,
            authorize_url: None,
            token_url: None,
            api_url: None,
            ca_file: Some(ca_file),
        }
    }

    /// An HTTP client that trusts this provider's CA (and nothing else new).
    pub fn http_client(&self) -> reqwest::Client {
        trusting(&self.ca_pem)
    }

    /// Tokens for a user through the resource-owner password grant.
    pub async fn password_grant(&self, user: &IdpUser) -> TokenResponse {
        let response = self
            .http_client()
            .post(format!("{}/token", self.issuer))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "password"),
                ("username", user.email.as_str()),
                ("password", user.password.as_str()),
                ("scope", "openid email profile"),
            ])
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body = response.text().await.expect("token body");
        assert!(
            status.is_success(),
            "password grant refused ({status}): {body}"
        );
        serde_json::from_str(&body).expect("token response")
    }
}

fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}
