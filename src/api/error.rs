//! How the one error type (`crate::error::Error`) answers over HTTP — a status and an
//! `ErrorBody` — and the conversion of every other failure (parse errors, unknown routes, bad
//! content types) into the same JSON body.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};

use crate::error::Error;

/// What every failed request answers with.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
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

/// The responses an `Error` becomes, as the OpenAPI document lists them.
#[derive(Debug, ApiResponse)]
enum Answer {
    /// Malformed request.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The organization's subscription does not pay for this; `Link` names the checkout
    /// endpoint to start one.
    #[oai(status = 402)]
    PaymentRequired(Json<ErrorBody>, #[oai(header = "Link")] String),
    /// The caller may see this resource but not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource, or the caller may not know it exists.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicting state, or a concurrent change won; re-read and retry.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is not of a type the operation takes (answered before it runs).
    #[oai(status = 415)]
    #[allow(dead_code)]
    UnsupportedMediaType(Json<ErrorBody>),
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

fn body(code: &str, message: impl Into<String>, field: Option<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.into(),
        message: message.into(),
        field,
    })
}

impl From<Error> for Answer {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::BadRequest { field, .. } => {
                Self::BadRequest(body("bad_request", message, field))
            }
            Error::Unauthorized(_) => Self::Unauthorized(body("unauthorized", message, None)),
            Error::Forbidden(_) => Self::Forbidden(body("forbidden", message, None)),
            Error::NotFound(_) => Self::NotFound(body("not_found", message, None)),
            Error::Conflict(_) => Self::Conflict(body("conflict", message, None)),
            Error::Invalid { field, .. } => {
                Self::Unprocessable(body("validation_failed", message, Some(field)))
            }
            Error::PaymentRequired { checkout, .. } => Self::PaymentRequired(
                body("payment_required", message, Some("plan".into())),
                format!("<{checkout}>; rel=\"payment\""),
            ),
            Error::TooManyRequests { retry_after } => {
                Self::TooManyRequests(body("rate_limited", message, None), retry_after)
            }
            Error::BadGateway(_) => Self::BadGateway(body("upstream_unavailable", message, None)),
            Error::Unavailable {
                code,
                field,
                retry_after,
                ..
            } => Self::Unavailable(body(code, message, field), retry_after),
            Error::Internal => Self::Internal(body("internal", message, None)),
        }
    }
}

impl ApiResponse for Error {
    fn meta() -> MetaResponses {
        Answer::meta()
    }

    fn register(registry: &mut Registry) {
        Answer::register(registry)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Answer::from(self).into_response()
    }
}

impl From<Error> for poem::Error {
    fn from(error: Error) -> Self {
        poem::Error::from_response(error.into_response())
    }
}

pub type ApiResult<T> = Result<T, Error>;

/// Turn any error that escaped an endpoint into a response with an `ErrorBody`. Responses that
/// already carry JSON (an `Error`) pass through unchanged.
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
    let mut status = response.status();
    // A body field the document's constraints (pattern, length) refuse is a value the API
    // refuses, as the domain's own checks do: 422, naming the field.
    let refused_value = status == StatusCode::BAD_REQUEST
        && message.contains("parse request payload error")
        && message.contains("` verification failed");
    if refused_value {
        status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    let code = match status {
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
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

/// poem-openapi names the offending field in backquotes (`field `name` verification failed`,
/// `failed to parse parameter `limit``).
fn field_named_in(message: &str) -> Option<String> {
    let start = ["field `", "parameter `"]
        .iter()
        .find_map(|prefix| message.find(prefix).map(|at| at + prefix.len()))?;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}
