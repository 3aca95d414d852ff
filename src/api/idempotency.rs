//! `Idempotency-Key` on POST: the same key with the same request replays the first response
//! without running the command again; the same key with a different request is refused (422).
//! Keys are scoped per user. Records are written beside the event store, never instead of it.

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use ring::digest::{digest, SHA256};

use super::error::{error_response, ApiError};
use crate::app::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

fn fingerprint(req: &Request, body: &[u8]) -> String {
    let mut input = Vec::with_capacity(body.len() + 64);
    input.extend_from_slice(req.method().as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(req.uri().path().as_bytes());
    input.push(0);
    input.extend_from_slice(req.uri().query().unwrap_or("").as_bytes());
    input.push(0);
    input.extend_from_slice(body);
    digest(&SHA256, &input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a response is the final word on the request. Conflicts (a concurrent change won),
/// rate limits and server errors are not: a retry with the same key must run again.
fn is_final(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE)
}

/// (request hash, status, content type, body) of a recorded request.
type StoredResponse = (String, Option<i16>, Option<String>, Option<Vec<u8>>);

async fn call<E: Endpoint>(next: &E, req: Request) -> Response {
    match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(e),
    }
}

pub async fn idempotency<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if req.method() != Method::POST {
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
            return Ok(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                Some("Idempotency-Key"),
            )
            .into_response());
        }
    };
    let Some(state) = req.data::<Arc<AppState>>().cloned() else {
        return Ok(call(&next, req).await);
    };
    // Keys belong to a user; without a valid token the endpoint answers 401 on its own.
    let Some(user) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| state.tokens.verify(token).ok())
        .map(|principal| principal.user)
    else {
        return Ok(call(&next, req).await);
    };
    let body = req.take_body().into_bytes().await?;
    let hash = fingerprint(&req, &body);
    req.set_body(Body::from(body));

    let claimed = sqlx::query(
        "INSERT INTO idempotency (user_id, key, request_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(user.as_str())
    .bind(&key)
    .bind(&hash)
    .execute(&state.pool)
    .await
    .map_err(ApiError::from)?
    .rows_affected()
        == 1;

    if !claimed {
        let record: Option<StoredResponse> = sqlx::query_as(
            "SELECT request_hash, status, content_type, body FROM idempotency \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.as_str())
        .bind(&key)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::from)?;
        return Ok(match record {
            Some((stored, _, _, _)) if stored != hash => ApiError::invalid(
                "Idempotency-Key",
                "this Idempotency-Key was already used for a different request",
            )
            .into_response(),
            Some((_, Some(status), content_type, body)) => {
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
                    .header(REPLAYED_HEADER, "true");
                if let Some(content_type) = content_type {
                    response = response.content_type(content_type);
                }
                response.body(body.unwrap_or_default())
            }
            // Still running, or finished without a final answer a moment ago.
            _ => ApiError::conflict(
                "a request with this Idempotency-Key is in progress; retry shortly",
            )
            .into_response(),
        });
    }

    let mut response = call(&next, req).await;
    let status = response.status();
    if is_final(status) {
        let content_type = response.content_type().map(str::to_owned);
        let bytes = response.take_body().into_vec().await.unwrap_or_default();
        sqlx::query(
            "UPDATE idempotency SET status = $3, content_type = $4, body = $5 \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.as_str())
        .bind(&key)
        .bind(status.as_u16() as i16)
        .bind(&content_type)
        .bind(&bytes)
        .execute(&state.pool)
        .await
        .map_err(ApiError::from)?;
        response.set_body(bytes);
    } else {
        sqlx::query("DELETE FROM idempotency WHERE user_id = $1 AND key = $2")
            .bind(user.as_str())
            .bind(&key)
            .execute(&state.pool)
            .await
            .map_err(ApiError::from)?;
    }
    Ok(response)
}
