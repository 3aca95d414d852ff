//! The one error type of the control plane's operations: what the application layer answers
//! when an operation fails, and what the HTTP API renders (`api::error`) as a JSON body with
//! its status. What the caller is told is the message; internal details go to the log only.

use cqrs_es::AggregateError;
use hexabase_command::id::InvalidId;
use hexabase_command::organization::OrganizationError;
use hexabase_command::store::{EventStoreBusy, LoadError};
use hexabase_command::user::UserError;
use hexabase_command::values::InvalidValue;
use hexabase_command::workspace::WorkspaceError;
use hexabase_identity::external::LoginError;
use hexabase_identity::session::SessionError;
use hexabase_query::consistency::WaitError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed request (400).
    #[error("{message}")]
    BadRequest {
        message: String,
        field: Option<String>,
    },
    /// Missing or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may see this resource but not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource, or the caller may not know it exists (404).
    #[error("{0}")]
    NotFound(String),
    /// Conflicting state, or a concurrent change won: re-read and retry (409).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but invalid values (422), naming the field.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The organization's subscription does not pay for this (402); `checkout` is where to
    /// start paying.
    #[error("{message}")]
    PaymentRequired { message: String, checkout: String },
    /// Over a rate limit (429); retry after `retry_after` seconds.
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// An upstream service (an identity provider) failed or could not be reached (502).
    #[error("{0}")]
    BadGateway(String),
    /// Not now, nothing recorded (503): the event store was too busy (`busy`), or a read model
    /// has not caught up with a position yet (`not_caught_up`).
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        field: Option<String>,
        retry_after: u32,
    },
    /// Something failed on our side (500); the log has the details under the request id.
    #[error("internal error")]
    Internal,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::BadRequest {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::BadGateway(message.into())
    }
    /// An internal failure: logged here with its whole chain of causes, answered without them.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::Internal
    }
    /// A command that failed for a technical reason: 503 with `Retry-After` when the event
    /// store was busy (nothing was recorded), otherwise an internal error.
    pub fn command_failed<E: std::error::Error + 'static>(error: AggregateError<E>) -> Self {
        match &error {
            AggregateError::DatabaseConnectionError(inner) if inner.is::<EventStoreBusy>() => {
                Self::Unavailable {
                    code: "busy",
                    message: inner.to_string(),
                    field: None,
                    retry_after: 1,
                }
            }
            _ => Self::internal(&error),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        Self::internal(&e)
    }
}

impl From<InvalidValue> for Error {
    fn from(e: InvalidValue) -> Self {
        Self::invalid(e.field, e.message)
    }
}

/// An id in the path that cannot be an id names nothing: 404, like an unknown one.
impl From<InvalidId> for Error {
    fn from(e: InvalidId) -> Self {
        Self::not_found(e.to_string())
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::UnknownPosition(_) => Self::not_found(e.to_string()),
            WaitError::NotYet(_) => Self::Unavailable {
                code: "not_caught_up",
                message: e.to_string(),
                field: Some("position".into()),
                retry_after: 1,
            },
            WaitError::Database(e) => Self::internal(&e),
        }
    }
}

impl From<AggregateError<OrganizationError>> for Error {
    fn from(e: AggregateError<OrganizationError>) -> Self {
        match e {
            AggregateError::UserError(e) => match e {
                OrganizationError::NotFound
                | OrganizationError::MemberNotFound(_)
                | OrganizationError::NoInvitation(_) => Self::not_found(e.to_string()),
                OrganizationError::Forbidden => Self::forbidden(e.to_string()),
                OrganizationError::AlreadyExists
                | OrganizationError::AlreadyMember(_)
                | OrganizationError::AlreadyInvited(_)
                | OrganizationError::LastAdmin
                | OrganizationError::HasWorkspaces(_)
                | OrganizationError::WorkspaceExists(_)
                | OrganizationError::CustomerExists(_) => Self::conflict(e.to_string()),
            },
            AggregateError::AggregateConflict => {
                Self::conflict("the organization was changed concurrently; re-read it and retry")
            }
            other => Self::command_failed(other),
        }
    }
}

