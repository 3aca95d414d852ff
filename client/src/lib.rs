//! What runs on users' machines, without the server's dependencies: the `hexabase` CLI for the
//! control plane's API (`cli`, on the client generated from the OpenAPI document: `api`) and its
//! session (`session`), `hexabase login` and the kubectl credential plugin (`credential`), the
//! client's side of the OpenID provider's flows (`oauth`) and of PKCE (`pkce`).

pub mod api;
pub mod cli;
pub mod credential;
pub mod error;
mod files;
pub mod id;
pub mod oauth;
pub mod pkce;
pub mod session;

pub use credential::{exec_credential, login};
pub use error::ClientError;
