//! The CLI's session with the control plane, kept in `~/.hexabase/session.json` (mode 0600,
//! replaced in one step): the server, the CA to trust for it, the session's access token and
//! its expiry, its rotating refresh token, and the position of the last write made through it.
//!
//! The access token is renewed shortly before it expires, or when the control plane refused
//! it; the refresh token rotates on every use and a reused one ends the session, so renewals
//! take turns on `~/.hexabase/session.lock` and a run that waited uses the token its
//! predecessor saved.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::files::{self, dot_dir, lock_beside, read_json, write_private};
use crate::oauth::{self, Refreshed, TokenSet};

/// The CLI's client id at the control plane's OpenID provider.
pub const CLI_CLIENT: &str = "hexabase-cli";

/// An access token is renewed this long before it expires.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The control plane's URL.
    pub server: String,
    /// A CA certificate (PEM) to trust for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    /// Renews the access token; rotated on every use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Where the refresh token is redeemed (default `<server>/oauth/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The position of the last write made through this session: reads pass it, so that a
    /// command sees what the one before it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

/// `~/.hexabase/session.json`.
pub fn path() -> PathBuf {
    dot_dir().join("session.json")
}

/// The same control plane (ignoring a trailing slash).
pub fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Session {
    /// A new session from the tokens of a sign-in.
    pub fn signed_in(
        server: &str,
        certificate_authority: Option<PathBuf>,
        token_endpoint: String,
        tokens: TokenSet,
    ) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            certificate_authority,
            access_token: tokens.access_token,
            expires_at: expiry(tokens.expires_in),
            refresh_token: Some(tokens.refresh_token),
            token_endpoint: Some(token_endpoint),
            position: None,
        }
    }

    /// The saved session; `NoSession` when there is none.
    pub fn load() -> Result<Self, ClientError> {
        let path = path();
        if !path.exists() {
            return Err(ClientError::NoSession);
        }
        read_json(&path).ok_or_else(|| ClientError::File {
            path: path.display().to_string(),
            reason: "not a session file: sign in again with `hexabase auth login --server URL`"
                .into(),
        })
    }

    pub fn save(&self) -> Result<(), ClientError> {
        write_private(&path(), self)
    }

    /// An HTTP client for the session's control plane, trusting its CA, sending `headers`.
    pub fn http(
        &self,
        headers: reqwest::header::HeaderMap,
    ) -> Result<reqwest::Client, ClientError> {
        oauth::http_client(&self.server, self.certificate_authority.as_deref(), headers)
    }

    fn token_endpoint(&self) -> String {
        self.token_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/oauth/token", self.server.trim_end_matches('/')))
    }

    /// Whether the access token must be renewed before use: `refused` is a token the control
    /// plane just turned away (renewed unless the file holds another one by now).
    fn needs_renewal(&self, refused: Option<&str>) -> bool {
        match refused {
            Some(token) => self.access_token == token,
            None => self.expires_at - RENEW_BEFORE <= Utc::now(),
        }
    }
}

fn expiry(expires_in: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(expires_in.max(0))
}

/// The session with an access token good for use now: the saved one, or a renewed one when it
/// is about to expire or was `refused`.
pub async fn current(refused: Option<&str>) -> Result<Session, ClientError> {
    let session = Session::load()?;
    if !session.needs_renewal(refused) {
        return Ok(session);
    }
    let lock = lock_beside(&path()).await?;
    // Another run may have renewed it while this one waited for the lock.
    let session = Session::load()?;
    if !session.needs_renewal(refused) {
        return Ok(session);
    }
    let Some(refresh_token) = session.refresh_token.clone() else {
        return match refused {
            // Without a refresh token the access token is tried as it is, until refused.
            None => Ok(session),
            Some(_) => Err(ClientError::SessionEnded {
                server: session.server,
                reason: "the access token was refused and there is no refresh token".into(),
            }),
        };
    };
    let http = session.http(Default::default())?;
    let refreshed = oauth::refresh(
        &http,
        &session.server,
        &session.token_endpoint(),
        CLI_CLIENT,
        &refresh_token,
    )
    .await?;
    match refreshed {
        Refreshed::Tokens(tokens) => {
            let renewed = Session {
                access_token: tokens.access_token,
                expires_at: expiry(tokens.expires_in),
                refresh_token: Some(tokens.refresh_token),
                ..session
            };
            // Saved before the next run in line looks.
            renewed.save()?;
            drop(lock);
            Ok(renewed)
        }
        Refreshed::Ended(reason) => {
            files::remove(&path())?;
            Err(ClientError::SessionEnded {
                server: session.server,
                reason,
            })
        }
    }
}

/// Keep `position` (of a write just made) for the reads that follow.
pub async fn record_position(position: i64) -> Result<(), ClientError> {
    let _lock = lock_beside(&path()).await?;
    let mut session = Session::load()?;
    if session.position.is_some_and(|known| known >= position) {
        return Ok(());
    }
    session.position = Some(position);
    session.save()
}

/// Forget the session (after signing out).
pub async fn remove() -> Result<(), ClientError> {
    let _lock = lock_beside(&path()).await?;
    files::remove(&path())
}
