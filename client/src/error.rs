//! What can go wrong on the user's machine when signing in and getting tokens.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "not signed in to workspace {workspace}: run `hexabase login --server {server} \
         --workspace {workspace}` or `hexabase auth login --server {server}` (or set \
         HEXABASE_TOKEN to a control-plane access token)"
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
    #[error("not signed in: run `hexabase auth login --server URL` first")]
    NoSession,
    #[error("the session has ended ({reason}): run `hexabase auth login --server {server}` again")]
    SessionEnded { server: String, reason: String },
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

impl ClientError {
    pub(crate) fn unreachable(server: &str, reason: impl Into<String>) -> Self {
        Self::Unreachable {
            server: server.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn refused(server: &str, status: reqwest::StatusCode, body: &str) -> Self {
        Self::Refused {
            server: server.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        }
    }
}

/// An error with its causes (`a: b: c`).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
