//! Rate limiting per client IP and per user (to be filled in).

use poem::{Endpoint, IntoResponse, Request, Response, Result};

/// Pass-through until the limiter lands.
pub async fn limit<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    Ok(next.call(req).await?.into_response())
}
