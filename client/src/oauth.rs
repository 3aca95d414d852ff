//! The client's side of the control plane's OpenID provider, for every client on users'
//! machines — kubectl for a workspace (client id = the workspace id) and the `hexabase` CLI
//! (`hexabase-cli`): discovery, the authorization code flow with PKCE back to a one-shot
//! loopback listener, the device flow, and the token endpoint (with its refresh grant).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{chain, ClientError};
use crate::pkce::{self, constant_time_eq, random_token};

/// What the token endpoint answers.
#[derive(Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

pub enum TokenFailure {
    /// The endpoint answered with an OAuth error: its code and description, and what to tell
    /// the user when the caller has nothing better to say.
    OAuth {
        error: String,
        description: String,
        refused: ClientError,
    },
    Other(ClientError),
}

/// An HTTP client for the control plane at `server`, trusting the CA in `certificate_authority`
/// too; it follows no redirects.
pub fn http_client(
    server: &str,
    certificate_authority: Option<&Path>,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers);
    if let Some(path) = certificate_authority {
        let ca = |reason: String| ClientError::Ca {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| ClientError::unreachable(server, e.to_string()))
}

/// A request to the token endpoint.
pub async fn token_request(
    http: &reqwest::Client,
    server: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenSet, TokenFailure> {
    let response = http
        .post(endpoint)
        .form(form)
        .send()
        .await
        .map_err(|e| TokenFailure::Other(ClientError::unreachable(server, chain(&e))))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&body).map_err(|e| {
            TokenFailure::Other(ClientError::unreachable(
                server,
                format!("unreadable token response: {e}"),
            ))
        });
    }
    let refused = ClientError::refused(server, status, &body);
    Err(match serde_json::from_str::<OAuthError>(&body) {
        Ok(error) => TokenFailure::OAuth {
            error: error.error,
            description: error.error_description,
            refused,
        },
        Err(_) => TokenFailure::Other(refused),
    })
}

/// What the refresh grant gives.
pub enum Refreshed {
    Tokens(TokenSet),
    /// The refresh token is no good any more (expired, revoked, already rotated): sign in
    /// again.
    Ended(String),
}

/// New tokens for `refresh_token` (rotated: the caller must keep the new one at once).
pub async fn refresh(
    http: &reqwest::Client,
    server: &str,
    token_endpoint: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<Refreshed, ClientError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ];
    match token_request(http, server, token_endpoint, &form).await {
        Ok(set) => Ok(Refreshed::Tokens(set)),
        Err(TokenFailure::OAuth {
            error, description, ..
        }) if error == "invalid_grant" => Ok(Refreshed::Ended(description)),
        Err(TokenFailure::OAuth { refused, .. } | TokenFailure::Other(refused)) => Err(refused),
    }
}

/// How a sign-in runs (`hexabase login`, `hexabase auth login`).
#[derive(Debug, Clone, clap::Args)]
pub struct SignIn {
    /// The control plane's URL.
    #[arg(long)]
    pub server: String,
    /// A CA certificate (PEM) to trust for the control plane.
    #[arg(long, env = "HEXABASE_CA_FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Address of the one-shot loopback listener the browser comes back to.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Only print the URL; do not start a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// For a machine without a browser: print a code to enter at the control plane's
    /// device page from any signed-in browser, and wait for it to be allowed there.
    #[arg(long, conflicts_with_all = ["listen", "no_browser"])]
    pub device: bool,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// The tokens of a sign-in, and in the code flow the nonce the ID token must carry.
pub struct SignedIn {
    pub tokens: TokenSet,
    pub nonce: Option<String>,
}

/// The control plane's OpenID provider, as its discovery document describes it.
pub struct Provider<'a> {
    http: &'a reqwest::Client,
    server: &'a str,
    discovery: Value,
}

