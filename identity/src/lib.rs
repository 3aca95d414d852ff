//! Who someone is, on both sides of OpenID Connect.
//!
//! * `token`, `keyring`: the control plane's access tokens and the event-sourced keyrings that
//!   sign them (sealed with the key-encryption key).
//! * `session`: sign-in sessions, their rotating refresh tokens and revocations every replica
//!   sees at once (`shared`: Redis).
//! * `external`: signing in with the providers people already have (any OpenID Connect issuer,
//!   GitHub) — the control plane as their client.
//! * `issuer`: the control plane as the OpenID provider the workspaces' API servers trust — its
//!   discovery document, workspace tokens, and the code and device grants `kubectl` uses.
//!
//! Each piece takes what it uses (a pool, the Redis handle, a keyring), never the application.

pub mod config;
pub mod external;
pub mod issuer;
pub mod keyring;
pub mod secrets;
pub mod session;
pub mod shared;
pub mod token;
