//! The OpenID provider's authorization code flow for kubectl clients (RFC 6749 §4.1 with PKCE,
//! RFC 7636; native apps per RFC 8252): the client is a workspace (`client_id` = `ws-…`), a
//! public client on the user's machine, so it has no secret, must use PKCE S256 and may only
//! redirect to a loopback address. The signed-in user approves each request on a page of ours
//! (RFC 8252 §8.6: nothing is granted to a local listener without them); codes are single use,
//! short-lived and stored as hashes.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hexabase_command::UserId;

use super::Client;
use reqwest::Url;

use sqlx::PgPool;

use crate::secrets::{self, constant_time_eq, pkce_challenge, RandomError};

/// How long an authorization code can be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// Why a request of the flow is refused, as the OAuth error codes name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error(
        "grant type `{0}` is not supported (authorization_code, refresh_token, \
         urn:ietf:params:oauth:grant-type:device_code)"
    )]
    UnsupportedGrantType(String),
    #[error("only the `code` response type is supported")]
    UnsupportedResponseType,
    #[error("the scope must include `openid`")]
    InvalidScope,
    #[error("{0}")]
    AccessDenied(String),
    /// Device flow: nobody has allowed or denied the request yet (RFC 8628 §3.5).
    #[error("the user has not answered yet")]
    AuthorizationPending,
    /// Device flow: polled faster than the interval, which grows by 5 seconds.
    #[error("polling too fast: wait the interval (now {0} s) between requests")]
    SlowDown(u64),
    /// Device flow: the device code expired before anyone allowed it.
    #[error("the device code has expired: start again")]
    ExpiredToken,
}

impl GrantError {
    /// The `error` value (RFC 6749 §4.1.2.1, §5.2).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied(_) => "access_denied",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown(_) => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A client's redirect URI: plain HTTP to a loopback address (any port, any path), the only
/// kind a client on the user's own machine can receive a code at without a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect(Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect_uri is required")]
    Missing,
    #[error("redirect_uri is not an absolute URL")]
    Malformed,
    #[error(
        "redirect_uri must be a loopback address of the client: http://127.0.0.1:<port>/…, \
         http://[::1]:<port>/… or http://localhost:<port>/…, without a fragment"
    )]
    NotLoopback,
}

impl Redirect {
    pub fn parse(uri: &str) -> Result<Self, RedirectError> {
        if uri.is_empty() {
            return Err(RedirectError::Missing);
        }
        let url = Url::parse(uri).map_err(|_| RedirectError::Malformed)?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        let plain = url.scheme() == "http"
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none();
        if !(loopback && plain) {
            return Err(RedirectError::NotLoopback);
        }
        // Compared as sent at the token endpoint (RFC 6749 §4.1.3).
        Ok(Self(url))
    }

    fn with(&self, pairs: &[(&str, &str)], state: Option<&str>) -> String {
        let mut url = self.0.clone();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        url.to_string()
    }

    pub fn with_code(&self, code: &str, state: Option<&str>) -> String {
        self.with(&[("code", code)], state)
    }

    pub fn with_error(&self, error: &GrantError, state: Option<&str>) -> String {
        self.with(
            &[
                ("error", error.code()),
                ("error_description", &error.to_string()),
            ],
            state,
        )
    }

    /// The URI as the client sent it (what the token request must repeat).
    pub fn as_sent(&self) -> &str {
        self.0.as_str()
    }
}

/// The parts of an authorization request checked before a code is issued.
pub struct AuthorizationRequest<'a> {
    pub response_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
}

impl<'a> AuthorizationRequest<'a> {
    /// The PKCE challenge, once the request asks for a code, for `openid`, with S256.
    pub fn challenge(&self) -> Result<&'a str, GrantError> {
        if self.response_type != Some("code") {
            return Err(GrantError::UnsupportedResponseType);
        }
        if !self
            .scope
            .is_some_and(|scope| scope.split(' ').any(|s| s == "openid"))
        {
            return Err(GrantError::InvalidScope);
        }
        let challenge = self.code_challenge.unwrap_or_default();
        if self.code_challenge_method != Some("S256") {
            return Err(GrantError::InvalidRequest(
                "PKCE is required: code_challenge_method must be S256".into(),
            ));
        }
        let well_formed = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(GrantError::InvalidRequest(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
                    .into(),
            ));
        }
        Ok(challenge)
    }
}

