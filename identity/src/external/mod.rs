//! Sign-in through external identity providers: any OpenID Connect issuer (Google, dex,
//! Keycloak…) and GitHub's OAuth apps, configured under `auth.providers.<name>`.
//!
//! The authorization code flow uses PKCE (S256), a single-use `state` and, for OIDC, a `nonce`
//! bound into the ID token; all three are kept server-side (see `login`).

mod github;
mod id_token;
pub mod login;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hexabase_command::user::{ExternalProfile, Identity};
use hexabase_command::values::Email;
use jsonwebtoken::jwk::JwkSet;
use reqwest::Url;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::config::{ProviderKind, ProviderSettings};
use crate::secrets;
use id_token::Discovery;
pub use id_token::IdTokenError;

/// How long discovery documents and key sets are reused before being fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An ID token with an unknown `kid` triggers a key refetch at most this often.
const KEY_REFETCH_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown identity provider `{0}`")]
    UnknownProvider(String),
    #[error("{0}")]
    State(String),
    #[error("the identity provider refused the login: {0}")]
    Refused(String),
    #[error("the identity provider could not be reached or answered unexpectedly: {0}")]
    Unavailable(String),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("the identity provider has not verified this account's email address")]
    EmailNotVerified,
    #[error("this identity already belongs to another account")]
    IdentityTaken,
    #[error("identity provider `{0}` is misconfigured: {1}")]
    Misconfigured(String, String),
    #[error("`return_to` must be a path on this site (starting with a single `/`)")]
    ReturnTo,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Random(#[from] secrets::RandomError),
    #[error(transparent)]
    Load(#[from] hexabase_command::store::LoadError),
    #[error("{0}")]
    Command(String),
    #[error(transparent)]
    User(#[from] hexabase_command::user::UserError),
    #[error("only a registered user can link another identity")]
    NotRegistered,
}

struct OidcMetadata {
    discovery: Discovery,
    jwks: JwkSet,
    fetched: Instant,
    keys_fetched: Instant,
}

pub struct Provider {
    name: String,
    settings: ProviderSettings,
    redirect_uri: String,
    http: reqwest::Client,
    metadata: RwLock<Option<OidcMetadata>>,
}

/// What `authorize` needs to send the browser to the provider.
pub struct AuthorizationRequest<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_challenge: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl Provider {
    fn new(name: &str, settings: &ProviderSettings, public_url: &str) -> Result<Self, LoginError> {
        let misconfigured = |reason: String| LoginError::Misconfigured(name.to_owned(), reason);
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("hexabase/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| misconfigured(format!("ca_file {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| misconfigured(format!("ca_file {}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        match settings.kind {
            ProviderKind::Oidc if settings.issuer.is_none() => {
                return Err(misconfigured("an OIDC provider needs `issuer`".into()));
            }
            _ => {}
        }
        Ok(Self {
            name: name.to_owned(),
            settings: settings.clone(),
            redirect_uri: format!("{}/auth/callback/{name}", public_url.trim_end_matches('/')),
            http: builder.build().map_err(|e| misconfigured(e.to_string()))?,
            metadata: RwLock::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    fn scopes(&self) -> String {
        match &self.settings.scopes {
            Some(scopes) => scopes.join(" "),
            None => match self.settings.kind {
                ProviderKind::Oidc => "openid email profile".into(),
                ProviderKind::Github => "read:user user:email".into(),
            },
        }
    }

    fn issuer(&self) -> &str {
        self.settings.issuer.as_deref().unwrap_or_default()
    }

    /// The discovery document and keys, fetched when missing or stale (or, with `refetch_keys`,
    /// when an ID token named a key we do not know).
    async fn oidc_metadata(&self, refetch_keys: bool) -> Result<(Discovery, JwkSet), LoginError> {
        if let Some(m) = self.metadata.read().await.as_ref() {
            let keys_fresh = !refetch_keys || m.keys_fetched.elapsed() < KEY_REFETCH_EVERY;
            if m.fetched.elapsed() < METADATA_TTL && keys_fresh {
                return Ok((m.discovery.clone(), m.jwks.clone()));
            }
        }
        let mut slot = self.metadata.write().await;
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer().trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url, None).await?;
        if discovery.issuer != self.issuer() {
            return Err(LoginError::Misconfigured(
                self.name.clone(),
                format!(
                    "the discovery document names issuer `{}`, not `{}`",
                    discovery.issuer,
                    self.issuer()
                ),
            ));
        }
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri, None).await?;
        *slot = Some(OidcMetadata {
            discovery: discovery.clone(),
            jwks: jwks.clone(),
            fetched: Instant::now(),
            keys_fetched: Instant::now(),
        });
        Ok((discovery, jwks))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, LoginError> {
        let mut request = self.http.get(url).header("Accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| LoginError::Unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(LoginError::Unavailable(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| LoginError::Unavailable(format!("{url}: {e}")))
    }

    /// Where to send the browser.
    pub async fn authorization_url(
        &self,
        request: &AuthorizationRequest<'_>,
    ) -> Result<String, LoginError> {
        let endpoint = match self.settings.kind {
            ProviderKind::Oidc => self.oidc_metadata(false).await?.0.authorization_endpoint,
            ProviderKind::Github => github::authorize_url(&self.settings),
        };
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("state", request.state),
            ("code_challenge", request.code_challenge),
            ("code_challenge_method", "S256"),
        ];
        let scopes = self.scopes();
        params.push(("scope", scopes.as_str()));
        if self.settings.kind == ProviderKind::Oidc {
            params.push(("nonce", request.nonce));
        }
        Url::parse_with_params(&endpoint, &params)
            .map(String::from)
            .map_err(|e| LoginError::Misconfigured(self.name.clone(), e.to_string()))
    }

    /// Exchange the authorization code (with the PKCE verifier) and find out who signed in.
    pub async fn complete(
        &self,
        code: &str,
        code_verifier: &str,
        nonce: &str,
    ) -> Result<ExternalProfile, LoginError> {
        let token_endpoint = match self.settings.kind {
            ProviderKind::Oidc => self.oidc_metadata(false).await?.0.token_endpoint,
            ProviderKind::Github => github::token_url(&self.settings),
        };
        let tokens = self.exchange(&token_endpoint, code, code_verifier).await?;
        match self.settings.kind {
            ProviderKind::Oidc => {
                let id_token = tokens.id_token.ok_or_else(|| {
                    LoginError::Refused("the token response carries no ID token".into())
                })?;
                let claims = self.verify_id_token(&id_token, nonce).await?;
                let email = claims
                    .email
                    .as_deref()
                    .and_then(|e| Email::parse("email", e).ok());
                Ok(ExternalProfile {
                    identity: Identity {
                        provider: self.name.clone(),
                        subject: claims.sub,
                    },
                    email_verified: email.is_some() && claims.email_verified,
                    email,
                    display_name: claims.name.or(claims.preferred_username),
                })
            }
            ProviderKind::Github => {
                let access_token = tokens.access_token.ok_or_else(|| {
                    LoginError::Refused("the token response carries no access token".into())
                })?;
                github::profile(self, &access_token).await
            }
        }
    }

    async fn exchange(
        &self,
        endpoint: &str,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse, LoginError> {
        let response = self
            .http
            .post(endpoint)
            .header("Accept", "application/json")
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose_secret()),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", code_verifier),
                ("client_id", self.settings.client_id.as_str()),
            ])
            .send()
            .await
            .map_err(|e| LoginError::Unavailable(format!("{endpoint}: {e}")))?;
        let status = response.status();
        let body: TokenResponse = response.json().await.map_err(|e| {
            LoginError::Unavailable(format!("{endpoint} answered {status} without JSON: {e}"))
        })?;
        if let Some(error) = &body.error {
            let detail = body.error_description.as_deref().unwrap_or_default();
            return Err(LoginError::Refused(
                format!("{error} {detail}").trim().to_owned(),
            ));
        }
        if !status.is_success() {
            return Err(LoginError::Refused(format!(
                "the token endpoint answered {status}"
            )));
        }
        Ok(body)
    }

    async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<id_token::IdClaims, LoginError> {
        let (_, jwks) = self.oidc_metadata(false).await?;
        let client_id = &self.settings.client_id;
        match id_token::verify_id_token(token, &jwks, self.issuer(), client_id, nonce) {
            Err(e) if e.worth_refetching_keys() => {
                let (_, jwks) = self.oidc_metadata(true).await?;
                Ok(id_token::verify_id_token(
                    token,
                    &jwks,
                    self.issuer(),
                    client_id,
                    nonce,
                )?)
            }
            other => Ok(other?),
        }
    }
}

/// The configured providers by name.
pub struct Providers {
    by_name: BTreeMap<String, Provider>,
}

impl Providers {
    /// The providers configured under `auth.providers`; their redirect URIs are below
    /// `public_url`.
    pub fn from_settings(
        providers: &BTreeMap<String, ProviderSettings>,
        public_url: &str,
    ) -> Result<Self, LoginError> {
        let mut by_name = BTreeMap::new();
        for (name, provider) in providers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(LoginError::Misconfigured(
                    name.clone(),
                    "provider names are lower-case letters, digits and dashes".into(),
                ));
            }
            by_name.insert(name.clone(), Provider::new(name, provider, public_url)?);
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Result<&Provider, LoginError> {
        self.by_name
            .get(name)
            .ok_or_else(|| LoginError::UnknownProvider(name.chars().take(64).collect()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
