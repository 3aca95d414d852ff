//! API access tokens: ES256 JWTs signed by the control plane's `sessions` keyring.
//!
//! Tokens are signed with the keyring's active key and verified against every key it still
//! trusts, chosen by `kid` (the RFC 7638 thumbprint of the public key, so every replica derives
//! the same id). Verification checks the algorithm, `kid`, signature, `iss`, `aud`, `exp` and
//! `nbf`; there is no other way in. The keys themselves live in the event store (see
//! `crate::keyring`), which swaps new key sets in here as keys rotate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hexabase_command::keyring::PublicJwk;
use hexabase_command::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::AuthSettings;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key: {0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with ES256 by a known key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    /// The login session the token belongs to; logging out revokes every token of the session.
    /// Every token issued at sign-in names its session; one without cannot be revoked early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Who is calling, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub token_id: String,
    pub session: Option<String>,
    /// When the token expires (seconds since the epoch).
    pub expires_at: u64,
}

/// The RFC 7638 thumbprint of a P-256 public key: its `kid`.
pub fn jwk_thumbprint(jwk: &PublicJwk) -> String {
    // Required members only, in lexicographic order, without whitespace.
    let input = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk.crv, jwk.kty, jwk.x, jwk.y
    );
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        input.as_bytes(),
    ))
}

/// A private ES256 key: what signs.
pub struct SigningKey {
    kid: String,
    public_jwk: PublicJwk,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// A fresh P-256 key as PKCS#8 DER.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|pkcs8| pkcs8.as_ref().to_vec())
            .map_err(|_| KeyError::Invalid("key generation failed".into()))
    }

    /// A fresh P-256 key as PKCS#8 PEM.
    pub fn generate_pem() -> Result<String, KeyError> {
        let body = STANDARD.encode(Self::generate_pkcs8()?);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Ok(pem)
    }

    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::trim)
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| KeyError::Invalid("not a PEM file".into()))?;
        Self::from_pkcs8(&der)
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|_| KeyError::Invalid("not a PKCS#8 P-256 private key".into()))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError::Invalid("unexpected public key encoding".into()));
        }
        let public_jwk = PublicJwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..65]),
        };
        let verifying = VerifyingKey::from_jwk(&public_jwk)?;
        Ok(Self {
            kid: verifying.kid,
            public_jwk,
            encoding: EncodingKey::from_ec_der(der),
            decoding: verifying.decoding,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in a JWKS.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public_jwk
    }
}

/// The public half of a key: what verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    decoding: DecodingKey,
}

impl VerifyingKey {
    pub fn from_jwk(jwk: &PublicJwk) -> Result<Self, KeyError> {
        if jwk.kty != "EC" || jwk.crv != "P-256" {
            return Err(KeyError::Invalid(format!(
                "a {} {} key cannot verify ES256",
                jwk.kty, jwk.crv
            )));
        }
        let decoding = DecodingKey::from_ec_components(&jwk.x, &jwk.y)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Self {
            kid: jwk_thumbprint(jwk),
            decoding,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The keys tokens are signed and verified with: one signing key, and every key whose tokens
/// are still accepted (the signing key among them).
#[derive(Clone)]
pub struct KeySet {
    signing: Arc<SigningKey>,
    verifying: HashMap<String, DecodingKey>,
}

impl KeySet {
    pub fn new(
        signing: Arc<SigningKey>,
        verifying: impl IntoIterator<Item = VerifyingKey>,
    ) -> Self {
        let mut keys: HashMap<String, DecodingKey> = verifying
            .into_iter()
            .map(|key| (key.kid, key.decoding))
            .collect();
        keys.insert(signing.kid.clone(), signing.decoding.clone());
        Self {
            signing,
            verifying: keys,
        }
    }

    pub fn signing_kid(&self) -> &str {
        &self.signing.kid
    }

    /// Whether tokens signed by `kid` are accepted.
    pub fn verifies(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }
}

impl From<SigningKey> for KeySet {
    fn from(key: SigningKey) -> Self {
        Self::new(Arc::new(key), [])
    }
}

/// Issues and verifies API access tokens.
pub struct Tokens {
    keys: RwLock<Arc<KeySet>>,
    issuer: String,
    audience: String,
    ttl: Duration,
    /// Tokens that verified, with their expiry: a client sends the same token many times, and an
    /// ES256 verification costs more than the rest of a simple request. Keyed by the whole
    /// token, so only an identical token is ever accepted from here. Emptied when a key stops
    /// verifying.
    verified: Mutex<HashMap<String, (Principal, u64)>>,
    /// Raised when a token names a key this replica does not know: another replica may have
    /// rotated, so the keyring is read again (see `crate::keyring`).
    reload: Notify,
    last_reload: Mutex<Option<Instant>>,
}

/// Verified tokens remembered at most (the cache is emptied when full).
const VERIFIED_CACHE: usize = 10_000;
/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: u64 = 30;
/// Unknown `kid`s ask for a keyring reload at most this often, so made-up ids cannot make every
/// request read the store.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(keys: impl Into<KeySet>, settings: &AuthSettings) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys.into())),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: Duration::from_secs(settings.token_ttl_secs),
            verified: Mutex::new(HashMap::new()),
            reload: Notify::new(),
            last_reload: Mutex::new(None),
        }
    }

    fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sign with `keys` from now on. Tokens of keys that left the set stop verifying at once,
    /// including those remembered as verified.
    pub fn set_keys(&self, keys: KeySet) {
        let keys = Arc::new(keys);
        let dropped = {
            let mut current = match self.keys.write() {
                Ok(current) => current,
                Err(poisoned) => poisoned.into_inner(),
            };
            let dropped = current.verifying.keys().any(|kid| !keys.verifies(kid));
            *current = keys;
            dropped
        };
        if dropped {
            if let Ok(mut cache) = self.verified.lock() {
                cache.clear();
            }
        }
    }

    /// The `kid` new tokens carry.
    pub fn signing_kid(&self) -> String {
        self.keys().signing.kid.clone()
    }

    /// Completes when a token named an unknown key and the keyring should be read again.
    pub async fn reload_requested(&self) {
        self.reload.notified().await
    }

    fn request_reload(&self) {
        let Ok(mut last) = self.last_reload.lock() else {
            return;
        };
        if last.is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL) {
            *last = Some(Instant::now());
            self.reload.notify_one();
        }
    }

    pub fn issue(&self, user: &UserId) -> Result<String, TokenError> {
        self.issue_with_ttl(user, self.ttl)
    }

    pub fn issue_with_ttl(&self, user: &UserId, ttl: Duration) -> Result<String, TokenError> {
        self.sign(&self.claims_for(user, ttl))
    }

    /// An access token of a login session, with the configured lifetime; returns it with its
    /// expiry.
    pub fn issue_for_session(
        &self,
        user: &UserId,
        session: &str,
    ) -> Result<(String, u64), TokenError> {
        let mut claims = self.claims_for(user, self.ttl);
        claims.sid = Some(session.to_owned());
        Ok((self.sign(&claims)?, claims.exp))
    }

    /// Lifetime of access tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The claims of an access token for `user`, valid from now for `ttl`.
    pub fn claims_for(&self, user: &UserId, ttl: Duration) -> Claims {
        let now = now_secs();
        Claims {
            sub: user.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(ttl.as_secs()),
            iat: now,
            nbf: now,
            jti: Uuid::now_v7().to_string(),
            sid: None,
        }
    }

    /// Sign arbitrary claims with the active key (tests use it to build bad tokens the real
    /// way).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let keys = self.keys();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.signing.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Sign any claims with the active key (`kid` in the header), e.g. a workspace ID token.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        let keys = self.keys();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.signing.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Verify a token signed by one of this keyring's keys for `audience` (ES256, known `kid`,
    /// `iss`, `aud`, `exp`, `nbf`).
    pub fn verify_claims<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::UnknownKey);
        }
        let keys = self.keys();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifying.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let now = now_secs();
        if let Ok(cache) = self.verified.lock() {
            if let Some((principal, exp)) = cache.get(token) {
                if now <= exp.saturating_add(LEEWAY) {
                    return Ok(principal.clone());
                }
            }
        }
        let (principal, exp) = self.verify_signature(token)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE {
                cache.clear();
            }
            cache.insert(token.to_owned(), (principal.clone(), exp));
        }
        Ok(principal)
    }

    fn verify_signature(&self, token: &str) -> Result<(Principal, u64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::UnknownKey);
        }
        let keys = self.keys();
        let Some(key) = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifying.get(kid))
        else {
            if header.kid.is_some() {
                self.request_reload();
            }
            return Err(TokenError::UnknownKey);
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let user = UserId::parse(&data.claims.sub)
            .map_err(|_| TokenError::Invalid("`sub` is not a user id".into()))?;
        Ok((
            Principal {
                user,
                token_id: data.claims.jti,
                session: data.claims.sid,
                expires_at: data.claims.exp,
            },
            data.claims.exp,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            issuer: "https://hexabase.test".into(),
            audience: "hexabase-api".into(),
            key_encryption_key: None,
            key_encryption_key_file: "unused".into(),
            key_rotation_secs: 3600,
            token_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            login_ttl_secs: 600,
            providers: Default::default(),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap()
    }

    fn tokens() -> Tokens {
        Tokens::new(key(), &settings())
    }

    fn verifying(key: &SigningKey) -> VerifyingKey {
        VerifyingKey::from_jwk(key.public_jwk()).unwrap()
    }

    fn claims(t: &Tokens, user: &UserId) -> Claims {
        t.claims_for(user, Duration::from_secs(60))
    }

    #[test]
    fn issued_tokens_verify() {
        let t = tokens();
        let user = UserId::generate();
        let token = t.issue(&user).unwrap();
        assert_eq!(t.verify(&token).unwrap().user, user);
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(),
            t.signing_kid()
        );
    }

    #[test]
    fn wrong_issuer_audience_expiry_or_subject_are_refused() {
        let t = tokens();
        let user = UserId::generate();
        let mut c = claims(&t, &user);
        c.iss = "https://evil.test".into();
        assert!(matches!(
            t.verify(&t.sign(&c).unwrap()),
            Err(TokenError::Invalid(_))
        ));
        let mut c = claims(&t, &user);
        c.aud = "ws-other".into();
        assert!(matches!(
            t.verify(&t.sign(&c).unwrap()),
            Err(TokenError::Invalid(_))
        ));
        let mut c = claims(&t, &user);
        c.exp = now_secs() - 120;
        assert!(matches!(
            t.verify(&t.sign(&c).unwrap()),
            Err(TokenError::Invalid(_))
        ));
        let mut c = claims(&t, &user);
        c.sub = "root".into();
        assert!(matches!(
            t.verify(&t.sign(&c).unwrap()),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn another_key_alg_none_and_garbage_are_refused() {
        let (a, b) = (tokens(), tokens());
        let user = UserId::generate();
        assert_eq!(
            a.verify(&b.issue(&user).unwrap()),
            Err(TokenError::UnknownKey)
        );
        let token = a.issue(&user).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(a.verify(&format!("{none_header}.{payload}.")).is_err());
        assert_eq!(a.verify("not-a-token"), Err(TokenError::Malformed));
        // Same header and claims, signature from the other key: refused.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = b.sign(&claims(&a, &user)).unwrap();
        parts[2] = other.split('.').nth(2).unwrap();
        assert!(matches!(
            a.verify(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_remembered_token_does_not_vouch_for_an_altered_one() {
        let t = tokens();
        let user = UserId::generate();
        let token = t.issue(&user).unwrap();
        assert_eq!(t.verify(&token).unwrap().user, user);
        assert_eq!(
            t.verify(&token).unwrap().user,
            user,
            "second time from the cache"
        );
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = claims(&t, &UserId::generate());
        claims.exp = now_secs() + 60;
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert!(matches!(
            t.verify(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn after_a_rotation_new_tokens_carry_the_new_key_and_old_ones_verify_until_it_leaves() {
        let (old, new) = (Arc::new(key()), Arc::new(key()));
        let t = Tokens::new(KeySet::new(old.clone(), []), &settings());
        let user = UserId::generate();
        let before = t.issue(&user).unwrap();
        assert_eq!(t.verify(&before).unwrap().user, user, "now remembered");

        t.set_keys(KeySet::new(new.clone(), [verifying(&old)]));
        let after = t.issue(&user).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
            Some(new.kid())
        );
        assert_eq!(t.verify(&after).unwrap().user, user);
        assert_eq!(t.verify(&before).unwrap().user, user);

        t.set_keys(KeySet::new(new, []));
        assert_eq!(
            t.verify(&before),
            Err(TokenError::UnknownKey),
            "forgotten too"
        );
        assert_eq!(t.verify(&after).unwrap().user, user);
    }

    #[tokio::test]
    async fn an_unknown_key_asks_for_a_reload_at_most_every_few_seconds() {
        let (a, b) = (tokens(), tokens());
        let user = UserId::generate();
        let foreign = b.issue(&user).unwrap();
        assert_eq!(a.verify(&foreign), Err(TokenError::UnknownKey));
        tokio::time::timeout(Duration::from_secs(1), a.reload_requested())
            .await
            .expect("a reload was requested");
        assert_eq!(a.verify(&foreign), Err(TokenError::UnknownKey));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.reload_requested())
                .await
                .is_err(),
            "not again so soon"
        );
    }

    #[test]
    fn verifying_keys_are_named_by_their_thumbprint() {
        let key = key();
        assert_eq!(verifying(&key).kid(), key.kid());
        assert_eq!(jwk_thumbprint(key.public_jwk()), key.kid());
        let mut wrong = key.public_jwk().clone();
        wrong.crv = "P-384".into();
        assert!(VerifyingKey::from_jwk(&wrong).is_err());
    }

    #[test]
    fn keys_survive_a_round_trip_through_pem() {
        let pem = SigningKey::generate_pem().unwrap();
        let (a, b) = (
            SigningKey::from_pem(&pem).unwrap(),
            SigningKey::from_pem(&pem).unwrap(),
        );
        assert_eq!(a.kid, b.kid);
        assert!(SigningKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        )
        .is_err());
    }
}