/// The client id in `Authorization: Basic …` (RFC 6749 §2.3.1: form-encoded user, empty
/// password for a public client); `None` for another scheme.
pub fn basic_client(header: &str) -> Result<Option<String>, GrantError> {
    let Some(encoded) = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let malformed = || GrantError::InvalidClient("malformed Basic credentials".into());
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (user, password) = text.split_once(':').ok_or_else(malformed)?;
    if !password.is_empty() {
        return Err(GrantError::InvalidClient(
            "workspace clients are public: they have no secret".into(),
        ));
    }
    let user: String = url::form_urlencoded::parse(format!("u={user}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(malformed)?;
    Ok(Some(user))
}

/// How long the approval page stays good.
pub const APPROVAL_TTL: Duration = Duration::from_secs(300);

/// Record an authorization request of `user` for `client`, to be approved or denied on the
/// approval page; returns the approval secret the page carries.
pub async fn request_approval(
    pool: &PgPool,
    client: &Client,
    user: &UserId,
    redirect: &Redirect,
    challenge: &str,
    nonce: Option<&str>,
    client_state: Option<&str>,
) -> Result<String, StoreError> {
    let approval = secrets::random_token()?;
    let expires_at = Utc::now() + chrono::Duration::from_std(APPROVAL_TTL).unwrap_or_default();
    sqlx::query(
        "INSERT INTO oidc_authorizations (approval_hash, client_id, user_id, redirect_uri, \
         code_challenge, nonce, state, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(secrets::hash(&approval))
    .bind(client.as_str())
    .bind(user.as_str())
    .bind(redirect.as_sent())
    .bind(challenge)
    .bind(nonce)
    .bind(client_state)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(approval)
}

/// Where the browser goes once `user` decided on the request behind `approval`: back to the
/// client with a code (`allow`) or with `access_denied`. `None` when there is no such pending
/// request of this user (unknown, decided already, expired).
pub async fn decide(
    pool: &PgPool,
    approval: &str,
    user: &UserId,
    allow: bool,
) -> Result<Option<String>, StoreError> {
    if !allow {
        let denied: Option<(String, Option<String>)> = sqlx::query_as(
            "DELETE FROM oidc_authorizations \
             WHERE approval_hash = $1 AND user_id = $2 AND code_hash IS NULL \
             RETURNING redirect_uri, state",
        )
        .bind(secrets::hash(approval))
        .bind(user.as_str())
        .fetch_optional(pool)
        .await?;
        let error = GrantError::AccessDenied("the user denied the request".into());
        return Ok(denied.and_then(|(uri, client_state)| {
            let redirect = Redirect::parse(&uri).ok()?;
            Some(redirect.with_error(&error, client_state.as_deref()))
        }));
    }
    let code = secrets::random_token()?;
    let expires_at = Utc::now() + chrono::Duration::from_std(CODE_TTL).unwrap_or_default();
    let approved: Option<(String, Option<String>)> = sqlx::query_as(
        "UPDATE oidc_authorizations SET code_hash = $3, expires_at = $4 \
         WHERE approval_hash = $1 AND user_id = $2 AND code_hash IS NULL AND expires_at > now() \
         RETURNING redirect_uri, state",
    )
    .bind(secrets::hash(approval))
    .bind(user.as_str())
    .bind(secrets::hash(&code))
    .bind(expires_at)
    .fetch_optional(pool)
    .await?;
    Ok(approved.and_then(|(uri, client_state)| {
        let redirect = Redirect::parse(&uri).ok()?;
        Some(redirect.with_code(&code, client_state.as_deref()))
    }))
}

/// Who a redeemed code was for.
#[derive(Debug)]
pub struct Redeemed {
    pub user: UserId,
    pub nonce: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    expires_at: DateTime<Utc>,
}

/// Use up `code`: it is gone after the first attempt, whatever the outcome, so a stolen code
/// cannot be tried twice.
pub async fn redeem_code(
    pool: &PgPool,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Result<Redeemed, GrantError>, sqlx::Error> {
    let row: Option<CodeRow> = sqlx::query_as(
        "DELETE FROM oidc_authorizations WHERE code_hash = $1 \
         RETURNING client_id, user_id, redirect_uri, code_challenge, nonce, expires_at",
    )
    .bind(secrets::hash(code))
    .fetch_optional(pool)
    .await?;
    let invalid = |why: &str| Ok(Err(GrantError::InvalidGrant(why.to_owned())));
    let Some(row) = row else {
        return invalid("the code is unknown or was already used");
    };
    if row.expires_at <= Utc::now() {
        return invalid("the code has expired");
    }
    if row.client_id != client.as_str() {
        return invalid("the code was issued to another client");
    }
    let same_redirect =
        Redirect::parse(redirect_uri).is_ok_and(|r| r.as_sent() == row.redirect_uri);
    if !same_redirect {
        return invalid("redirect_uri differs from the authorization request's");
    }
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || !constant_time_eq(&pkce_challenge(verifier), &row.code_challenge) {
        return invalid("the PKCE code_verifier does not match the code_challenge");
    }
    let Ok(user) = UserId::parse(&row.user_id) else {
        return invalid("the code's user is unknown");
    };
    Ok(Ok(Redeemed {
        user,
        nonce: row.nonce,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects_are_accepted() {
        for good in [
            "http://127.0.0.1:8000",
            "http://localhost:18000/callback",
            "http://[::1]:5000/cb?x=1",
            "http://127.0.0.2:9/",
        ] {
            assert!(Redirect::parse(good).is_ok(), "{good}");
        }
        for (bad, error) in [
            ("", RedirectError::Missing),
            ("/callback", RedirectError::Malformed),
            ("https://evil.example/cb", RedirectError::NotLoopback),
            ("http://localhost.evil.example/", RedirectError::NotLoopback),
            ("http://127.0.0.1.nip.io/", RedirectError::NotLoopback),
            ("http://user@127.0.0.1:8000/", RedirectError::NotLoopback),
            ("http://127.0.0.1:8000/#frag", RedirectError::NotLoopback),
            ("javascript:alert(1)", RedirectError::NotLoopback),
        ] {
            assert_eq!(Redirect::parse(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn codes_and_errors_go_back_in_the_query_with_the_state() {
        let redirect = Redirect::parse("http://127.0.0.1:8000/cb?keep=1").unwrap();
        assert_eq!(
            redirect.with_code("abc", Some("s t")),
            "http://127.0.0.1:8000/cb?keep=1&code=abc&state=s+t"
        );
        let error = redirect.with_error(&GrantError::InvalidScope, None);
        assert!(error.starts_with("http://127.0.0.1:8000/cb?keep=1&error=invalid_scope&"));
    }

    #[test]
    fn authorization_requests_need_code_openid_and_s256() {
        let challenge = pkce_challenge("a-verifier-that-is-long-enough-to-be-valid-pkce");
        let request = |response_type, scope, method| AuthorizationRequest {
            response_type,
            scope,
            code_challenge: Some(&challenge),
            code_challenge_method: method,
        };
        assert!(request(Some("code"), Some("openid email"), Some("S256"))
            .challenge()
            .is_ok());
        assert_eq!(
            request(Some("token"), Some("openid"), Some("S256")).challenge(),
            Err(GrantError::UnsupportedResponseType)
        );
        assert_eq!(
            request(Some("code"), Some("email"), Some("S256")).challenge(),
            Err(GrantError::InvalidScope)
        );
        assert!(matches!(
            request(Some("code"), Some("openid"), Some("plain")).challenge(),
            Err(GrantError::InvalidRequest(_))
        ));
        assert!(matches!(
            request(Some("code"), Some("openid"), None).challenge(),
            Err(GrantError::InvalidRequest(_))
        ));
    }

    #[test]
    fn basic_credentials_name_a_public_client() {
        let header = format!("Basic {}", STANDARD.encode("ws-abc:"));
        assert_eq!(basic_client(&header), Ok(Some("ws-abc".into())));
        let secret = format!("Basic {}", STANDARD.encode("ws-abc:secret"));
        assert!(matches!(
            basic_client(&secret),
            Err(GrantError::InvalidClient(_))
        ));
        assert_eq!(basic_client("Bearer x"), Ok(None));
        assert!(basic_client("Basic !!!").is_err());
    }
}
