//! `hexabase kubectl-credential`: kubectl's exec credential plugin
//! (`client.authentication.k8s.io/v1`). It prints an `ExecCredential` with a workspace token from
//! the control plane, cached until shortly before it expires, so kubectl asks the control plane
//! about once per token lifetime. It signs in to the control plane with the caller's access
//! token: `HEXABASE_TOKEN`, or the file `~/.hexabase/token`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A cached token is used until this long before it expires.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "not signed in to the control plane: set HEXABASE_TOKEN or write the access token to {0}"
    )]
    NotSignedIn(String),
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    token: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Issued {
    token: String,
    expires_at: DateTime<Utc>,
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

fn access_token() -> Result<String, CredentialError> {
    if let Ok(token) = std::env::var("HEXABASE_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    let file = home().join(".hexabase").join("token");
    std::fs::read_to_string(&file)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CredentialError::NotSignedIn(file.display().to_string()))
}

fn cache_file(workspace: &str) -> PathBuf {
    home()
        .join(".hexabase")
        .join("cache")
        .join(format!("{workspace}.json"))
}

fn read_cache(path: &Path) -> Option<Cached> {
    let cached: Cached = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    (cached.expires_at - RENEW_BEFORE > Utc::now()).then_some(cached)
}

fn write_cache(path: &Path, cached: &Cached) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if let Ok(mut file) = options.open(path) {
        if let Ok(bytes) = serde_json::to_vec(cached) {
            let _ = std::io::Write::write_all(&mut file, &bytes);
        }
    }
}

/// The `ExecCredential` for `workspace`, from the cache or fresh from `server`.
pub async fn exec_credential(
    server: &str,
    workspace: &str,
    certificate_authority: Option<&Path>,
) -> Result<serde_json::Value, CredentialError> {
    let valid_workspace = hexabase_command::WorkspaceId::parse(workspace).is_ok();
    if !valid_workspace {
        return Err(CredentialError::Workspace(
            workspace.chars().take(80).collect(),
        ));
    }
    let cache = cache_file(workspace);
    let cached = match read_cache(&cache) {
        Some(cached) => cached,
        None => {
            let fresh = fetch(server, workspace, certificate_authority).await?;
            write_cache(&cache, &fresh);
            fresh
        }
    };
    Ok(json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "token": cached.token,
            "expirationTimestamp": cached.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }))
}

async fn fetch(
    server: &str,
    workspace: &str,
    certificate_authority: Option<&Path>,
) -> Result<Cached, CredentialError> {
    let unreachable = |reason: String| CredentialError::Unreachable {
        server: server.to_owned(),
        reason,
    };
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(path) = certificate_authority {
        let ca = |reason: String| CredentialError::Ca {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|e| unreachable(e.to_string()))?;
    let url = format!(
        "{}/api/v1/workspaces/{workspace}/token",
        server.trim_end_matches('/')
    );
    let response = client
        .post(url)
        .bearer_auth(access_token()?)
        .json(&json!({}))
        .send()
        .await
        .map_err(|e| unreachable(chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(CredentialError::Refused {
            server: server.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        });
    }
    let issued: Issued = response
        .json()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(Cached {
        token: issued.token,
        expires_at: issued.expires_at,
    })
}
