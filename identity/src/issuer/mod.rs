//! The control plane as the OpenID provider the workspaces' API servers trust: its discovery
//! document, its JWKS (the `oidc` keyring), the workspace tokens `kubectl` presents, the
//! authentication configuration an API server needs to trust them, and the grants that hand
//! them out (`code`: the authorization code flow; `device`: the device flow).
//!
//! A workspace token says who (`sub` = `hxb-usr-…`), for which workspace (`aud` = `ws-…`) and
//! in which groups of it (`groups`, ancestors included), for a short time.

pub mod code;
pub mod device;

/// Who asks the OpenID provider for tokens: kubectl for a workspace (the client id is the
/// workspace id; the tokens are for its API server), or the `hexabase` CLI (client id
/// `hexabase-cli`; the tokens are a control-plane session, like a browser's sign-in). Both are
/// public clients on the user's machine: no secret, PKCE, loopback redirects or the device flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    Workspace(WorkspaceId),
    Cli,
}

/// The CLI's client id.
pub const CLI_CLIENT: &str = "hexabase-cli";

impl Client {
    pub fn parse(client_id: &str) -> Option<Self> {
        if client_id == CLI_CLIENT {
            return Some(Self::Cli);
        }
        WorkspaceId::parse(client_id).ok().map(Self::Workspace)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Workspace(ws) => ws.as_str(),
            Self::Cli => CLI_CLIENT,
        }
    }
}

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hexabase_command::keyring::KeyPurpose;
use hexabase_command::{UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::AuthSettings;
use crate::keyring::{Kek, KeyringService, KeyringServiceError, RotationPolicy};
use crate::token::{TokenError, Tokens};

/// Prefix the API servers put before our user ids and group names (`hxb:WSAdmins`), so they
/// cannot collide with Kubernetes' own (`system:…`).
pub const CLAIM_PREFIX: &str = "hxb:";

/// The claims of a workspace token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub groups: Vec<String>,
    /// The `nonce` of the authorization request the token answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Issues workspace tokens with the `oidc` keyring.
pub struct Issuer {
    pub keys: Arc<KeyringService>,
    /// Holds the keyring's current keys; signs and verifies.
    pub tokens: Arc<Tokens>,
    issuer: String,
    ttl: Duration,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Issuer {
    /// Open the `oidc` keyring (creating its first key if need be); the issuer is `issuer`.
    pub async fn open(
        pool: &PgPool,
        auth: &AuthSettings,
        issuer: &str,
    ) -> Result<Self, KeyringServiceError> {
        let keys = KeyringService::open(
            pool.clone(),
            KeyPurpose::Oidc,
            Kek::from_settings(auth)?,
            RotationPolicy::for_sessions(auth),
        )
        .await?;
        let mut settings = auth.clone();
        settings.issuer = issuer.to_owned();
        let tokens = Arc::new(Tokens::new(keys.key_set().await?, &settings));
        Ok(Self {
            keys: Arc::new(keys),
            tokens,
            issuer: issuer.to_owned(),
            ttl: Duration::from_secs(auth.token_ttl_secs),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The claims of a token for `user` in `workspace` with `groups`, valid from now.
    pub fn claims(
        &self,
        user: &UserId,
        workspace: &WorkspaceId,
        groups: Vec<String>,
    ) -> WorkspaceClaims {
        let now = now_secs();
        WorkspaceClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: workspace.to_string(),
            exp: now.saturating_add(self.ttl.as_secs()),
            iat: now,
            nbf: now,
            jti: Uuid::now_v7().to_string(),
            groups,
            nonce: None,
        }
    }

    pub fn sign(&self, claims: &WorkspaceClaims) -> Result<String, TokenError> {
        self.tokens.sign_claims(claims)
    }

    /// Verify a workspace token for `workspace` (what a vCluster's API server checks).
    pub fn verify(
        &self,
        token: &str,
        workspace: &WorkspaceId,
    ) -> Result<WorkspaceClaims, TokenError> {
        self.tokens.verify_claims(token, workspace.as_str())
    }

    /// `/.well-known/openid-configuration`.
    pub fn discovery(&self) -> Value {
        discovery(&self.issuer)
    }
}

/// The discovery document of `issuer`.
pub fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "groups", "nonce"],
    })
}

