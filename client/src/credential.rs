//! kubectl's side of the OpenID provider, run on users' machines.
//!
//! * `hexabase login --server … --workspace …` signs a workspace's kubectl in (`oauth`: the
//!   code flow with PKCE through the user's browser, or the device flow, with the workspace id
//!   as client id). It keeps the grant's refresh token in `~/.hexabase/grants/<workspace>.json`
//!   (mode 0600).
//! * `hexabase kubectl-credential` is kubectl's exec credential plugin
//!   (`client.authentication.k8s.io/v1`): it prints an `ExecCredential` with a workspace token,
//!   cached in `~/.hexabase/cache/<workspace>.json` until shortly before it expires. A fresh token
//!   comes from the grant's refresh token (rotated on every use; concurrent kubectl runs take
//!   turns on a file lock), or, without a grant, from `POST /api/v1/workspaces/{ws}/token` with
//!   a control-plane access token: the CLI's session (`hexabase auth login`) for the same
//!   server, else `HEXABASE_TOKEN` or `~/.hexabase/token`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{chain, ClientError};
use crate::files::{dot_dir, lock_beside, read_json, write_private};
use crate::id::is_id;
use crate::oauth::{self, payload, Provider, Refreshed, SignIn, TokenSet};
use crate::pkce::constant_time_eq;
use crate::session::{self, same_server, Session};

/// A cached token is used until this long before it expires.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::seconds(60);

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

fn workspace_file(kind: &str, workspace: &str) -> PathBuf {
    dot_dir().join(kind).join(format!("{workspace}.json"))
}

fn access_token() -> Option<String> {
    if let Ok(token) = std::env::var("HEXABASE_TOKEN") {
        if !token.trim().is_empty() {
            return Some(token.trim().to_owned());
        }
    }
    std::fs::read_to_string(dot_dir().join("token"))
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn read_cache(path: &Path) -> Option<Cached> {
    let cached: Cached = read_json(path)?;
    (cached.expires_at - RENEW_BEFORE > Utc::now()).then_some(cached)
}

/// The workspace id, checked (it names files and goes into URLs).
fn workspace_id(workspace: &str) -> Result<&str, ClientError> {
    if is_id(workspace, "ws-") {
        Ok(workspace)
    } else {
        Err(ClientError::Workspace(workspace.chars().take(80).collect()))
    }
}

fn client(
    server: &str,
    certificate_authority: Option<&Path>,
) -> Result<reqwest::Client, ClientError> {
    oauth::http_client(server, certificate_authority, Default::default())
}

/// The `ExecCredential` for `workspace`, from the cache or fresh from `server`.
pub async fn exec_credential(
    server: &str,
    workspace: &str,
    certificate_authority: Option<&Path>,
) -> Result<Value, ClientError> {
    let workspace = workspace_id(workspace)?;
    let cache = workspace_file("cache", workspace);
    let token = match read_cache(&cache) {
        Some(cached) => cached,
        None => {
            let http = client(server, certificate_authority)?;
            let grant_file = workspace_file("grants", workspace);
            if grant_file.exists() {
                refresh(&http, server, workspace, &grant_file, &cache).await?
            } else {
                let fresh = match with_session(&http, server, workspace).await? {
                    Some(fresh) => fresh,
                    None => {
                        let token = access_token().ok_or_else(|| ClientError::NotSignedIn {
                            server: server.to_owned(),
                            workspace: workspace.to_owned(),
                        })?;
                        issue(&http, server, workspace, &token).await?
                    }
                };
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

/// A token issued with the CLI's session, when it is one with `server`; its access token is
/// renewed as the CLI renews it (and once more if the control plane refuses it).
async fn with_session(
    http: &reqwest::Client,
    server: &str,
    workspace: &str,
) -> Result<Option<Cached>, ClientError> {
    if !Session::load().is_ok_and(|s| same_server(&s.server, server)) {
        return Ok(None);
    }
    let session = session::current(None).await?;
    match issue(http, server, workspace, &session.access_token).await {
        Err(ClientError::Refused { status: 401, .. }) => {
            let renewed = session::current(Some(&session.access_token)).await?;
            issue(http, server, workspace, &renewed.access_token)
                .await
                .map(Some)
        }
        issued => issued.map(Some),
    }
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
    let lock = lock_beside(grant_file).await?;
    if let Some(cached) = read_cache(cache) {
        return Ok(cached);
    }
    let not_signed_in = || ClientError::NotSignedIn {
        server: server.to_owned(),
        workspace: workspace.to_owned(),
    };
    let grant: Grant = read_json(grant_file).ok_or_else(not_signed_in)?;
    if !same_server(&grant.server, server) {
        return Err(not_signed_in());
    }
    let refreshed = oauth::refresh(
        http,
        server,
        &grant.token_endpoint,
        workspace,
        &grant.refresh_token,
    )
    .await?;
    let set = match refreshed {
        Refreshed::Tokens(set) => set,
        // The grant is no good any more: sign in again.
        Refreshed::Ended(reason) => {
            let _ = std::fs::remove_file(grant_file);
            return Err(ClientError::GrantEnded {
                server: server.to_owned(),
                workspace: workspace.to_owned(),
                reason,
            });
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

fn cached_from(set: &TokenSet) -> Cached {
    Cached {
        token: set.id_token.clone(),
        expires_at: Utc::now() + chrono::Duration::seconds(set.expires_in.max(0)),
    }
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

/// Sign `workspace`'s kubectl in; returns the groups of the first token.
pub async fn login(workspace: &str, how: &SignIn) -> Result<Vec<String>, ClientError> {
    let server = how.server.as_str();
    let workspace = workspace_id(workspace)?;
    let http = client(server, how.certificate_authority.as_deref())?;
    let provider = Provider::discover(&http, server).await?;
    let signed_in = provider.sign_in(workspace, how).await?;
    let set = signed_in.tokens;
    // The ID token comes straight from the token endpoint over TLS; it must be for this
    // workspace (aud) and, in the code flow, answer this request (nonce).
    let claims = payload(&set.id_token)
        .ok_or_else(|| ClientError::Login("the ID token is unreadable".into()))?;
    let answers = match &signed_in.nonce {
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
    let grant_file = workspace_file("grants", workspace);
    let lock = lock_beside(&grant_file).await?;
    write_private(
        &grant_file,
        &Grant {
            server: server.to_owned(),
            token_endpoint: provider.endpoint("token_endpoint")?,
            refresh_token: set.refresh_token.clone(),
        },
    )?;
    write_private(&workspace_file("cache", workspace), &cached_from(&set))?;
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
