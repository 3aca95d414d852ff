//! The `hexabase` control plane: the HTTP API (`api`) over the application layer (`app`), the
//! server and the worker, and the operator commands `main` offers.

pub mod api;
pub mod app;
pub mod config;
pub mod dev;
pub mod error;
pub mod server;
pub mod stripe_signature;
pub mod telemetry;
pub mod tls;
pub mod worker;
