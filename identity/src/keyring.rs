//! Signing keyrings: keys generated and stored through events, one keyring per purpose
//! (`sessions` signs API access tokens; `oidc` will sign the tokens `kubectl` presents).
//!
//! The private halves are sealed with the key-encryption key (KEK) from the configuration
//! (AES-256-GCM, a random 96-bit nonce, the `kid` as associated data) before they reach the
//! event store, so the store alone never reveals a key, and every replica holding the KEK signs
//! with the same keys: tokens survive restarts and verify on any replica.
//!
//! Rotation, run by every API replica (the event store's optimistic concurrency lets one win
//! each step; the others re-read the keyring and find the work done):
//! 1. When the active key is `rotate_after − publish_ahead` old, a successor is generated. It
//!    verifies at once (and is published in the JWKS), but does not sign yet, so every replica
//!    learns it, at its next refresh, before any token carries it.
//! 2. When the active key is `rotate_after` old and the successor has been published for
//!    `publish_ahead`, the successor is activated. The previous key stops signing and keeps
//!    verifying.
//! 3. When every token the previous key signed has expired (`tokens_valid_for` after it stopped
//!    signing), it is retired: its tokens are refused and it leaves the JWKS.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use hexabase_command::keyring::{
    self as aggregate, KeyId, KeyPurpose, Keyring, KeyringCommand, NewSigningKey, SigningAlgorithm,
    StoredSigningKey,
};
use hexabase_command::store::{self, load_state, Cqrs, LoadError};
use hexabase_command::CommandMetadata;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::AuthSettings;
use crate::token::{KeyError, KeySet, SigningKey, Tokens, VerifyingKey, LEEWAY};

/// How often a replica reads its keyrings again (and rotates what is due).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Rounds of one `maintain` call (each takes a step, or finds that another replica took it),
/// far more than any rotation needs.
const ROUNDS: usize = 16;
const KEK_LEN: usize = 32;
const MAX_SECS: u64 = 100 * 366 * 24 * 3600;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyringServiceError {
    #[error(
        "no key-encryption key: set auth.key_encryption_key (HEXABASE_AUTH__KEY_ENCRYPTION_KEY) \
         or write {path} with `hexabase keygen`"
    )]
    KekMissing { path: String },
    #[error("key-encryption key file {path}: {reason}")]
    KekFile { path: String, reason: String },
    #[error("the key-encryption key from {origin} {reason}")]
    KekInvalid { origin: String, reason: String },
    #[error(
        "signing key {kid} of the `{purpose}` keyring is sealed with key-encryption key \
         {sealed_with}, but the configured key-encryption key is {configured}; every replica \
         needs the key-encryption key the keyring was created with"
    )]
    WrongKek {
        purpose: KeyPurpose,
        kid: KeyId,
        sealed_with: String,
        configured: String,
    },
    #[error("signing key {kid} of the `{purpose}` keyring cannot be unsealed: {reason}")]
    Unsealable {
        purpose: KeyPurpose,
        kid: KeyId,
        reason: SealError,
    },
    #[error("signing key {kid} of the `{purpose}` keyring: {reason}")]
    InvalidKey {
        purpose: KeyPurpose,
        kid: String,
        reason: String,
    },
    #[error("the `{0}` keyring has no active signing key")]
    NoActiveKey(KeyPurpose),
    #[error("cannot read the `{purpose}` keyring: {source}")]
    Load {
        purpose: KeyPurpose,
        #[source]
        source: LoadError,
    },
    #[error("cannot change the `{purpose}` keyring: {reason}")]
    Store { purpose: KeyPurpose, reason: String },
    #[error("key generation failed: {0}")]
    Generate(#[from] KeyError),
}

/// Why a sealed key did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("it is not base64 of a nonce and a ciphertext")]
    Malformed,
    #[error("authentication failed (a different key-encryption key, or altered ciphertext)")]
    Rejected,
    #[error("no randomness for a nonce")]
    Random,
}

