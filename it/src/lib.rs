//! Test harness: real PostgreSQL, NATS (JetStream) and Redis on loopback, started by
//! `scripts/services`; a fresh database and fresh JetStream names for every test app, so tests
//! run in parallel without seeing each other.

pub mod binary;
pub mod browser;
pub mod figures;
pub mod github;
pub mod hostile_idp;
pub mod peers;
pub mod services;
pub mod spine;

pub use spine::{TestApp, TestAppOptions};

/// rustls needs one process-wide crypto provider; kube, async-nats and reqwest use it.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
