//! `POST /webhooks/stripe`: Stripe's deliveries. Authenticated by the `Stripe-Signature` header
//! alone (never by a user's token), checked over the raw body before anything is parsed. A
//! genuine event is recorded once and answered 200 at once; the billing sagas act on it
//! afterwards. A bad or missing signature is 400 and records nothing.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde_json::json;

use super::middleware::RequestId;
use crate::app::App;
use crate::error::Error;

/// Stripe's events are small; anything larger is not one.
const MAX_BODY: usize = 512 * 1024;

#[handler]
pub async fn stripe(request: &Request, body: Body, app: Data<&Arc<App>>) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_else(hexabase_command::CommandMetadata::new_request_id);
    let payload = match body.into_bytes_limit(MAX_BODY).await {
        Ok(payload) => payload,
        Err(_) => {
            return Error::bad_request(
                format!("the body is not readable or larger than {MAX_BODY} bytes"),
                None,
            )
            .into_response()
        }
    };
    let signature = request
        .headers()
        .get("Stripe-Signature")
        .and_then(|v| v.to_str().ok());
    match app
        .receive_stripe_webhook(&request_id, &payload, signature)
        .await
    {
        Ok(receipt) => Json(json!({
            "received": true,
            "id": receipt.event_id,
            "duplicate": receipt.duplicate,
            "ignored": receipt.ignored,
            "position": receipt.position,
        }))
        .with_status(StatusCode::OK)
        .into_response(),
        Err(e) => e.into_response(),
    }
}