/// The key-encryption key: seals the private halves of signing keys for the event store.
pub struct Kek {
    key: LessSafeKey,
    id: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

impl Kek {
    /// `auth.key_encryption_key` if set, else the file `auth.key_encryption_key_file`.
    pub fn from_settings(auth: &AuthSettings) -> Result<Self, KeyringServiceError> {
        if let Some(key) = &auth.key_encryption_key {
            return Self::from_base64(key.expose_secret(), "auth.key_encryption_key");
        }
        let path = &auth.key_encryption_key_file;
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => KeyringServiceError::KekMissing {
                path: path.display().to_string(),
            },
            _ => KeyringServiceError::KekFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
        })?;
        Self::from_base64(&text, &path.display().to_string())
    }

    /// A KEK from base64 of 32 bytes; `origin` names where it came from in errors.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, KeyringServiceError> {
        let invalid = |reason: String| KeyringServiceError::KekInvalid {
            origin: origin.to_owned(),
            reason,
        };
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("is not base64".into()))?;
        if bytes.len() != KEK_LEN {
            return Err(invalid(format!(
                "must be {KEK_LEN} bytes (base64 of 32 random bytes), not {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| invalid("is not an AES-256 key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            id: kek_id(&bytes),
        })
    }

    /// Base64 of 32 fresh random bytes: a new KEK.
    pub fn generate_base64() -> Result<String, KeyringServiceError> {
        let mut bytes = [0u8; KEK_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| {
            KeyringServiceError::Generate(KeyError::Invalid("no randomness".into()))
        })?;
        Ok(STANDARD.encode(bytes))
    }

    /// Write a new KEK to `path` (mode 0600) unless a file is there already, which is never
    /// overwritten: the keys sealed with it could not be opened any more. Returns whether it
    /// wrote one.
    pub fn create_file(path: &Path) -> Result<bool, KeyringServiceError> {
        let failed = |e: std::io::Error| KeyringServiceError::KekFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(failed(e)),
        };
        let text = format!("{}\n", Self::generate_base64()?);
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        Ok(true)
    }

    /// A short fingerprint naming this KEK in events and errors (it reveals nothing of the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Base64 of nonce ‖ ciphertext ‖ tag; `aad` (the key's `kid`) is bound to the ciphertext.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError::Rejected)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(STANDARD.encode(sealed))
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Rejected)?;
        Ok(plaintext.to_vec())
    }
}

fn kek_id(key: &[u8]) -> String {
    let mut input = b"hexabase-kek-id:".to_vec();
    input.extend_from_slice(key);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When keys of one keyring are replaced and retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Age at which the active key is replaced.
    pub rotate_after: chrono::Duration,
    /// How long a new key verifies before it signs, so that every replica knows it first.
    pub publish_ahead: chrono::Duration,
    /// How long after a key stopped signing a token it signed may still be valid.
    pub tokens_valid_for: chrono::Duration,
}

impl RotationPolicy {
    /// The `sessions` keyring: `auth.key_rotation_secs`; an old key lasts as long as an access
    /// token (`auth.token_ttl_secs`), plus the clock skew tolerated and one refresh interval
    /// (a replica may sign with it until it next reads the keyring).
    pub fn for_sessions(auth: &AuthSettings) -> Self {
        // Capped (at a century) so that no setting can overflow the clock arithmetic.
        let secs = |s: u64| chrono::Duration::seconds(s.min(MAX_SECS) as i64);
        let refresh = secs(REFRESH_INTERVAL.as_secs());
        Self {
            rotate_after: secs(auth.key_rotation_secs),
            publish_ahead: refresh + refresh,
            tokens_valid_for: secs(auth.token_ttl_secs) + secs(LEEWAY) + refresh,
        }
    }
}

/// One change a rotation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Generated(KeyId),
    Activated(KeyId),
    Retired(KeyId),
}

/// A key as published in a JWKS (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A rotation step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A successor of the active key (`None`: the first key).
    Generate(Option<KeyId>),
    Activate(KeyId),
    Retire(KeyId),
}

/// The next rotation step due at `now`, if any. `kek_id` is the KEK this replica seals with:
/// a key that never signed and was sealed with another KEK is of no use and is retired.
fn next_step(
    keyring: &Keyring,
    policy: &RotationPolicy,
    kek_id: &str,
    now: DateTime<Utc>,
) -> Option<Step> {
    for key in keyring.keys().iter().filter(|k| k.verifies()) {
        let expired = key
            .deactivated_at
            .is_some_and(|stopped| stopped + policy.tokens_valid_for <= now);
        if expired || (key.is_pending() && key.kek_id != kek_id) {
            return Some(Step::Retire(key.kid.clone()));
        }
    }
    let pending = keyring.keys().iter().rev().find(|k| k.is_pending());
    let Some(active) = keyring.active() else {
        // Nothing signs yet (a new keyring): no token exists that a replica could fail to
        // verify, so the first key signs at once.
        return Some(match pending {
            Some(key) => Step::Activate(key.kid.clone()),
            None => Step::Generate(None),
        });
    };
    let due = active.activated_at.unwrap_or(active.generated_at) + policy.rotate_after;
    match pending {
        None if now >= due - policy.publish_ahead => Some(Step::Generate(Some(active.kid.clone()))),
        Some(key) if now >= due && now >= key.generated_at + policy.publish_ahead => {
            Some(Step::Activate(key.kid.clone()))
        }
        _ => None,
    }
}

