//! Cross-cutting HTTP concerns: request ids, JSON logs and latency metrics, JSON error bodies.

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument;
use uuid::Uuid;

use super::error::error_response;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id: the caller's `X-Request-Id` if it is sane, a fresh one otherwise.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

/// Outermost layer: request id, one log line per request, latency histogram, and every error
/// turned into a JSON body.
pub async fn observe<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    // Only standard methods become metric labels; anything else a client invents is "other".
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method, %path);
    let started = Instant::now();
    let mut response = async {
        match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) => error_response(err),
        }
    }
    .instrument(span.clone())
    .await;
    // RFC 9110 §15.5.6: a 405 names the methods the resource has.
    if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) =
            super::allowed_methods(&path).and_then(|m| HeaderValue::from_str(&m).ok())
        {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, allow);
        }
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let operation = response
        .data::<OperationId>()
        .map(|op| op.0)
        .unwrap_or("other");
    metrics::histogram!(
        "hexabase_http_request_duration_seconds",
        "operation" => operation,
        "method" => method,
        "status" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            operation,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}
