//! API access tokens: ES256 JWTs signed by the control plane's own key.
//!
//! The key is a PKCS#8 PEM file; its `kid` is the RFC 7638 thumbprint of the public key, so
//! every replica holding the same file agrees on it. Verification checks the algorithm, `kid`,
//! signature, `iss`, `aud`, `exp` and `nbf`; there is no other way in.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hexabase_command::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthSettings;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {reason}")]
    Unreadable { path: String, reason: String },
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
    /// Tokens an operator signs with `hexabase token` have none.
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

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// A fresh P-256 key as PKCS#8 PEM.
    pub fn generate_pem() -> Result<String, KeyError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Invalid("key generation failed".into()))?;
        let body = STANDARD.encode(pkcs8.as_ref());
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
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|_| KeyError::Invalid("not a PKCS#8 P-256 private key".into()))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError::Invalid("unexpected public key encoding".into()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            thumbprint_input.as_bytes(),
        ));
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ec_der(&der),
            decoding,
        })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_pem(&pem)
    }

    /// Write a new key to `path` unless one is there already (used by `dev` and `keygen`).
    pub fn create_if_missing(path: &Path) -> Result<bool, KeyError> {
        if path.exists() {
            return Ok(false);
        }
        let unreadable = |e: std::io::Error| KeyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unreadable)?;
        }
        let pem = Self::generate_pem()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(unreadable)?;
        std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(unreadable)?;
        Ok(true)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Issues and verifies API access tokens.
pub struct Tokens {
    key: SigningKey,
    issuer: String,
    audience: String,
    ttl: Duration,
    /// Tokens that verified, with their expiry: a client sends the same token many times, and an
    /// ES256 verification costs more than the rest of a simple request. Keyed by the whole
    /// token, so only an identical token is ever accepted from here.
    verified: Mutex<HashMap<String, (Principal, u64)>>,
}

/// Verified tokens remembered at most (the cache is emptied when full).
const VERIFIED_CACHE: usize = 10_000;
/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY: u64 = 30;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(key: SigningKey, settings: &AuthSettings) -> Self {
        Self {
            key,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: Duration::from_secs(settings.token_ttl_secs),
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeyError> {
        Ok(Self::new(
            SigningKey::load(&settings.signing_key_file)?,
            settings,
        ))
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

    /// Sign arbitrary claims with the control plane's key (tests use it to build bad tokens the
    /// real way).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key.encoding)
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
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(self.key.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key.decoding, &validation)
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
            signing_key_file: "unused".into(),
            token_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            login_ttl_secs: 600,
            providers: Default::default(),
        }
    }

    fn tokens() -> Tokens {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        Tokens::new(key, &settings())
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
            t.key.kid
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