/// What a workspace's API server needs to trust this issuer (`--authentication-config`,
/// `apiserver.config.k8s.io/v1`): tokens for the workspace's id only; the user from `sub` and
/// the groups from `groups`, both prefixed with `hxb:`. `ca_pem` is the CA of the issuer's
/// serving certificate (`None` when it chains to the API server's system roots).
pub fn authentication_configuration(
    issuer: &str,
    workspace: &WorkspaceId,
    ca_pem: Option<&str>,
) -> Value {
    let mut issuer_config = json!({
        "url": issuer,
        "audiences": [workspace.as_str()],
        "audienceMatchPolicy": "MatchAny",
    });
    if let Some(ca) = ca_pem {
        issuer_config["certificateAuthority"] = json!(ca);
    }
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": issuer_config,
            "claimMappings": {
                "username": { "claim": "sub", "prefix": CLAIM_PREFIX },
                "groups": { "claim": "groups", "prefix": CLAIM_PREFIX },
            },
        }],
    })
}

/// A kubeconfig for `workspace`: its API server (`server`, CA `ca_pem`), and as user the
/// `hexabase kubectl-credential` exec plugin asking `control_plane` for workspace tokens.
pub fn kubeconfig(
    control_plane: &str,
    workspace: &WorkspaceId,
    server: &str,
    ca_pem: &str,
) -> Value {
    use base64::Engine;
    let user = format!("hexabase-{workspace}");
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": workspace.as_str(),
            "cluster": {
                "server": server,
                "certificate-authority-data":
                    base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes()),
            },
        }],
        "users": [{
            "name": user,
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "hexabase",
                    "args": ["kubectl-credential", "--server", control_plane, "--workspace", workspace.as_str()],
                    "interactiveMode": "Never",
                    "provideClusterInfo": false,
                    "installHint": format!("kubectl runs `hexabase kubectl-credential` for tokens: put \
                        the hexabase binary on PATH and sign in with `hexabase login --server \
                        {control_plane} --workspace {workspace}`."),
                },
            },
        }],
        "contexts": [{
            "name": workspace.as_str(),
            "context": { "cluster": workspace.as_str(), "user": user },
        }],
        "current-context": workspace.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authentication_configuration_trusts_one_workspace_with_prefixed_claims() {
        let ws = WorkspaceId::generate();
        let config = authentication_configuration("https://hxb.example", &ws, Some("PEM"));
        let jwt = &config["jwt"][0];
        assert_eq!(jwt["issuer"]["url"], "https://hxb.example");
        assert_eq!(jwt["issuer"]["audiences"], json!([ws.as_str()]));
        assert_eq!(jwt["issuer"]["certificateAuthority"], "PEM");
        assert_eq!(jwt["claimMappings"]["username"]["claim"], "sub");
        assert_eq!(jwt["claimMappings"]["groups"]["prefix"], CLAIM_PREFIX);
        let without_ca = authentication_configuration("https://hxb.example", &ws, None);
        assert!(without_ca["jwt"][0]["issuer"]
            .get("certificateAuthority")
            .is_none());
    }

    #[test]
    fn kubeconfigs_use_the_exec_plugin_and_no_secret() {
        let ws = WorkspaceId::generate();
        let config = kubeconfig("https://hxb.example", &ws, "https://10.0.0.1:6443", "PEM");
        let exec = &config["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["command"], "hexabase");
        assert_eq!(exec["args"][0], "kubectl-credential");
        assert!(config["users"][0]["user"].get("token").is_none());
        assert!(config["users"][0]["user"]
            .get("client-certificate-data")
            .is_none());
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(config["current-context"], ws.as_str());
    }

    #[test]
    fn discovery_names_the_issuer_and_its_keys() {
        let doc = discovery("https://hxb.example");
        assert_eq!(doc["issuer"], "https://hxb.example");
        assert_eq!(doc["jwks_uri"], "https://hxb.example/.well-known/jwks.json");
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        assert_eq!(doc["token_endpoint"], "https://hxb.example/oauth/token");
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    }
}
