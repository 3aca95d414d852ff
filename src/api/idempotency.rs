//! `Idempotency-Key` on POST: the same key with the same request replays the first response
//! without running the command again; the same key with a different request is refused (422).
//! Keys are scoped per user. Records are written beside the event store, never instead of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use ring::digest::{digest, SHA256};

use super::error::error_response;
use crate::app::App;
use crate::error::Error;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Response headers that belong to the answer itself and are replayed with it.
const REPLAYED_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// A claim still without an answer after this long belongs to a request that died.
const STALE_CLAIM_SECS: i32 = 60;

fn fingerprint(req: &Request, body: &[u8]) -> String {
    let content_type = req.content_type().unwrap_or("");
    let mut input = Vec::with_capacity(body.len() + 64);
    for part in [
        req.method().as_str(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
        content_type,
    ] {
        input.extend_from_slice(part.as_bytes());
        input.push(0);
    }
    input.extend_from_slice(body);
    digest(&SHA256, &input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a response is the final word on the request. Conflicts (a concurrent change won),
/// refusals of the caller's credentials (401, 403: a missing CSRF header, a role granted a moment
/// later), rate limits and server errors are not: a retry with the same key must run again.
fn is_final(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE)
}

/// (request hash, status, headers, body) of a recorded request.
type StoredResponse = (
    String,
    Option<i16>,
    Option<serde_json::Value>,
    Option<Vec<u8>>,
);

async fn call<E: Endpoint>(next: &E, req: Request) -> Response {
    match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(e),
    }
}

/// The user the request's access token names, if it verifies (bearer header or session
/// cookie, as in the endpoint's own check).
fn bearer_user(state: &App, req: &Request) -> Option<String> {
    super::security::presented_principal(state, req).map(|p| p.user.to_string())
}

pub async fn idempotency<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    // Only API writes: `/auth` answers carry fresh credentials, which are never stored.
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/") {
        return Ok(call(&next, req).await);
    }
    let Some(key) = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().map(str::to_owned))
    else {
        return Ok(call(&next, req).await);
    };
    let key = match key {
        Ok(key)
            if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            key
        }
        _ => {
            return Ok(Error::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                Some("Idempotency-Key"),
            )
            .into_response());
        }
    };
    let Some(state) = req.data::<Arc<App>>().cloned() else {
        return Ok(call(&next, req).await);
    };
    // Keys belong to a user; without a valid token the endpoint answers 401 on its own.
    let Some(user) = bearer_user(&state, &req) else {
        return Ok(call(&next, req).await);
    };
    let body = req.take_body().into_bytes().await?;
    let hash = fingerprint(&req, &body);
    req.set_body(Body::from(body));

    let claimed = sqlx::query(
        "INSERT INTO idempotency (user_id, key, request_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, key) DO UPDATE SET created_at = now() \
         WHERE idempotency.status IS NULL AND idempotency.request_hash = EXCLUDED.request_hash \
           AND idempotency.created_at < now() - make_interval(secs => $4)",
    )
    .bind(&user)
    .bind(&key)
    .bind(&hash)
    .bind(STALE_CLAIM_SECS)
    .execute(&state.pool)
    .await
    .map_err(Error::from)?
    .rows_affected()
        == 1;

    if !claimed {
        let record: Option<StoredResponse> = sqlx::query_as(
            "SELECT request_hash, status, headers, body FROM idempotency \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(&user)
        .bind(&key)
        .fetch_optional(&state.pool)
        .await
        .map_err(Error::from)?;
        return Ok(match record {
            Some((stored, _, _, _)) if stored != hash => Error::invalid(
                "Idempotency-Key",
                "this Idempotency-Key was already used for a different request",
            )
            .into_response(),
            Some((_, Some(status), headers, body)) => replay(status, headers, body),
            // Still running, or finished without a final answer a moment ago.
            _ => {
                Error::conflict("a request with this Idempotency-Key is in progress; retry shortly")
                    .into_response()
            }
        });
    }

    let mut response = call(&next, req).await;
    let status = response.status();
    if is_final(status) {
        let headers: BTreeMap<&str, &str> = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(name)?.to_str().ok()?;
                Some((name.as_str(), value))
            })
            .collect();
        let headers = serde_json::to_value(headers).unwrap_or_default();
        let bytes = response.take_body().into_vec().await.unwrap_or_default();
        sqlx::query(
            "UPDATE idempotency SET status = $3, headers = $4, body = $5 \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(&user)
        .bind(&key)
        .bind(status.as_u16() as i16)
        .bind(&headers)
        .bind(&bytes)
        .execute(&state.pool)
        .await
        .map_err(Error::from)?;
        response.set_body(bytes);
    } else {
        sqlx::query("DELETE FROM idempotency WHERE user_id = $1 AND key = $2")
            .bind(&user)
            .bind(&key)
            .execute(&state.pool)
            .await
            .map_err(Error::from)?;
    }
    Ok(response)
}

fn replay(status: i16, headers: Option<serde_json::Value>, body: Option<Vec<u8>>) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
        .header(REPLAYED_HEADER, "true")
        .body(body.unwrap_or_default());
    if let Some(serde_json::Value::Object(headers)) = headers {
        for (name, value) in headers {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            response.headers_mut().insert(name, value);
        }
    }
    response
}
