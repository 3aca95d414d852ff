use chrono::{DateTime, Duration, Utc};

use super::values::{KeyId, PublicJwk, SigningAlgorithm};

/// A key made by the keyring service: its public half and its sealed private half.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSigningKey {
    pub kid: KeyId,
    pub algorithm: SigningAlgorithm,
    pub public_jwk: PublicJwk,
    pub sealed_private_key: String,
    pub kek_id: String,
}

/// Keyring commands are issued by the control plane itself (start-up and its rotation
/// schedule), never on a user's request; `at` is the service's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyringCommand {
    /// Generate the successor of the active key `replaces` (`None`: the keyring's first key).
    /// Naming the key it replaces makes a decision taken on a stale view of the keyring fail
    /// instead of adding a key nobody planned.
    GenerateSigningKey {
        key: NewSigningKey,
        replaces: Option<KeyId>,
        at: DateTime<Utc>,
    },
    ActivateSigningKey {
        kid: KeyId,
        at: DateTime<Utc>,
    },
    /// Retire a key that no longer signs, once `tokens_valid_for` (the longest a token it
    /// signed stays valid, counted from when it stopped signing) has passed.
    RetireSigningKey {
        kid: KeyId,
        tokens_valid_for: Duration,
        at: DateTime<Utc>,
    },
}
