//! How a CLI command fails: the control plane's own words where it answered, and an exit code
//! a script can test (see `docs/cli.md`).

use crate::api::types::ErrorBody;
use crate::error::{chain, ClientError};

/// The exit codes (also in `docs/cli.md`).
pub mod exit {
    /// Any other failure.
    pub const OTHER: u8 = 1;
    /// A command line that cannot be understood (clap exits with 2 as well).
    pub const USAGE: u8 = 2;
    /// Not signed in, or the session ended (401).
    pub const UNAUTHENTICATED: u8 = 3;
    /// No such resource, or the caller may not know it exists (404).
    pub const NOT_FOUND: u8 = 4;
    /// The caller may see it but not do this (403).
    pub const FORBIDDEN: u8 = 5;
    /// Conflicting state (409).
    pub const CONFLICT: u8 = 6;
    /// Invalid input (400, 415, 422, or refused before sending).
    pub const INVALID: u8 = 7;
    /// The control plane is unreachable, overloaded or failing (5xx, 429, no connection).
    pub const UNAVAILABLE: u8 = 8;
    /// `workspace wait`: the workspace failed, or is being deleted.
    pub const WORKSPACE_FAILED: u8 = 9;
    /// `workspace wait`: still not ready when the timeout passed.
    pub const TIMED_OUT: u8 = 10;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The control plane refused the request with its `{code, message, field}`.
    #[error("{message}{}", field.as_deref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// An answer that is not the API's (no error body, or one that cannot be read).
    #[error("the control plane answered {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error("cannot reach the control plane: {0}")]
    Unreachable(String),
    #[error("unreadable answer from the control plane: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("workspace {workspace} {what}")]
    WorkspaceFailed { workspace: String, what: String },
    #[error("workspace {workspace} is not ready after {seconds}s (status {status})")]
    TimedOut {
        workspace: String,
        seconds: u64,
        status: String,
    },
    #[error("{0}")]
    Other(String),
}

/// `value` as the generated client's type for `field`, which may refuse it before it is sent
/// (e.g. too long).
pub fn input<T>(field: &str, value: &str) -> Result<T, CliError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| CliError::Invalid {
        field: field.to_owned(),
        reason: e.to_string(),
    })
}

/// The exit code for an HTTP status the control plane answered.
fn for_status(status: u16) -> u8 {
    match status {
        401 => exit::UNAUTHENTICATED,
        403 => exit::FORBIDDEN,
        404 => exit::NOT_FOUND,
        409 => exit::CONFLICT,
        400 | 415 | 422 => exit::INVALID,
        429 | 500..=599 => exit::UNAVAILABLE,
        _ => exit::OTHER,
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(error) => match error {
                ClientError::NoSession
                | ClientError::SessionEnded { .. }
                | ClientError::NotSignedIn { .. }
                | ClientError::GrantEnded { .. } => exit::UNAUTHENTICATED,
                ClientError::Refused { status, .. } => for_status(*status),
                ClientError::Unreachable { .. } => exit::UNAVAILABLE,
                ClientError::Workspace(_) => exit::USAGE,
                ClientError::Ca { .. } | ClientError::Login(_) | ClientError::File { .. } => {
                    exit::OTHER
                }
            },
            Self::Api { status, .. } | Self::Unexpected { status, .. } => for_status(*status),
            Self::Unreachable(_) => exit::UNAVAILABLE,
            Self::Unreadable(_) | Self::Other(_) => exit::OTHER,
            Self::Usage(_) => exit::USAGE,
            Self::NotFound(_) => exit::NOT_FOUND,
            Self::Invalid { .. } => exit::INVALID,
            Self::WorkspaceFailed { .. } => exit::WORKSPACE_FAILED,
            Self::TimedOut { .. } => exit::TIMED_OUT,
        }
    }

    /// What the generated client's error says, in the control plane's words where it answered.
    pub async fn from_api(error: progenitor_client::Error<ErrorBody>) -> Self {
        use progenitor_client::Error;
        match error {
            Error::ErrorResponse(answer) => {
                let status = answer.status().as_u16();
                let body = answer.into_inner();
                Self::Api {
                    status,
                    code: body.code,
                    message: body.message,
                    field: body.field,
                }
            }
            Error::UnexpectedResponse(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(body) => Self::Api {
                        status,
                        code: body.code,
                        message: body.message,
                        field: body.field,
                    },
                    Err(_) => Self::Unexpected {
                        status,
                        body: text.chars().take(500).collect(),
                    },
                }
            }
            Error::CommunicationError(e)
            | Error::ResponseBodyError(e)
            | Error::InvalidUpgrade(e) => Self::Unreachable(chain(&e)),
            Error::InvalidResponsePayload(_, e) => Self::Unreadable(e.to_string()),
            Error::InvalidRequest(reason) | Error::Custom(reason) => Self::Other(reason),
        }
    }
}
