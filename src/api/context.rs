use std::sync::Arc;

use hexabase_command::CommandMetadata;
use poem::{FromRequest, Request, RequestBody};

use super::middleware::RequestId;
use super::security::SignedIn;
use crate::app::{App, OpContext};
use crate::error::Error;

/// What every handler needs besides its parameters: the application and the request's id.
pub struct Ctx {
    pub app: Arc<App>,
    pub request_id: String,
}

impl Ctx {
    /// The operation context of a signed-in caller's request.
    pub fn op(&self, auth: &SignedIn) -> OpContext {
        OpContext {
            caller: auth.principal().clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl<'a> FromRequest<'a> for Ctx {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let app = req.data::<Arc<App>>().cloned().ok_or_else(|| {
            poem::Error::from(Error::internal(&std::io::Error::other(
                "application state missing",
            )))
        })?;
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(CommandMetadata::new_request_id);
        Ok(Self { app, request_id })
    }
}