impl<'a> Provider<'a> {
    pub async fn discover(http: &'a reqwest::Client, server: &'a str) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::unreachable(server, reason);
        let discovery = http
            .get(format!(
                "{}/.well-known/openid-configuration",
                server.trim_end_matches('/')
            ))
            .send()
            .await
            .map_err(|e| unreachable(chain(&e)))?
            .json()
            .await
            .map_err(|e| unreachable(format!("unreadable discovery document: {e}")))?;
        Ok(Self {
            http,
            server,
            discovery,
        })
    }

    pub fn endpoint(&self, name: &str) -> Result<String, ClientError> {
        self.discovery[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                ClientError::unreachable(
                    self.server,
                    format!("the discovery document has no {name}"),
                )
            })
    }

    /// Sign `client_id` in: the code flow through the user's browser, or the device flow.
    pub async fn sign_in(&self, client_id: &str, how: &SignIn) -> Result<SignedIn, ClientError> {
        let token_endpoint = self.endpoint("token_endpoint")?;
        if how.device {
            let device_endpoint = self.endpoint("device_authorization_endpoint")?;
            let timeout = Duration::from_secs(how.timeout);
            let tokens = self
                .device_grant(client_id, &device_endpoint, &token_endpoint, timeout)
                .await?;
            Ok(SignedIn {
                tokens,
                nonce: None,
            })
        } else {
            let authorize = self.endpoint("authorization_endpoint")?;
            let (tokens, nonce) = self
                .code_grant(client_id, &authorize, &token_endpoint, how)
                .await?;
            Ok(SignedIn {
                tokens,
                nonce: Some(nonce),
            })
        }
    }

    /// The device flow: show the code, poll the token endpoint until someone allowed (or
    /// denied) it, it expired, or `timeout` passed.
    async fn device_grant(
        &self,
        client_id: &str,
        device_endpoint: &str,
        token_endpoint: &str,
        timeout: Duration,
    ) -> Result<TokenSet, ClientError> {
        #[derive(Deserialize)]
        struct Started {
            device_code: String,
            user_code: String,
            verification_uri: String,
            verification_uri_complete: Option<String>,
            expires_in: u64,
            interval: Option<u64>,
        }
        let (http, server) = (self.http, self.server);
        let unreachable = |reason: String| ClientError::unreachable(server, reason);
        let response = http
            .post(device_endpoint)
            .form(&[("client_id", client_id), ("scope", "openid")])
            .send()
            .await
            .map_err(|e| unreachable(chain(&e)))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ClientError::refused(server, status, &body));
        }
        let started: Started = serde_json::from_str(&body)
            .map_err(|e| unreachable(format!("unreadable device authorization: {e}")))?;
        match &started.verification_uri_complete {
            Some(complete) => eprintln!(
                "On any device, open {complete} in a browser signed in to the control plane\n\
                 (or open {} and enter the code {})",
                started.verification_uri, started.user_code
            ),
            None => eprintln!(
                "On any device, open {} in a browser signed in to the control plane and enter \
                 the code {}",
                started.verification_uri, started.user_code
            ),
        }
        let deadline =
            tokio::time::Instant::now() + timeout.min(Duration::from_secs(started.expires_in));
        let mut interval = Duration::from_secs(started.interval.unwrap_or(5).max(1));
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started.device_code.as_str()),
            ("client_id", client_id),
        ];
        loop {
            if tokio::time::Instant::now() + interval > deadline {
                return Err(ClientError::Login(format!(
                    "the code was not allowed within {}s",
                    timeout
                        .min(Duration::from_secs(started.expires_in))
                        .as_secs()
                )));
            }
            tokio::time::sleep(interval).await;
            match token_request(http, server, token_endpoint, &form).await {
                Ok(set) => return Ok(set),
                Err(TokenFailure::OAuth { error, refused, .. }) => match error.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => interval += Duration::from_secs(5),
                    "access_denied" => {
                        return Err(ClientError::Login("the request was denied".into()))
                    }
                    "expired_token" => {
                        return Err(ClientError::Login(
                            "the code expired before it was allowed".into(),
                        ))
                    }
                    _ => return Err(refused),
                },
                // Rate-limited (other clients behind the same address): wait longer, as for
                // slow_down.
                Err(TokenFailure::Other(ClientError::Refused { status: 429, .. })) => {
                    interval += Duration::from_secs(5)
                }
                Err(TokenFailure::Other(e)) => return Err(e),
            }
        }
    }

    /// The authorization code flow with PKCE, back to a one-shot loopback listener; the tokens
    /// and the nonce the ID token must carry.
    async fn code_grant(
        &self,
        client_id: &str,
        authorize: &str,
        token_endpoint: &str,
        how: &SignIn,
    ) -> Result<(TokenSet, String), ClientError> {
        let listen = how.listen.as_str();
        let (open_browser, timeout) = (!how.no_browser, Duration::from_secs(how.timeout));
        let unreachable = |reason: String| ClientError::unreachable(self.server, reason);

        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| ClientError::Login(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| ClientError::Login(e.to_string()))?;
        if !bound.ip().is_loopback() {
            return Err(ClientError::Login(format!(
                "--listen must be a loopback address (127.0.0.1, ::1), not {bound}"
            )));
        }
        let redirect_uri = format!("http://{bound}/callback");
        let secret = || random_token().map_err(|e| ClientError::Login(e.to_string()));
        let (verifier, state, nonce) = (secret()?, secret()?, secret()?);
        let mut url = reqwest::Url::parse(authorize)
            .map_err(|e| unreachable(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce::challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        eprintln!("Open this URL in a browser signed in to the control plane:\n{url}");
        if open_browser {
            for opener in ["xdg-open", "open"] {
                let spawned = std::process::Command::new(opener)
                    .arg(url.as_str())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
                if spawned.is_ok() {
                    break;
                }
            }
        }

        let code = tokio::time::timeout(timeout, callback(&listener, &state))
            .await
            .map_err(|_| {
                ClientError::Login(format!(
                    "no answer from the browser within {}s",
                    timeout.as_secs()
                ))
            })??;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", client_id),
        ];
        let set = token_request(self.http, self.server, token_endpoint, &form)
            .await
            .map_err(|failure| match failure {
                TokenFailure::OAuth {
                    error, description, ..
                } if error == "invalid_grant" => ClientError::Login(description),
                TokenFailure::OAuth { refused, .. } | TokenFailure::Other(refused) => refused,
            })?;
        Ok((set, nonce))
    }
}