struct Loaded {
    keyring: Keyring,
    /// Private halves opened so far, by `kid`.
    unsealed: HashMap<KeyId, Arc<SigningKey>>,
}

/// One keyring, as this replica knows it: reads it, rotates it, and hands its keys to `Tokens`.
pub struct KeyringService {
    purpose: KeyPurpose,
    kek: Kek,
    policy: RotationPolicy,
    pool: PgPool,
    cqrs: Cqrs<Keyring>,
    loaded: Mutex<Loaded>,
    /// Held from reading the keyring until its keys are handed to `Tokens`, so an older key
    /// set never replaces a newer one.
    syncing: Mutex<()>,
}

impl KeyringService {
    /// Read the keyring, make sure a key is active (creating the keyring if need be), and do
    /// any rotation step that is overdue. Fails when the configured KEK is not the one the
    /// keyring's keys are sealed with.
    pub async fn open(
        pool: PgPool,
        purpose: KeyPurpose,
        kek: Kek,
        policy: RotationPolicy,
    ) -> Result<Self, KeyringServiceError> {
        let service = Self {
            purpose,
            kek,
            policy,
            cqrs: store::cqrs(pool.clone(), ()),
            pool,
            loaded: Mutex::new(Loaded {
                keyring: Keyring::default(),
                unsealed: HashMap::new(),
            }),
            syncing: Mutex::new(()),
        };
        service.reload().await?;
        service.maintain(Utc::now()).await?;
        service.key_set().await?;
        Ok(service)
    }

    /// The `sessions` keyring, with the KEK and rotation schedule of `auth`.
    pub async fn for_sessions(
        pool: &PgPool,
        auth: &AuthSettings,
    ) -> Result<Self, KeyringServiceError> {
        Self::open(
            pool.clone(),
            KeyPurpose::Sessions,
            Kek::from_settings(auth)?,
            RotationPolicy::for_sessions(auth),
        )
        .await
    }

    /// Read the keyring from the event store again.
    pub async fn reload(&self) -> Result<(), KeyringServiceError> {
        let keyring = load_state::<Keyring>(&self.pool, self.purpose.as_str())
            .await
            .map_err(|source| KeyringServiceError::Load {
                purpose: self.purpose,
                source,
            })?;
        let mut loaded = self.loaded.lock().await;
        loaded
            .unsealed
            .retain(|kid, _| keyring.key(kid).is_some_and(StoredSigningKey::verifies));
        loaded.keyring = keyring;
        Ok(())
    }

