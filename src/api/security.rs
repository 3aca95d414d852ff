use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::Principal;

/// `Authorization: Bearer <JWT>` signed by this control plane.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| poem::Error::from(ApiError::unauthorized("authentication unavailable")))?;
    state
        .tokens
        .verify(&bearer.token)
        .map_err(|e| ApiError::unauthorized(e.to_string()).into())
}
