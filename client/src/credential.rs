//! kubectl's side of the OpenID provider, run on users' machines.
//!
//! * `hexabase login --server … --workspace …` signs a workspace's kubectl in: authorization
//!   code flow with PKCE against the control plane, the browser (signed in to the control plane)
//!   coming back to a one-shot loopback listener. It keeps the grant's refresh token in
//!   `~/.hexabase/grants/<workspace>.json` (mode 0600).
//! * `hexabase kubectl-credential` is kubectl's exec credential plugin
//!   (`client.authentication.k8s.io/v1`): it prints an `ExecCredential` with a workspace token,
//!   cached in `~/.hexabase/cache/<workspace>.json` until shortly before it expires. A fresh token
//!   comes from the grant's refresh token (rotated on every use; concurrent kubectl runs take
//!   turns on a file lock), or, without a grant, from `POST /api/v1/workspaces/{ws}/token` with
//!   the caller's control-plane access token (`HEXABASE_TOKEN` or `~/.hexabase/token`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::pkce::{self, constant_time_eq, random_token};

/// A cached token is used until this long before it expires.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "not signed in to workspace {workspace}: run `hexabase login --server {server} \
         --workspace {workspace}` (or set HEXABASE_TOKEN to a control-plane access token)"
    )]
    NotSignedIn { server: String, workspace: String },
    #[error(
        "the sign-in to workspace {workspace} has ended ({reason}): run `hexabase login \
         --server {server} --workspace {workspace}` again"
    )]
    GrantEnded {
        server: String,
        workspace: String,
        reason: String,
    },
    #[error("the control plane at {server} answered {status}: {body}")]
    Refused {
        server: String,
        status: u16,
        body: String,
    },
    #[error("cannot reach the control plane at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("`{0}` is not a workspace id")]
    Workspace(String),
    #[error("certificate authority {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("sign-in failed: {0}")]
    Login(String),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    token: String,
    expires_at: DateTime<Utc>,
}

/// What `hexabase login` leaves for the plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    server: String,
    token_endpoint: String,
    refresh_token: String,
}

#[derive(Deserialize)]
struct Issued {
    token: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct TokenSet {
    id_token: String,
    expires_in: i64,
    refresh_token: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// An error with its causes (`a: b: c`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn dot_dir(kind: &str, workspace: &str, extension: &str) -> PathBuf {
    home()
        .join(".hexabase")
        .join(kind)
        .join(format!("{workspace}.{extension}"))
}

fn access_token() -> Option<String> {
    if let Ok(token) = std::env::var("HEXABASE_TOKEN") {
        if !token.trim().is_empty() {
            return Some(token.trim().to_owned());
        }
    }
    std::fs::read_to_string(home().join(".hexabase").join("token"))
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn read_cache(path: &Path) -> Option<Cached> {
    let cached: Cached = read_json(path)?;
    (cached.expires_at - RENEW_BEFORE > Utc::now()).then_some(cached)
}

/// Write `value` readable by the user only, replacing the file in one step.
fn write_private(path: &Path, value: &impl Serialize) -> Result<(), ClientError> {
    let failed = |e: &dyn std::fmt::Display| ClientError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    }
    let bytes = serde_json::to_vec(value).map_err(|e| failed(&e))?;
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(|e| failed(&e))?;
    std::io::Write::write_all(&mut file, &bytes).map_err(|e| failed(&e))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| failed(&e))
}

/// The workspace id, checked (it names files and goes into URLs): `ws-` and 32 lower-case hex
/// digits, as the control plane makes them.
fn workspace_id(workspace: &str) -> Result<&str, ClientError> {
    let well_formed = workspace.strip_prefix("ws-").is_some_and(|suffix| {
        suffix.len() == 32
            && suffix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if well_formed {
        Ok(workspace)
    } else {
        Err(ClientError::Workspace(workspace.chars().take(80).collect()))
    }
}

fn client(
    server: &str,
    certificate_authority: Option<&Path>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none());
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

/// The `ExecCredential` for `workspace`, from the cache or fresh from `server`.
pub async fn exec_credential(
    server: &str,
    workspace: &str,
    certificate_authority: Option<&Path>,
) -> Result<Value, ClientError> {
    let workspace = workspace_id(workspace)?;
    let cache = dot_dir("cache", workspace, "json");
    let token = match read_cache(&cache) {
        Some(cached) => cached,
        None => {
            let http = client(server, certificate_authority)?;
            let grant_file = dot_dir("grants", workspace, "json");
            if grant_file.exists() {
                refresh(&http, server, workspace, &grant_file, &cache).await?
            } else {
                let token = access_token().ok_or_else(|| ClientError::NotSignedIn {
                    server: server.to_owned(),
                    workspace: workspace.to_owned(),
                })?;
                let fresh = issue(&http, server, workspace, &token).await?;
                write_private(&cache, &fresh)?;
                fresh
            }
        }
    };
    Ok(json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "token": token.token,
            "expirationTimestamp": token.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }))
}

/// A token from the grant's refresh token, which is rotated: one process at a time (a lock
/// file beside the grant), and a process that waited uses the token its predecessor cached.
async fn refresh(
    http: &reqwest::Client,
    server: &str,
    workspace: &str,
    grant_file: &Path,
    cache: &Path,
) -> Result<Cached, ClientError> {
    let lock = lock_grant(grant_file).await?;
    if let Some(cached) = read_cache(cache) {
        return Ok(cached);
    }
    let grant: Grant = read_json(grant_file).ok_or_else(|| ClientError::NotSignedIn {
        server: server.to_owned(),
        workspace: workspace.to_owned(),
    })?;
    if grant.server.trim_end_matches('/') != server.trim_end_matches('/') {
        return Err(ClientError::NotSignedIn {
            server: server.to_owned(),
            workspace: workspace.to_owned(),
        });
    }
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", grant.refresh_token.as_str()),
        ("client_id", workspace),
    ];
    let set = match token_request(http, server, &grant.token_endpoint, &form).await {
        Ok(set) => set,
        // The grant is no good any more: sign in again.
        Err(TokenFailure::OAuth {
            error, description, ..
        }) if error == "invalid_grant" => {
            let _ = std::fs::remove_file(grant_file);
            return Err(ClientError::GrantEnded {
                server: server.to_owned(),
                workspace: workspace.to_owned(),
                reason: description,
            });
        }
        Err(TokenFailure::OAuth { refused, .. } | TokenFailure::Other(refused)) => {
            return Err(refused)
        }
    };
    write_private(
        grant_file,
        &Grant {
            refresh_token: set.refresh_token.clone(),
            ..grant
        },
    )?;
    // Cached before the next process in line looks.
    let fresh = cached_from(&set);
    write_private(cache, &fresh)?;
    drop(lock);
    Ok(fresh)
}

/// Hold the grant's lock file (released when the returned file is dropped).
async fn lock_grant(grant_file: &Path) -> Result<File, ClientError> {
    let lock_path = grant_file.with_extension("lock");
    let failed = |reason: String| ClientError::File {
        path: lock_path.display().to_string(),
        reason,
    };
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let lock = File::create(&lock_path).map_err(|e| failed(e.to_string()))?;
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))
}

fn cached_from(set: &TokenSet) -> Cached {
    Cached {
        token: set.id_token.clone(),
        expires_at: Utc::now() + chrono::Duration::seconds(set.expires_in.max(0)),
    }
}

enum TokenFailure {
    /// The endpoint answered with an OAuth error: its code and description, and what to tell
    /// the user when the caller has nothing better to say.
    OAuth {
        error: String,
        description: String,
        refused: ClientError,
    },
    Other(ClientError),
}

impl ClientError {
    fn unreachable(server: &str, reason: impl Into<String>) -> Self {
        Self::Unreachable {
            server: server.to_owned(),
            reason: reason.into(),
        }
    }

    fn refused(server: &str, status: reqwest::StatusCode, body: &str) -> Self {
        Self::Refused {
            server: server.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        }
    }
}

async fn token_request(
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

/// A token through the REST API with a control-plane access token.
async fn issue(
    http: &reqwest::Client,
    server: &str,
    workspace: &str,
    access_token: &str,
) -> Result<Cached, ClientError> {
    let url = format!(
        "{}/api/v1/workspaces/{workspace}/token",
        server.trim_end_matches('/')
    );
    let response = http
        .post(url)
        .bearer_auth(access_token)
        .json(&json!({}))
        .send()
        .await
        .map_err(|e| ClientError::unreachable(server, chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(ClientError::refused(server, status, &body));
    }
    let issued: Issued = response
        .json()
        .await
        .map_err(|e| ClientError::unreachable(server, e.to_string()))?;
    Ok(Cached {
        token: issued.token,
        expires_at: issued.expires_at,
    })
}

/// How `hexabase login` runs.
pub struct LoginOptions<'a> {
    pub server: &'a str,
    pub workspace: &'a str,
    pub certificate_authority: Option<&'a Path>,
    /// Where the loopback listener binds (`127.0.0.1:0`: any free port).
    pub listen: &'a str,
    /// Try to open the URL in a browser (`xdg-open` / `open`).
    pub open_browser: bool,
    /// The device flow instead: a code to enter in any signed-in browser.
    pub device: bool,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

/// Sign `workspace`'s kubectl in; returns the groups of the first token.
pub async fn login(options: LoginOptions<'_>) -> Result<Vec<String>, ClientError> {
    let LoginOptions {
        server,
        workspace,
        certificate_authority,
        listen,
        open_browser,
        device,
        timeout,
    } = options;
    let workspace = workspace_id(workspace)?;
    let http = client(server, certificate_authority)?;
    let unreachable = |reason: String| ClientError::unreachable(server, reason);
    let discovery: Value = http
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
    let endpoint = |name: &str| {
        discovery[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| unreachable(format!("the discovery document has no {name}")))
    };
    let token_endpoint = endpoint("token_endpoint")?;
    let (set, nonce) = if device {
        let set = device_grant(
            &http,
            server,
            workspace,
            &endpoint("device_authorization_endpoint")?,
            &token_endpoint,
            timeout,
        )
        .await?;
        (set, None)
    } else {
        let authorize = endpoint("authorization_endpoint")?;
        let (set, nonce) = code_grant(
            &http,
            server,
            workspace,
            &authorize,
            &token_endpoint,
            listen,
            open_browser,
            timeout,
        )
        .await?;
        (set, Some(nonce))
    };
    // The ID token comes straight from the token endpoint over TLS; it must be for this
    // workspace (aud) and, in the code flow, answer this request (nonce).
    let claims = payload(&set.id_token)
        .ok_or_else(|| ClientError::Login("the ID token is unreadable".into()))?;
    let answers = match &nonce {
        Some(nonce) => claims["nonce"]
            .as_str()
            .is_some_and(|n| constant_time_eq(n, nonce)),
        None => true,
    };
    if claims["aud"] != workspace || !answers {
        return Err(ClientError::Login(
            "the ID token is not the answer to this sign-in (audience or nonce differ)".into(),
        ));
    }
    let grant_file = dot_dir("grants", workspace, "json");
    let lock = lock_grant(&grant_file).await?;
    write_private(
        &grant_file,
        &Grant {
            server: server.to_owned(),
            token_endpoint,
            refresh_token: set.refresh_token.clone(),
        },
    )?;
    write_private(&dot_dir("cache", workspace, "json"), &cached_from(&set))?;
    drop(lock);
    let groups = claims["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(groups)
}

/// The device flow: show the code, poll the token endpoint until someone allowed (or denied)
/// it, it expired, or `timeout` passed.
async fn device_grant(
    http: &reqwest::Client,
    server: &str,
    workspace: &str,
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
    let unreachable = |reason: String| ClientError::unreachable(server, reason);
    let response = http
        .post(device_endpoint)
        .form(&[("client_id", workspace), ("scope", "openid")])
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
        ("client_id", workspace),
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
                "access_denied" => return Err(ClientError::Login("the request was denied".into())),
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
#[allow(clippy::too_many_arguments)]
async fn code_grant(
    http: &reqwest::Client,
    server: &str,
    workspace: &str,
    authorize: &str,
    token_endpoint: &str,
    listen: &str,
    open_browser: bool,
    timeout: Duration,
) -> Result<(TokenSet, String), ClientError> {
    let unreachable = |reason: String| ClientError::unreachable(server, reason);

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
        .append_pair("client_id", workspace)
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
        ("client_id", workspace),
    ];
    let set = token_request(http, server, token_endpoint, &form)
        .await
        .map_err(|failure| match failure {
            TokenFailure::OAuth {
                error, description, ..
            } if error == "invalid_grant" => ClientError::Login(description),
            TokenFailure::OAuth { refused, .. } | TokenFailure::Other(refused) => refused,
        })?;
    Ok((set, nonce))
}

/// The claims of a JWT, unverified (for reading a token this process just received).
fn payload(jwt: &str) -> Option<Value> {
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