    /// Take every rotation step due at `now` (see the module documentation); returns what
    /// changed. A step another replica took first is not repeated.
    pub async fn maintain(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<KeyChange>, KeyringServiceError> {
        let mut changes = Vec::new();
        let mut refused = String::new();
        for _ in 0..ROUNDS {
            let step = {
                let loaded = self.loaded.lock().await;
                self.check_kek(&loaded.keyring)?;
                next_step(&loaded.keyring, &self.policy, self.kek.id(), now)
            };
            let Some(step) = step else {
                return Ok(changes);
            };
            let (command, change) = match step {
                Step::Generate(replaces) => {
                    let key = self.new_key()?;
                    let kid = key.kid.clone();
                    (
                        KeyringCommand::GenerateSigningKey {
                            key,
                            replaces,
                            at: now,
                        },
                        KeyChange::Generated(kid),
                    )
                }
                Step::Activate(kid) => (
                    KeyringCommand::ActivateSigningKey {
                        kid: kid.clone(),
                        at: now,
                    },
                    KeyChange::Activated(kid),
                ),
                Step::Retire(kid) => (
                    KeyringCommand::RetireSigningKey {
                        kid: kid.clone(),
                        tokens_valid_for: self.policy.tokens_valid_for,
                        at: now,
                    },
                    KeyChange::Retired(kid),
                ),
            };
            let metadata = CommandMetadata::for_system(&format!("keyring:{}", self.purpose));
            match self
                .cqrs
                .execute_with_metadata(self.purpose.as_str(), command, metadata)
                .await
            {
                Ok(()) => {
                    tracing::info!(purpose = %self.purpose, change = ?change, "signing keys rotated");
                    changes.push(change);
                }
                // Another replica changed the keyring since it was read: read it again and
                // decide afresh.
                Err(e @ (AggregateError::AggregateConflict | AggregateError::UserError(_))) => {
                    tracing::debug!(purpose = %self.purpose, error = %e, "keyring changed concurrently");
                    refused = e.to_string();
                }
                Err(e) => return Err(self.store_error(e)),
            }
            self.reload().await?;
        }
        Err(KeyringServiceError::Store {
            purpose: self.purpose,
            reason: format!(
                "no rotation step settled in {ROUNDS} rounds (last refusal: {refused})"
            ),
        })
    }

    fn store_error(&self, e: AggregateError<aggregate::KeyringError>) -> KeyringServiceError {
        KeyringServiceError::Store {
            purpose: self.purpose,
            reason: e.to_string(),
        }
    }

    /// Refuse to write to a keyring whose active key this replica cannot open.
    fn check_kek(&self, keyring: &Keyring) -> Result<(), KeyringServiceError> {
        match keyring.active() {
            Some(active) if active.kek_id != self.kek.id() => Err(self.wrong_kek(active)),
            _ => Ok(()),
        }
    }

    fn wrong_kek(&self, key: &StoredSigningKey) -> KeyringServiceError {
        KeyringServiceError::WrongKek {
            purpose: self.purpose,
            kid: key.kid.clone(),
            sealed_with: key.kek_id.clone(),
            configured: self.kek.id().to_owned(),
        }
    }

    fn new_key(&self) -> Result<NewSigningKey, KeyringServiceError> {
        let pkcs8 = SigningKey::generate_pkcs8()?;
        let key = SigningKey::from_pkcs8(&pkcs8)?;
        let invalid = |reason: String| KeyringServiceError::InvalidKey {
            purpose: self.purpose,
            kid: key.kid().to_owned(),
            reason,
        };
        let kid = KeyId::parse(key.kid()).map_err(|e| invalid(e.to_string()))?;
        let sealed_private_key = self
            .kek
            .seal(kid.as_str(), &pkcs8)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(NewSigningKey {
            kid,
            algorithm: SigningAlgorithm::Es256,
            public_jwk: key.public_jwk().clone(),
            sealed_private_key,
            kek_id: self.kek.id().to_owned(),
        })
    }

    fn unseal(&self, key: &StoredSigningKey) -> Result<SigningKey, KeyringServiceError> {
        if key.kek_id != self.kek.id() {
            return Err(self.wrong_kek(key));
        }
        let pkcs8 = self
            .kek
            .open(key.kid.as_str(), &key.sealed_private_key)
            .map_err(|reason| KeyringServiceError::Unsealable {
                purpose: self.purpose,
                kid: key.kid.clone(),
                reason,
            })?;
        let invalid = |reason: String| KeyringServiceError::InvalidKey {
            purpose: self.purpose,
            kid: key.kid.to_string(),
            reason,
        };
        let signing = SigningKey::from_pkcs8(&pkcs8).map_err(|e| invalid(e.to_string()))?;
        if signing.kid() != key.kid.as_str() {
            return Err(invalid(format!(
                "the private key's id is {}",
                signing.kid()
            )));
        }
        Ok(signing)
    }

    /// The active key (opened with the KEK) and every key that still verifies.
    pub async fn key_set(&self) -> Result<KeySet, KeyringServiceError> {
        let mut loaded = self.loaded.lock().await;
        let active = loaded
            .keyring
            .active()
            .cloned()
            .ok_or(KeyringServiceError::NoActiveKey(self.purpose))?;
        let signing = match loaded.unsealed.get(&active.kid) {
            Some(key) => key.clone(),
            None => {
                let key = Arc::new(self.unseal(&active)?);
                loaded.unsealed.insert(active.kid.clone(), key.clone());
                key
            }
        };
        let mut verifying = Vec::new();
        for key in loaded.keyring.keys().iter().filter(|k| k.verifies()) {
            let public = VerifyingKey::from_jwk(&key.public_jwk).map_err(|e| {
                KeyringServiceError::InvalidKey {
                    purpose: self.purpose,
                    kid: key.kid.to_string(),
                    reason: e.to_string(),
                }
            })?;
            if public.kid() != key.kid.as_str() {
                return Err(KeyringServiceError::InvalidKey {
                    purpose: self.purpose,
                    kid: key.kid.to_string(),
                    reason: format!("its public key's thumbprint is {}", public.kid()),
                });
            }
            verifying.push(public);
        }
        Ok(KeySet::new(signing, verifying))
    }

    /// The public halves of every key that verifies (pending keys included, so verifiers know
    /// a key before any token carries it).
    pub async fn jwks(&self) -> Jwks {
        let loaded = self.loaded.lock().await;
        let keys = loaded
            .keyring
            .keys()
            .iter()
            .filter(|k| k.verifies())
            .map(|k| Jwk {
                kty: k.public_jwk.kty.clone(),
                crv: k.public_jwk.crv.clone(),
                x: k.public_jwk.x.clone(),
                y: k.public_jwk.y.clone(),
                kid: k.kid.to_string(),
                alg: k.algorithm.as_str().to_owned(),
                use_: "sig".to_owned(),
            })
            .collect();
        Jwks { keys }
    }

    /// Read the keyring, take the rotation steps due at `now`, and hand the keys to `tokens`.
    pub async fn sync(
        &self,
        tokens: &Tokens,
        now: DateTime<Utc>,
    ) -> Result<Vec<KeyChange>, KeyringServiceError> {
        let _syncing = self.syncing.lock().await;
        self.reload().await?;
        let changes = self.maintain(now).await?;
        tokens.set_keys(self.key_set().await?);
        Ok(changes)
    }

    /// Read the keyring and hand its keys to `tokens`, without rotating.
    pub async fn refresh(&self, tokens: &Tokens) -> Result<(), KeyringServiceError> {
        let _syncing = self.syncing.lock().await;
        self.reload().await?;
        tokens.set_keys(self.key_set().await?);
        Ok(())
    }

    /// Keep `tokens` in step with the keyring until `shutdown`: every `REFRESH_INTERVAL`
    /// (rotating what is due), and at once when a token names a key this replica does not know.
    pub async fn run(&self, tokens: &Tokens, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.sync(tokens, Utc::now()).await.map(drop),
                _ = tokens.reload_requested() => self.refresh(tokens).await,
            };
            if let Err(e) = outcome {
                tracing::warn!(purpose = %self.purpose, error = %e, "cannot refresh the signing keys");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::Aggregate;
    use hexabase_command::keyring::KeyringEvent;

    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&Kek::generate_base64().unwrap(), "test").unwrap()
    }

