//! OpenID Connect relying party: discovery, JWKS, and ID token verification.
//!
//! An ID token is accepted only when it is signed with an asymmetric algorithm by a key from the
//! issuer's JWKS (found by `kid`), names the configured issuer and our client id as audience,
//! is within its validity period, and carries the nonce of the login that asked for it.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 60;

/// Signature algorithms an ID token may use. HMAC algorithms are refused: their key would be
/// the client secret (or, in the classic attack, the provider's public key).
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The parts of an issuer's discovery document a relying party needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// What the ID token says about the user.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub email_verified: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// Some providers send `email_verified` as the string `"true"`.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Flag>::deserialize(d)? {
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) => t.eq_ignore_ascii_case("true"),
        None => false,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token's algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the ID token is signed by an unknown key")]
    UnknownKey,
    #[error("the ID token is invalid: {0}")]
    Invalid(String),
    #[error("the ID token's nonce does not match the login")]
    Nonce,
}

impl IdTokenError {
    /// An unknown key may be a key the issuer rotated in after we fetched its JWKS.
    pub fn worth_refetching_keys(&self) -> bool {
        matches!(self, IdTokenError::UnknownKey)
    }
}

fn find_key<'k>(jwks: &'k JwkSet, kid: Option<&str>) -> Option<&'k Jwk> {
    match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        // Without a `kid` only an unambiguous key set will do.
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
}

/// Verify an ID token against the issuer's keys.
pub fn verify_id_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<IdClaims, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !ASYMMETRIC.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = find_key(jwks, header.kid.as_deref()).ok_or(IdTokenError::UnknownKey)?;
    if let Some(alg) = jwk.common.key_algorithm {
        if format!("{alg:?}") != format!("{:?}", header.alg) {
            return Err(IdTokenError::Algorithm(format!(
                "{:?} (the key is for {alg:?})",
                header.alg
            )));
        }
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
        .map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    if let Some(azp) = &claims.azp {
        if azp != client_id {
            return Err(IdTokenError::Invalid(
                "the token was issued to another client (azp)".into(),
            ));
        }
    }
    match &claims.nonce {
        Some(found) if crate::secrets::constant_time_eq(found, nonce) => Ok(claims),
        _ => Err(IdTokenError::Nonce),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::{json, Value};

    use super::*;

    const ISSUER: &str = "https://idp.test";
    const CLIENT: &str = "hexabase";
    const NONCE: &str = "n-0S6_WzA2Mj";

    struct Key {
        kid: String,
        der: Vec<u8>,
        jwk: Value,
    }

    fn key(kid: &str) -> Key {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &SystemRandom::new(),
        )
        .unwrap();
        let point = pair.public_key().as_ref();
        Key {
            kid: kid.into(),
            der: pkcs8.as_ref().to_vec(),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    fn jwks(keys: &[&Key]) -> JwkSet {
        serde_json::from_value(
            json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": CLIENT, "sub": "user-1", "nonce": NONCE,
            "iat": now(), "exp": now() + 300,
            "email": "ada@example.com", "email_verified": true, "name": "Ada",
        })
    }

    fn sign(key: &Key, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&key.der)).unwrap()
    }

    fn verify(token: &str, keys: &JwkSet) -> Result<IdClaims, IdTokenError> {
        verify_id_token(token, keys, ISSUER, CLIENT, NONCE)
    }

    #[test]
    fn a_good_token_verifies() {
        let k = key("k1");
        let claims = verify(&sign(&k, &claims()), &jwks(&[&k])).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert!(claims.email_verified);
        assert_eq!(claims.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn another_issuer_audience_or_client_is_refused() {
        let k = key("k1");
        for (field, value) in [
            ("iss", json!("https://evil.test")),
            ("aud", json!("another-client")),
            ("azp", json!("another-client")),
        ] {
            let mut c = claims();
            c[field] = value;
            assert!(
                matches!(
                    verify(&sign(&k, &c), &jwks(&[&k])),
                    Err(IdTokenError::Invalid(_))
                ),
                "{field}"
            );
        }
    }

    #[test]
    fn an_expired_token_or_one_from_the_future_is_refused() {
        let k = key("k1");
        let mut c = claims();
        c["exp"] = json!(now() - 600);
        assert!(matches!(
            verify(&sign(&k, &c), &jwks(&[&k])),
            Err(IdTokenError::Invalid(_))
        ));
        let mut c = claims();
        c["nbf"] = json!(now() + 600);
        assert!(matches!(
            verify(&sign(&k, &c), &jwks(&[&k])),
            Err(IdTokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_wrong_or_missing_nonce_is_refused() {
        let k = key("k1");
        let mut c = claims();
        c["nonce"] = json!("another-login");
        assert_eq!(
            verify(&sign(&k, &c), &jwks(&[&k])).unwrap_err(),
            IdTokenError::Nonce
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("nonce");
        assert_eq!(
            verify(&sign(&k, &c), &jwks(&[&k])).unwrap_err(),
            IdTokenError::Nonce
        );
    }

    #[test]
    fn an_unknown_kid_or_another_key_is_refused() {
        let (k1, k2) = (key("k1"), key("k2"));
        assert_eq!(
            verify(&sign(&k2, &claims()), &jwks(&[&k1])).unwrap_err(),
            IdTokenError::UnknownKey
        );
        // Signed by k2 but claiming to be k1.
        let mut forged = key("k1");
        forged.der = k2.der.clone();
        assert!(matches!(
            verify(&sign(&forged, &claims()), &jwks(&[&k1])),
            Err(IdTokenError::Invalid(_))
        ));
    }

    #[test]
    fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let k = key("k1");
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        assert!(verify(&format!("{none}.{payload}."), &jwks(&[&k])).is_err());
        // HS256 keyed with the provider's public key (what a naive verifier would accept).
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let public = serde_json::to_vec(&k.jwk).unwrap();
        let hs =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&public)).unwrap();
        assert_eq!(
            verify(&hs, &jwks(&[&k])).unwrap_err(),
            IdTokenError::Algorithm("HS256".into())
        );
    }

    #[test]
    fn email_verified_as_text_is_understood() {
        let k = key("k1");
        let mut c = claims();
        c["email_verified"] = json!("true");
        assert!(verify(&sign(&k, &c), &jwks(&[&k])).unwrap().email_verified);
        c["email_verified"] = json!("false");
        assert!(!verify(&sign(&k, &c), &jwks(&[&k])).unwrap().email_verified);
    }
}
