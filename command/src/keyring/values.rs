use std::fmt;

use serde::{Deserialize, Serialize};

/// What a keyring's keys sign. The purpose is the keyring's aggregate id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// API access tokens of login sessions and operators.
    Sessions,
    /// ID tokens of the control plane's OIDC provider (what `kubectl` presents to a vCluster).
    Oidc,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Sessions => "sessions",
            KeyPurpose::Oidc => "oidc",
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key id (expected an RFC 7638 SHA-256 thumbprint: 43 base64url characters)")]
pub struct InvalidKeyId(pub String);

/// A key's `kid`: the RFC 7638 SHA-256 thumbprint of its public key, base64url without padding,
/// so every replica derives the same id from the same key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(value: &str) -> Result<Self, InvalidKeyId> {
        let valid = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidKeyId(value.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyId {
    type Error = InvalidKeyId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

/// JOSE algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
        }
    }

    /// The JWK `kty` and `crv` a public key of this algorithm has.
    fn key_type(self) -> (&'static str, &'static str) {
        match self {
            SigningAlgorithm::Es256 => ("EC", "P-256"),
        }
    }
}

/// The public half of a signing key as a JWK (RFC 7517), as published in a JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    /// Affine coordinates, base64url without padding.
    pub x: String,
    pub y: String,
}

impl PublicJwk {
    /// Whether this is a public key `algorithm` can verify with.
    pub fn fits(&self, algorithm: SigningAlgorithm) -> bool {
        let (kty, crv) = algorithm.key_type();
        let coordinate = |c: &str| {
            c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        self.kty == kty && self.crv == crv && coordinate(&self.x) && coordinate(&self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_thumbprints() {
        let kid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        assert_eq!(KeyId::parse(kid).unwrap().as_str(), kid);
        assert!(KeyId::parse("short").is_err());
        assert!(KeyId::parse("NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs").is_err());
        assert!(serde_json::from_str::<KeyId>("\"nope\"").is_err());
    }

    #[test]
    fn algorithms_serialize_by_their_jose_name() {
        assert_eq!(
            serde_json::to_string(&SigningAlgorithm::Es256).unwrap(),
            "\"ES256\""
        );
    }
}