    #[test]
    fn sealed_keys_open_with_the_same_kek_and_kid() {
        let kek = kek();
        let sealed = kek.seal("kid-1", b"private key").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"private key");
        assert_ne!(
            sealed,
            kek.seal("kid-1", b"private key").unwrap(),
            "a fresh nonce every time"
        );
        assert!(!sealed.contains(&STANDARD.encode(b"private key")));
    }

    #[test]
    fn another_kek_or_kid_is_refused() {
        let sealed = kek().seal("kid-1", b"private key").unwrap();
        assert_eq!(kek().open("kid-1", &sealed), Err(SealError::Rejected));
        let kek = kek();
        let sealed = kek.seal("kid-1", b"private key").unwrap();
        assert_eq!(kek.open("kid-2", &sealed), Err(SealError::Rejected));
    }

    #[test]
    fn tampered_or_truncated_ciphertext_is_refused() {
        let kek = kek();
        let sealed = STANDARD
            .decode(kek.seal("kid", b"private key").unwrap())
            .unwrap();
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert_eq!(
                kek.open("kid", &STANDARD.encode(&tampered)),
                Err(SealError::Rejected),
                "byte {i}"
            );
        }
        assert_eq!(
            kek.open("kid", &STANDARD.encode(&sealed[..20])),
            Err(SealError::Malformed)
        );
        assert_eq!(kek.open("kid", "not base64!"), Err(SealError::Malformed));
    }

    #[test]
    fn kek_ids_name_the_key_without_revealing_it() {
        let text = Kek::generate_base64().unwrap();
        let (a, b) = (
            Kek::from_base64(&text, "a").unwrap(),
            Kek::from_base64(&format!("{text}\n"), "b").unwrap(),
        );
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), kek().id());
        assert!(!format!("{a:?}").contains(&text));
    }

    #[test]
    fn a_kek_of_the_wrong_length_or_encoding_is_refused_clearly() {
        let short = Kek::from_base64(&STANDARD.encode([7u8; 16]), "auth.key_encryption_key");
        let message = short.unwrap_err().to_string();
        assert!(
            message.contains("auth.key_encryption_key") && message.contains("32 bytes"),
            "{message}"
        );
        assert!(Kek::from_base64("%%%", "x")
            .unwrap_err()
            .to_string()
            .contains("not base64"));
    }

    #[test]
    fn kek_files_are_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("hxb-kek-{}", uuid::Uuid::new_v4()));
        let path = dir.join("kek");
        let mut settings = crate::config::example();
        settings.key_encryption_key_file = path.clone();
        let missing = Kek::from_settings(&settings).unwrap_err();
        assert!(
            matches!(missing, KeyringServiceError::KekMissing { .. }),
            "{missing}"
        );
        assert!(Kek::create_file(&path).unwrap());
        let first = Kek::from_settings(&settings).unwrap();
        assert!(!Kek::create_file(&path).unwrap(), "never overwritten");
        assert_eq!(Kek::from_settings(&settings).unwrap().id(), first.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The setting wins over the file.
        let other = Kek::generate_base64().unwrap();
        settings.key_encryption_key = Some(other.clone().into());
        let configured = Kek::from_settings(&settings).unwrap();
        assert_eq!(configured.id(), Kek::from_base64(&other, "x").unwrap().id());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn kid(n: u8) -> KeyId {
        KeyId::parse(&format!("{}{}", char::from(b'A' + n), "k".repeat(42))).unwrap()
    }

    fn policy() -> RotationPolicy {
        RotationPolicy {
            rotate_after: chrono::Duration::minutes(60),
            publish_ahead: chrono::Duration::minutes(1),
            tokens_valid_for: chrono::Duration::minutes(16),
        }
    }

    fn keyring(events: Vec<KeyringEvent>) -> Keyring {
        let mut keyring = Keyring::default();
        for event in events {
            keyring.apply(event);
        }
        keyring
    }

    fn generated(n: u8, minutes: i64, kek_id: &str) -> KeyringEvent {
        KeyringEvent::SigningKeyGenerated {
            kid: kid(n),
            algorithm: SigningAlgorithm::Es256,
            public_jwk: aggregate::PublicJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: "x".repeat(43),
                y: "y".repeat(43),
            },
            sealed_private_key: "c2VhbGVk".into(),
            kek_id: kek_id.into(),
            generated_at: at(minutes),
        }
    }

    fn activated(n: u8, minutes: i64) -> KeyringEvent {
        KeyringEvent::SigningKeyActivated {
            kid: kid(n),
            activated_at: at(minutes),
        }
    }

    fn step(keyring: &Keyring, minutes: i64) -> Option<Step> {
        next_step(keyring, &policy(), "kek", at(minutes))
    }

    #[test]
    fn a_new_keyring_gets_a_key_that_signs_at_once() {
        assert_eq!(step(&Keyring::default(), 0), Some(Step::Generate(None)));
        let half_made = keyring(vec![generated(0, 0, "kek")]);
        assert_eq!(step(&half_made, 0), Some(Step::Activate(kid(0))));
    }

    #[test]
    fn a_successor_is_published_ahead_then_signs_then_the_old_key_goes() {
        let mut events = vec![generated(0, 0, "kek"), activated(0, 0)];
        assert_eq!(step(&keyring(events.clone()), 58), None);
        assert_eq!(
            step(&keyring(events.clone()), 59),
            Some(Step::Generate(Some(kid(0))))
        );
        events.push(generated(1, 59, "kek"));
        assert_eq!(step(&keyring(events.clone()), 59), None, "published first");
        assert_eq!(
            step(&keyring(events.clone()), 60),
            Some(Step::Activate(kid(1)))
        );
        events.push(activated(1, 60));
        assert_eq!(step(&keyring(events.clone()), 75), None, "its tokens live");
        assert_eq!(
            step(&keyring(events.clone()), 76),
            Some(Step::Retire(kid(0)))
        );
    }

    #[test]
    fn a_successor_generated_late_is_still_published_before_it_signs() {
        let events = vec![
            generated(0, 0, "kek"),
            activated(0, 0),
            generated(1, 500, "kek"),
        ];
        assert_eq!(step(&keyring(events.clone()), 500), None);
        assert_eq!(step(&keyring(events), 501), Some(Step::Activate(kid(1))));
    }

    #[test]
    fn an_unused_key_sealed_with_another_kek_is_retired() {
        let events = vec![generated(0, 0, "other")];
        assert_eq!(step(&keyring(events), 0), Some(Step::Retire(kid(0))));
    }
}
