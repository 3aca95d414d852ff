use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::values::{KeyId, PublicJwk, SigningAlgorithm};
use super::{KeyringCommand, KeyringEvent, NewSigningKey};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("signing key {0} already exists")]
    DuplicateKey(KeyId),
    #[error("signing key {kid}: {reason}")]
    InvalidKey { kid: KeyId, reason: String },
    #[error("the active signing key changed since the new key was planned")]
    ActiveKeyChanged,
    #[error("signing key {0} is already waiting to be activated")]
    PendingKey(KeyId),
    #[error("no signing key {0} in this keyring")]
    UnknownKey(KeyId),
    #[error("signing key {0} is retired")]
    Retired(KeyId),
    #[error("signing key {0} was already replaced by a newer key; generate a new one instead")]
    Superseded(KeyId),
    #[error("signing key {0} is the active key; activate its successor first")]
    ActiveKey(KeyId),
    #[error("tokens signed by {kid} may be valid until {until}; it cannot be retired before")]
    StillVerifying { kid: KeyId, until: DateTime<Utc> },
}

/// One key of the keyring and where it is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSigningKey {
    pub kid: KeyId,
    pub algorithm: SigningAlgorithm,
    pub public_jwk: PublicJwk,
    pub sealed_private_key: String,
    pub kek_id: String,
    pub generated_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    /// When its successor was activated: it signed nothing after this.
    pub deactivated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl StoredSigningKey {
    /// Generated, never activated, not retired: published ahead of signing.
    pub fn is_pending(&self) -> bool {
        self.activated_at.is_none() && self.retired_at.is_none()
    }

    /// Whether tokens it signed are accepted (and it belongs in the JWKS).
    pub fn verifies(&self) -> bool {
        self.retired_at.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Keyring {
    /// In the order they were generated.
    keys: Vec<StoredSigningKey>,
    active: Option<KeyId>,
}

impl Keyring {
    pub fn keys(&self) -> &[StoredSigningKey] {
        &self.keys
    }

    pub fn key(&self, kid: &KeyId) -> Option<&StoredSigningKey> {
        self.keys.iter().find(|k| &k.kid == kid)
    }

    /// The key that signs.
    pub fn active(&self) -> Option<&StoredSigningKey> {
        self.active.as_ref().and_then(|kid| self.key(kid))
    }

    fn key_mut(&mut self, kid: &KeyId) -> Option<&mut StoredSigningKey> {
        self.keys.iter_mut().find(|k| &k.kid == kid)
    }

    fn generate(
        &self,
        key: NewSigningKey,
        replaces: Option<KeyId>,
        at: DateTime<Utc>,
    ) -> Result<KeyringEvent, KeyringError> {
        if self.active != replaces {
            return Err(KeyringError::ActiveKeyChanged);
        }
        if self.key(&key.kid).is_some() {
            return Err(KeyringError::DuplicateKey(key.kid));
        }
        // One successor at a time: replicas racing to rotate must not leave extra keys behind
        // that verify forever without ever signing.
        if let Some(pending) = self.keys.iter().find(|k| k.is_pending()) {
            return Err(KeyringError::PendingKey(pending.kid.clone()));
        }
        let invalid = |reason: &str| KeyringError::InvalidKey {
            kid: key.kid.clone(),
            reason: reason.to_owned(),
        };
        if !key.public_jwk.fits(key.algorithm) {
            return Err(invalid(&format!(
                "the public key does not fit {}",
                key.algorithm.as_str()
            )));
        }
        if key.sealed_private_key.is_empty() || key.kek_id.is_empty() {
            return Err(invalid("the private key is not sealed"));
        }
        Ok(KeyringEvent::SigningKeyGenerated {
            kid: key.kid,
            algorithm: key.algorithm,
            public_jwk: key.public_jwk,
            sealed_private_key: key.sealed_private_key,
            kek_id: key.kek_id,
            generated_at: at,
        })
    }

    fn activate(
        &self,
        kid: KeyId,
        at: DateTime<Utc>,
    ) -> Result<Option<KeyringEvent>, KeyringError> {
        let key = self
            .key(&kid)
            .ok_or_else(|| KeyringError::UnknownKey(kid.clone()))?;
        if key.retired_at.is_some() {
            return Err(KeyringError::Retired(kid));
        }
        if self.active.as_ref() == Some(&kid) {
            // Already signing: activating it again changes nothing, so it records nothing.
            return Ok(None);
        }
        if key.activated_at.is_some() {
            // Its overlap was counted from when it stopped signing; signing again would let
            // it be retired while fresh tokens still carry it.
            return Err(KeyringError::Superseded(kid));
        }
        Ok(Some(KeyringEvent::SigningKeyActivated {
            kid,
            activated_at: at,
        }))
    }

    fn retire(
        &self,
        kid: KeyId,
        tokens_valid_for: chrono::Duration,
        at: DateTime<Utc>,
    ) -> Result<KeyringEvent, KeyringError> {
        let key = self
            .key(&kid)
            .ok_or_else(|| KeyringError::UnknownKey(kid.clone()))?;
        if key.retired_at.is_some() {
            return Err(KeyringError::Retired(kid));
        }
        if self.active.as_ref() == Some(&kid) {
            return Err(KeyringError::ActiveKey(kid));
        }
        // A key that never signed may go at once; one that did waits for its last token.
        if let Some(stopped) = key.deactivated_at {
            let until = stopped + tokens_valid_for;
            if at < until {
                return Err(KeyringError::StillVerifying { kid, until });
            }
        }
        Ok(KeyringEvent::SigningKeyRetired {
            kid,
            retired_at: at,
        })
    }
}

impl Aggregate for Keyring {
    const TYPE: &'static str = "Keyring";
    type Command = KeyringCommand;
    type Event = KeyringEvent;
    type Error = KeyringError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            KeyringCommand::GenerateSigningKey { key, replaces, at } => {
                Some(self.generate(key, replaces, at)?)
            }
            KeyringCommand::ActivateSigningKey { kid, at } => self.activate(kid, at)?,
            KeyringCommand::RetireSigningKey {
                kid,
                tokens_valid_for,
                at,
            } => Some(self.retire(kid, tokens_valid_for, at)?),
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            KeyringEvent::SigningKeyGenerated {
                kid,
                algorithm,
                public_jwk,
                sealed_private_key,
                kek_id,
                generated_at,
            } => self.keys.push(StoredSigningKey {
                kid,
                algorithm,
                public_jwk,
                sealed_private_key,
                kek_id,
                generated_at,
                activated_at: None,
                deactivated_at: None,
                retired_at: None,
            }),
            KeyringEvent::SigningKeyActivated { kid, activated_at } => {
                if let Some(previous) = self.active.take() {
                    if let Some(previous) = self.key_mut(&previous) {
                        previous.deactivated_at = Some(activated_at);
                    }
                }
                if let Some(key) = self.key_mut(&kid) {
                    key.activated_at = Some(activated_at);
                }
                self.active = Some(kid);
            }
            KeyringEvent::SigningKeyRetired { kid, retired_at } => {
                if let Some(key) = self.key_mut(&kid) {
                    key.retired_at = Some(retired_at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use cqrs_es::test::TestFramework;

    use super::*;

    type Given = TestFramework<Keyring>;

    fn kid(n: u8) -> KeyId {
        KeyId::parse(&format!("{}{}", char::from(b'A' + n), "x".repeat(42))).unwrap()
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn new_key(n: u8) -> NewSigningKey {
        NewSigningKey {
            kid: kid(n),
            algorithm: SigningAlgorithm::Es256,
            public_jwk: PublicJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: "x".repeat(43),
                y: "y".repeat(43),
            },
            sealed_private_key: "c2VhbGVk".into(),
            kek_id: "0123456789abcdef".into(),
        }
    }

    fn generated(n: u8, minutes: i64) -> KeyringEvent {
        let key = new_key(n);
        KeyringEvent::SigningKeyGenerated {
            kid: key.kid,
            algorithm: key.algorithm,
            public_jwk: key.public_jwk,
            sealed_private_key: key.sealed_private_key,
            kek_id: key.kek_id,
            generated_at: at(minutes),
        }
    }

    fn activated(n: u8, minutes: i64) -> KeyringEvent {
        KeyringEvent::SigningKeyActivated {
            kid: kid(n),
            activated_at: at(minutes),
        }
    }

    fn retired(n: u8, minutes: i64) -> KeyringEvent {
        KeyringEvent::SigningKeyRetired {
            kid: kid(n),
            retired_at: at(minutes),
        }
    }

    fn retire(n: u8, minutes: i64) -> KeyringCommand {
        KeyringCommand::RetireSigningKey {
            kid: kid(n),
            tokens_valid_for: Duration::minutes(15),
            at: at(minutes),
        }
    }

    /// Key 0 signed from minute 0 to 60, key 1 signs since minute 60.
    fn rotated() -> Vec<KeyringEvent> {
        vec![
            generated(0, 0),
            activated(0, 0),
            generated(1, 59),
            activated(1, 60),
        ]
    }

    #[test]
    fn a_generated_key_is_recorded_with_its_sealed_half() {
        Given::with(())
            .given_no_previous_events()
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(0),
                replaces: None,
                at: at(0),
            })
            .then_expect_events(vec![generated(0, 0)]);
    }

    #[test]
    fn a_key_id_is_generated_once() {
        Given::with(())
            .given(vec![generated(0, 0), retired(0, 1)])
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(0),
                replaces: None,
                at: at(2),
            })
            .then_expect_error(KeyringError::DuplicateKey(kid(0)));
    }

    #[test]
    fn a_successor_is_generated_for_the_active_key() {
        Given::with(())
            .given(vec![generated(0, 0), activated(0, 0)])
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(1),
                replaces: Some(kid(0)),
                at: at(59),
            })
            .then_expect_events(vec![generated(1, 59)]);
    }

    #[test]
    fn a_key_planned_on_a_stale_view_is_refused() {
        Given::with(())
            .given(vec![generated(0, 0), activated(0, 0)])
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(1),
                replaces: None,
                at: at(1),
            })
            .then_expect_error(KeyringError::ActiveKeyChanged);
        Given::with(())
            .given(rotated())
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(2),
                replaces: Some(kid(0)),
                at: at(61),
            })
            .then_expect_error(KeyringError::ActiveKeyChanged);
    }

    #[test]
    fn a_second_key_waiting_to_sign_is_refused() {
        Given::with(())
            .given(vec![generated(0, 0), activated(0, 0), generated(1, 5)])
            .when(KeyringCommand::GenerateSigningKey {
                key: new_key(2),
                replaces: Some(kid(0)),
                at: at(6),
            })
            .then_expect_error(KeyringError::PendingKey(kid(1)));
    }

    #[test]
    fn a_key_that_does_not_fit_its_algorithm_or_is_not_sealed_is_refused() {
        let mut wrong_curve = new_key(0);
        wrong_curve.public_jwk.crv = "P-384".into();
        Given::with(())
            .given_no_previous_events()
            .when(KeyringCommand::GenerateSigningKey {
                key: wrong_curve,
                replaces: None,
                at: at(0),
            })
            .then_expect_error(KeyringError::InvalidKey {
                kid: kid(0),
                reason: "the public key does not fit ES256".into(),
            });
        let mut unsealed = new_key(0);
        unsealed.sealed_private_key = String::new();
        Given::with(())
            .given_no_previous_events()
            .when(KeyringCommand::GenerateSigningKey {
                key: unsealed,
                replaces: None,
                at: at(0),
            })
            .then_expect_error(KeyringError::InvalidKey {
                kid: kid(0),
                reason: "the private key is not sealed".into(),
            });
    }

    #[test]
    fn a_generated_key_is_activated() {
        Given::with(())
            .given(vec![generated(0, 0)])
            .when(KeyringCommand::ActivateSigningKey {
                kid: kid(0),
                at: at(1),
            })
            .then_expect_events(vec![activated(0, 1)]);
    }

    #[test]
    fn activating_the_active_key_records_nothing() {
        Given::with(())
            .given(vec![generated(0, 0), activated(0, 0)])
            .when(KeyringCommand::ActivateSigningKey {
                kid: kid(0),
                at: at(1),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn unknown_retired_or_superseded_keys_are_not_activated() {
        Given::with(())
            .given_no_previous_events()
            .when(KeyringCommand::ActivateSigningKey {
                kid: kid(0),
                at: at(0),
            })
            .then_expect_error(KeyringError::UnknownKey(kid(0)));
        Given::with(())
            .given(vec![generated(0, 0), retired(0, 1)])
            .when(KeyringCommand::ActivateSigningKey {
                kid: kid(0),
                at: at(2),
            })
            .then_expect_error(KeyringError::Retired(kid(0)));
        Given::with(())
            .given(rotated())
            .when(KeyringCommand::ActivateSigningKey {
                kid: kid(0),
                at: at(61),
            })
            .then_expect_error(KeyringError::Superseded(kid(0)));
    }

    #[test]
    fn activation_hands_signing_over_and_the_old_key_keeps_verifying() {
        let mut keyring = Keyring::default();
        for event in rotated() {
            keyring.apply(event);
        }
        assert_eq!(keyring.active().map(|k| &k.kid), Some(&kid(1)));
        let old = keyring.key(&kid(0)).unwrap();
        assert_eq!(old.deactivated_at, Some(at(60)));
        assert!(old.verifies() && !old.is_pending());
    }

    #[test]
    fn a_replaced_key_is_retired_once_its_tokens_have_expired() {
        Given::with(())
            .given(rotated())
            .when(retire(0, 75))
            .then_expect_events(vec![retired(0, 75)]);
    }

    #[test]
    fn a_replaced_key_is_not_retired_while_its_tokens_may_be_valid() {
        Given::with(())
            .given(rotated())
            .when(retire(0, 74))
            .then_expect_error(KeyringError::StillVerifying {
                kid: kid(0),
                until: at(75),
            });
    }

    #[test]
    fn a_key_that_never_signed_is_retired_at_once() {
        Given::with(())
            .given(vec![generated(0, 0), activated(0, 0), generated(1, 5)])
            .when(retire(1, 6))
            .then_expect_events(vec![retired(1, 6)]);
    }

    #[test]
    fn the_active_unknown_or_retired_keys_are_not_retired() {
        Given::with(())
            .given(rotated())
            .when(retire(1, 500))
            .then_expect_error(KeyringError::ActiveKey(kid(1)));
        Given::with(())
            .given(rotated())
            .when(retire(7, 500))
            .then_expect_error(KeyringError::UnknownKey(kid(7)));
        let mut events = rotated();
        events.push(retired(0, 80));
        Given::with(())
            .given(events)
            .when(retire(0, 90))
            .then_expect_error(KeyringError::Retired(kid(0)));
    }
}