impl From<AggregateError<UserError>> for Error {
    fn from(e: AggregateError<UserError>) -> Self {
        match e {
            AggregateError::UserError(e) => match e {
                UserError::NotFound | UserError::UnknownIdentity(_) => {
                    Self::not_found(e.to_string())
                }
                UserError::AlreadyRegistered | UserError::AlreadyLinked(_) => {
                    Self::conflict(e.to_string())
                }
            },
            AggregateError::AggregateConflict => {
                Self::conflict("the user was changed concurrently; retry")
            }
            other => Self::command_failed(other),
        }
    }
}

impl From<AggregateError<WorkspaceError>> for Error {
    fn from(e: AggregateError<WorkspaceError>) -> Self {
        match e {
            AggregateError::UserError(e) => match e {
                WorkspaceError::NotFound
                | WorkspaceError::GroupNotFound(_)
                | WorkspaceError::ProjectNotFound(_)
                | WorkspaceError::NotInGroup(_)
                | WorkspaceError::RoleNotFound(_)
                | WorkspaceError::AssignmentNotFound(_)
                | WorkspaceError::ClusterAssignmentNotFound(_)
                | WorkspaceError::NodeNotFound(_) => Self::not_found(e.to_string()),
                WorkspaceError::InvalidNodeCount(_) => Self::invalid("count", e.to_string()),
                WorkspaceError::InvalidEndpoint => Self::invalid("server", e.to_string()),
                WorkspaceError::InvalidRules(message) => Self::invalid("rules", message),
                WorkspaceError::AlreadyExists
                | WorkspaceError::BeingDeleted
                | WorkspaceError::NotRunning(_)
                | WorkspaceError::NodeLimit(_)
                | WorkspaceError::GroupNameTaken(_)
                | WorkspaceError::PresetGroup(_)
                | WorkspaceError::GroupHasChildren(_)
                | WorkspaceError::GroupCycle
                | WorkspaceError::AlreadyInGroup(_)
                | WorkspaceError::LastWsAdmin
                | WorkspaceError::ProjectNameTaken(_)
                | WorkspaceError::ProjectLimit(_)
                | WorkspaceError::ProjectHasChildren(_)
                | WorkspaceError::ProjectCycle
                | WorkspaceError::RoleNameTaken(_)
                | WorkspaceError::InUse(_)
                | WorkspaceError::AlreadyAssigned(_) => Self::conflict(e.to_string()),
            },
            AggregateError::AggregateConflict => {
                Self::conflict("the workspace was changed concurrently; re-read it and retry")
            }
            other => Self::command_failed(other),
        }
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::UnknownProvider(_) => Self::not_found(e.to_string()),
            LoginError::State(_) | LoginError::ReturnTo => Self::bad_request(e.to_string(), None),
            LoginError::Refused(_) | LoginError::IdToken(_) => Self::unauthorized(e.to_string()),
            LoginError::EmailNotVerified | LoginError::NotRegistered => {
                Self::forbidden(e.to_string())
            }
            LoginError::IdentityTaken | LoginError::User(_) | LoginError::Command(_) => {
                Self::conflict(e.to_string())
            }
            LoginError::Unavailable(detail) => {
                // The details (internal URLs, network errors) stay in the logs.
                tracing::warn!(error = %detail, "identity provider unavailable");
                Self::bad_gateway(
                    "the identity provider could not be reached or answered unexpectedly",
                )
            }
            LoginError::Database(e) => Self::internal(&e),
            other => Self::internal(&other),
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::UnknownRefreshToken | SessionError::Revoked | SessionError::Reused => {
                Self::unauthorized(e.to_string())
            }
            SessionError::JustRotated => Self::conflict(e.to_string()),
            other => Self::internal(&other),
        }
    }
}
