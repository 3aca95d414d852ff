use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::values::{KeyId, PublicJwk, SigningAlgorithm};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyringEvent {
    /// A key exists and its public half is published; it verifies from now on, but does not
    /// sign until it is activated.
    SigningKeyGenerated {
        kid: KeyId,
        algorithm: SigningAlgorithm,
        public_jwk: PublicJwk,
        /// Base64 of a 96-bit nonce followed by the AES-256-GCM ciphertext (and tag) of the
        /// PKCS#8 private key, sealed with the key-encryption key and the `kid` as associated
        /// data. The plaintext never reaches the event store.
        sealed_private_key: String,
        /// Fingerprint of the key-encryption key that sealed it.
        kek_id: String,
        generated_at: DateTime<Utc>,
    },
    /// The key signs from now on; the previously active key stops signing and keeps verifying.
    SigningKeyActivated {
        kid: KeyId,
        activated_at: DateTime<Utc>,
    },
    /// Every token the key signed has expired: it no longer verifies and leaves the JWKS.
    SigningKeyRetired {
        kid: KeyId,
        retired_at: DateTime<Utc>,
    },
}

impl DomainEvent for KeyringEvent {
    fn event_type(&self) -> String {
        match self {
            KeyringEvent::SigningKeyGenerated { .. } => "SigningKeyGenerated",
            KeyringEvent::SigningKeyActivated { .. } => "SigningKeyActivated",
            KeyringEvent::SigningKeyRetired { .. } => "SigningKeyRetired",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
