//! Stripe's webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…]`, each
//! `v1` an HMAC-SHA256 of `<t>.<raw body>` under an endpoint's signing secret. A delivery is
//! genuine when any `v1` matches under any of the configured secrets (several during a
//! rotation) and `t` is within the tolerance of now. Comparison is constant-time (ring's
//! `hmac::verify`); the body is checked as received, before anything parses it.

use ring::hmac;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the Stripe-Signature timestamp is {0} s away from now, beyond the tolerance")]
    OutsideTolerance(i64),
    #[error("no v1 signature matches the payload under the endpoint's secrets")]
    NoMatch,
}

/// The endpoint's secrets, ready to verify with.
pub struct Verifier {
    keys: Vec<hmac::Key>,
    tolerance_secs: i64,
}

impl Verifier {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>, tolerance_secs: u64) -> Self {
        Self {
            keys: secrets
                .into_iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()))
                .collect(),
            tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
        }
    }

    /// Whether any secret is configured.
    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Check `header` over `payload` at `now` (Unix seconds).
    pub fn verify(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: i64,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut timestamp: Option<&str> = None;
        let mut signatures: Vec<[u8; 32]> = Vec::new();
        for part in header.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed("an item is not key=value"))?;
            match key {
                "t" => timestamp = Some(value),
                "v1" => {
                    if let Some(signature) = decode_hex(value) {
                        signatures.push(signature);
                    }
                }
                // v0 (test-mode legacy) and future schemes are ignored, as Stripe's libraries do.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
        let t: i64 = timestamp
            .parse()
            .map_err(|_| SignatureError::Malformed("t= is not a number"))?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed("no v1 signature"));
        }
        let age = now.saturating_sub(t);
        if age.abs() > self.tolerance_secs {
            return Err(SignatureError::OutsideTolerance(age));
        }
        let mut signed = Vec::with_capacity(timestamp.len() + 1 + payload.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(payload);
        let genuine = self.keys.iter().any(|key| {
            signatures
                .iter()
                .any(|signature| hmac::verify(key, &signed, signature).is_ok())
        });
        if genuine {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }
}

/// The header Stripe would send for `payload` signed with `secret` at `t` (for tests and the
/// benchmark, which sign their own events).
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(payload);
    let tag = hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn decode_hex(value: &str) -> Option<[u8; 32]> {
    let bytes = value.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    #[test]
    fn a_signature_by_any_configured_secret_within_tolerance_verifies() {
        let verifier = Verifier::new(["whsec_new", "whsec_old"], 300);
        let now = 1_700_000_000;
        assert_eq!(
            verifier.verify(BODY, Some(&sign(BODY, "whsec_new", now)), now),
            Ok(())
        );
        assert_eq!(
            verifier.verify(BODY, Some(&sign(BODY, "whsec_old", now - 299)), now),
            Ok(())
        );
        // Several v1 signatures: one good one is enough.
        let good = sign(BODY, "whsec_old", now);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={now},v1={},v1={v1},v0=abc", "0".repeat(64));
        assert_eq!(verifier.verify(BODY, Some(&header), now), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        let verifier = Verifier::new(["whsec_new"], 300);
        let now = 1_700_000_000;
        assert_eq!(
            verifier.verify(BODY, None, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verifier.verify(BODY, Some(&sign(BODY, "whsec_retired", now)), now),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verifier.verify(
                b"{\"id\":\"evt_2\"}",
                Some(&sign(BODY, "whsec_new", now)),
                now
            ),
            Err(SignatureError::NoMatch)
        );
        assert!(matches!(
            verifier.verify(BODY, Some(&sign(BODY, "whsec_new", now - 301)), now),
            Err(SignatureError::OutsideTolerance(301))
        ));
        for bad in ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage"] {
            assert!(verifier.verify(BODY, Some(bad), now).is_err(), "{bad}");
        }
        // The timestamp is part of what is signed.
        let header =
            sign(BODY, "whsec_new", now).replace(&format!("t={now}"), &format!("t={}", now - 1));
        assert_eq!(
            verifier.verify(BODY, Some(&header), now),
            Err(SignatureError::NoMatch)
        );
    }
}
