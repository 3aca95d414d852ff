//! The one error type at the HTTP boundary, and the conversion of every other failure (parse
//! errors, unknown routes, bad content types) into the same JSON body.

use cqrs_es::AggregateError;
use hexabase_command::id::InvalidId;
use hexabase_command::organization::OrganizationError;
use hexabase_command::store::EventStoreBusy;
use hexabase_command::user::UserError;
use hexabase_command::values::InvalidValue;
use hexabase_query::consistency::WaitError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// What every failed request answers with.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code (`validation_failed`, `not_found`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when there is one.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed request.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller may see this resource but not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource, or the caller may not know it exists.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicting state, or a concurrent change won; re-read and retry.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Well-formed but invalid values.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests from this client or user in the current window.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// A read asked for a position the read model has not reached in time, or the event store
    /// was too busy to record a command (nothing was recorded); retry after `Retry-After`.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
    /// An upstream service (an identity provider) failed or could not be reached.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// Something failed on our side; the request id in the logs tells what.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
}

fn body(code: &str, message: impl Into<String>, field: Option<&str>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.into(),
        message: message.into(),
        field: field.map(str::to_owned),
    })
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::BadRequest(body("bad_request", message, field))
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(body("unauthorized", message, None))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(body("forbidden", message, None))
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(body("not_found", message, None))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(body("conflict", message, None))
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self::TooManyRequests(
            body(
                "rate_limited",
                format!("too many requests; retry in {retry_after} s"),
                None,
            ),
            retry_after,
        )
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::BadGateway(body("upstream_unavailable", message, None))
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Unprocessable(body("validation_failed", message, Some(field)))
    }
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::Internal(body("internal", "internal error", None))
    }
    /// A command that failed for a technical reason: 503 with `Retry-After` when the event
    /// store was busy (nothing was recorded), otherwise an internal error.
    pub fn command_failed<E: std::error::Error + 'static>(error: AggregateError<E>) -> Self {
        match &error {
            AggregateError::DatabaseConnectionError(inner) if inner.is::<EventStoreBusy>() => {
                Self::Unavailable(body("busy", inner.to_string(), None), 1)
            }
            _ => Self::internal(&error),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        Self::invalid(e.field, e.message)
    }
}

/// An id in the path that cannot be an id names nothing: 404, like an unknown one.
impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::not_found(e.to_string())
    }
}

impl From<WaitError> for ApiError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::UnknownPosition(_) => Self::bad_request(e.to_string(), Some("position")),
            WaitError::NotYet(_) => {
                Self::Unavailable(body("not_caught_up", e.to_string(), Some("position")), 1)
            }
            WaitError::Database(e) => Self::internal(&e),
        }
    }
}

impl From<AggregateError<OrganizationError>> for ApiError {
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
                | OrganizationError::WorkspaceExists(_) => Self::conflict(e.to_string()),
            },
            AggregateError::AggregateConflict => {
                Self::conflict("the organization was changed concurrently; re-read it and retry")
            }
            other => Self::command_failed(other),
        }
    }
}

impl From<AggregateError<UserError>> for ApiError {
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

pub type ApiResult<T> = Result<T, ApiError>;

/// Turn any error that escaped an endpoint into a response with an `ErrorBody`. Responses that
/// already carry JSON (our `ApiError`) pass through unchanged.
pub fn error_response(err: poem::Error) -> Response {
    let message = err.to_string();
    let response = err.into_response();
    let is_json = response
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let status = response.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if status.is_server_error() {
        tracing::error!(error = %message, "unhandled error");
        "internal error".to_owned()
    } else if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let field = field_named_in(&message);
    let mut out = poem::web::Json(ErrorBody {
        code: code.into(),
        message,
        field,
    })
    .into_response();
    out.set_status(status);
    for (name, value) in response.headers() {
        if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// poem-openapi names the offending field in backquotes (`field `name` verification failed`).
fn field_named_in(message: &str) -> Option<String> {
    let start = message.find("field `")? + "field `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}
