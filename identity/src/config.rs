//! Identity's part of the configuration: `auth` (tokens, keyrings, sign-in providers) and
//! `redis` (what every replica must see at once). Secrets are `SecretString`s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of the tokens this control plane signs and accepts.
    pub issuer: String,
    /// `aud` of API access tokens.
    pub audience: String,
    /// Key-encryption key sealing the private halves of the signing keys in the event store:
    /// base64 of 32 random bytes. Takes precedence over `key_encryption_key_file`.
    #[serde(default)]
    pub key_encryption_key: Option<SecretString>,
    /// File holding the key-encryption key in the same form (`hexabase keygen` writes one).
    pub key_encryption_key_file: PathBuf,
    /// Age at which the active signing key is replaced by a new one.
    pub key_rotation_secs: u64,
    pub token_ttl_secs: u64,
    /// Lifetime of a login session's refresh tokens (each refresh rotates the token).
    pub refresh_ttl_secs: u64,
    /// How long a started login (its `state`, `nonce` and PKCE verifier) may take to complete.
    pub login_ttl_secs: u64,
    /// External identity providers by name (`/auth/login/{name}`).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenID Connect issuer (Google, dex, Keycloak…): discovery, ID token, JWKS.
    Oidc,
    /// GitHub's OAuth 2.0 apps: no ID token; the user and their verified primary email come
    /// from the REST API.
    Github,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: SecretString,
    /// OIDC: the issuer; its `/.well-known/openid-configuration` names the other endpoints.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Scopes requested (default: `openid email profile` for OIDC, `read:user user:email` for
    /// GitHub).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// GitHub: where its OAuth endpoints and REST API live (defaults: github.com).
    #[serde(default)]
    pub authorize_url: Option<String>,
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub api_url: Option<String>,
    /// An extra CA certificate (PEM) to trust for this provider, e.g. a private IdP.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Redis: session revocations and rate-limit counters shared by every API replica.
    pub url: SecretString,
    /// Prefix of every key this deployment writes.
    pub key_prefix: String,
}

/// Settings as the built-in defaults have them, for unit tests.
#[cfg(test)]
pub(crate) fn example() -> AuthSettings {
    AuthSettings {
        issuer: "http://127.0.0.1:8080".into(),
        audience: "hexabase-api".into(),
        key_encryption_key: None,
        key_encryption_key_file: PathBuf::from(".hexabase/key-encryption-key"),
        key_rotation_secs: 604_800,
        token_ttl_secs: 900,
        refresh_ttl_secs: 2_592_000,
        login_ttl_secs: 600,
        providers: BTreeMap::new(),
    }
}
