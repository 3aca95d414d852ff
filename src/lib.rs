//! The `hexabase` control plane: HTTP API, worker, and operator commands.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod credential;
pub mod device;
pub mod grant;
pub mod identity;
pub mod keyring;
pub mod oidc;
pub mod session;
pub mod shared;
pub mod telemetry;
pub mod tls;
