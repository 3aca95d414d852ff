use std::sync::Arc;

use hexabase_command::CommandMetadata;
use poem::{FromRequest, Request, RequestBody};

use super::error::ApiError;
use super::middleware::RequestId;
use crate::app::AppState;
use crate::auth::Principal;

/// What every handler needs besides its parameters: the application and the request's id.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub request_id: String,
}

impl Ctx {
    pub fn metadata(&self, principal: &Principal) -> CommandMetadata {
        CommandMetadata::for_request(principal.user.clone(), self.request_id.clone())
    }
}

impl<'a> FromRequest<'a> for Ctx {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req.data::<Arc<AppState>>().cloned().ok_or_else(|| {
            poem::Error::from(ApiError::internal(&std::io::Error::other(
                "application state missing",
            )))
        })?;
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(CommandMetadata::new_request_id);
        Ok(Self { state, request_id })
    }
}