/// The claims of a JWT, unverified (for reading a token this process just received).
pub fn payload(jwt: &str) -> Option<Value> {
    let body = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// Wait for the browser to come back with `code` and our `state`; other requests (a favicon,
/// an answer with another `state`) are turned away and the wait goes on.
async fn callback(listener: &TcpListener, state: &str) -> Result<String, ClientError> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| ClientError::Login(e.to_string()))?;
        let mut buffer = vec![0u8; 8192];
        let mut read = 0;
        // A connection that says nothing (a browser's preconnect) must not hold up the answer.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while read < buffer.len() {
                match stream.read(&mut buffer[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        })
        .await;
        let request = String::from_utf8_lossy(&buffer[..read]);
        let target = request
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default();
        let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        if !query
            .get("state")
            .is_some_and(|s| constant_time_eq(s, state))
        {
            // Not the answer to this sign-in: keep waiting for it.
            let page = "This is not the sign-in this terminal is waiting for.";
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            continue;
        }
        let outcome = if let Some(error) = query.get("error") {
            Err(format!(
                "{error}: {}",
                query.get("error_description").map_or("", String::as_str)
            ))
        } else {
            query
                .get("code")
                .cloned()
                .ok_or_else(|| "the answer has no code".to_owned())
        };
        let page = match &outcome {
            Ok(_) => "Signed in. You can close this window and return to the terminal.".to_owned(),
            Err(reason) => format!("Sign-in failed: {reason}"),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        return outcome.map_err(ClientError::Login);
    }
}
