//! The Keyring aggregate: the signing keys of one purpose (`sessions` for API access tokens,
//! `oidc` for the tokens `kubectl` presents to vClusters), one aggregate per purpose.
//!
//! A key is generated (its public half published, its private half sealed with the
//! key-encryption key), then activated (it signs; the previously active key stops signing but
//! keeps verifying), then retired once every token it signed has expired. Key material is made
//! by the service that issues the command; the aggregate only keeps the lifecycle consistent.

mod aggregate;
mod commands;
mod events;
mod values;

pub use aggregate::{Keyring, KeyringError, StoredSigningKey};
pub use commands::{KeyringCommand, NewSigningKey};
pub use events::KeyringEvent;
pub use values::{InvalidKeyId, KeyId, KeyPurpose, PublicJwk, SigningAlgorithm};
