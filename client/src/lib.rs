//! What runs on users' machines, without the server's dependencies: `hexabase login` and the
//! kubectl credential plugin (`credential`), on the client's side of PKCE (`pkce`).

pub mod credential;
pub mod pkce;

pub use credential::{exec_credential, login, ClientError, LoginOptions};
