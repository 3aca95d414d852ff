//! The device authorization grant (RFC 8628) for kubectl on machines without a browser. The
//! machine asks for a device code and a short user code (`/oauth/device_authorization`); its
//! user enters the user code at `/oauth/device` in a browser signed in to the control plane,
//! sees the same approval page as the code flow, and allows or denies; meanwhile the machine
//! polls `/oauth/token` with the device code. Codes are single use and expire; the device code
//! and the approval page's secret are stored as SHA-256 hashes only.

use std::time::Duration;

use chrono::Utc;
use hexabase_command::UserId;

use super::Client;
use ring::rand::{SecureRandom, SystemRandom};

use sqlx::PgPool;

use crate::issuer::code::{GrantError, StoreError};
use crate::secrets::{self, RandomError};

/// How long a device code stays good.
pub const DEVICE_TTL: Duration = Duration::from_secs(600);
/// Seconds a machine waits between polls (RFC 8628 §3.2 default).
pub const POLL_INTERVAL: u64 = 5;
/// Consonants only, so no code spells a word, and none that look alike (RFC 8628 §6.1).
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const CODE_LENGTH: usize = 8;

/// A started device authorization, as the machine is told.
#[derive(Debug)]
pub struct Started {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// 8 letters of `ALPHABET` (20^8 ≈ 2^34.6; guesses are rate-limited and codes live 10 minutes).
fn new_user_code() -> Result<String, RandomError> {
    let random = SystemRandom::new();
    let mut code = String::with_capacity(CODE_LENGTH);
    while code.len() < CODE_LENGTH {
        let mut byte = [0u8; 1];
        random.fill(&mut byte).map_err(|_| RandomError)?;
        // Only bytes below the largest multiple of the alphabet's size: no bias.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            code.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(code)
}

/// `XXXX-XXXX` for people.
pub fn display(code: &str) -> String {
    let (first, second) = code.split_at(code.len().min(CODE_LENGTH / 2));
    format!("{first}-{second}")
}

/// A user code as typed (any case, with or without the dash or spaces), if it can be one.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// Start a device authorization for `client`.
pub async fn start(pool: &PgPool, client: &Client) -> Result<Started, StoreError> {
    let device_code = secrets::random_token()?;
    let expires_at = Utc::now() + chrono::Duration::from_std(DEVICE_TTL).unwrap_or_default();
    // A user code already taken (by a live request) is drawn again.
    for _ in 0..5 {
        let user_code = new_user_code()?;
        let inserted = sqlx::query(
            "INSERT INTO oidc_device_grants (device_hash, user_code, client_id, interval_secs, \
                                             expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_code) DO NOTHING",
        )
        .bind(secrets::hash(&device_code))
        .bind(&user_code)
        .bind(client.as_str())
        .bind(POLL_INTERVAL as i32)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Started {
                device_code,
                user_code: display(&user_code),
                expires_in: DEVICE_TTL.as_secs(),
                interval: POLL_INTERVAL,
            });
        }
    }
    Err(StoreError::Database(sqlx::Error::Protocol(
        "no free user code after five draws".into(),
    )))
}

/// The client whose request waits for an answer under `user_code`, if any.
pub async fn waiting_client(pool: &PgPool, user_code: &str) -> Result<Option<Client>, StoreError> {
    let client: Option<String> = sqlx::query_scalar(
        "SELECT client_id FROM oidc_device_grants \
         WHERE user_code = $1 AND user_id IS NULL AND NOT denied AND expires_at > now()",
    )
    .bind(user_code)
    .fetch_optional(pool)
    .await?;
    Ok(client.and_then(|c| Client::parse(&c)))
}

/// `user` — who may hold tokens for the client, checked by the caller — entered `user_code`:
/// a new secret for their approval page (which replaces any earlier page's), if the request
/// still waits for an answer.
pub async fn open_approval(
    pool: &PgPool,
    user_code: &str,
    user: &UserId,
) -> Result<Option<String>, StoreError> {
    let approval = secrets::random_token()?;
    let opened = sqlx::query(
        "UPDATE oidc_device_grants SET approval_hash = $2, approver = $3 \
         WHERE user_code = $1 AND user_id IS NULL AND NOT denied AND expires_at > now()",
    )
    .bind(user_code)
    .bind(secrets::hash(&approval))
    .bind(user.as_str())
    .execute(pool)
    .await?
    .rows_affected();
    Ok((opened == 1).then_some(approval))
}

/// `user`'s answer on the approval page behind `approval`: whether there was such a page of
/// theirs waiting (it is used up either way).
pub async fn decide(
    pool: &PgPool,
    approval: &str,
    user: &UserId,
    allow: bool,
) -> Result<bool, StoreError> {
    let sql = if allow {
        "UPDATE oidc_device_grants SET user_id = approver, approval_hash = NULL \
         WHERE approval_hash = $1 AND approver = $2 AND user_id IS NULL AND NOT denied \
           AND expires_at > now()"
    } else {
        "UPDATE oidc_device_grants SET denied = true, approval_hash = NULL \
         WHERE approval_hash = $1 AND approver = $2 AND user_id IS NULL AND NOT denied \
           AND expires_at > now()"
    };
    let decided = sqlx::query(sql)
        .bind(secrets::hash(approval))
        .bind(user.as_str())
        .execute(pool)
        .await?
        .rows_affected();
    Ok(decided == 1)
}

#[derive(sqlx::FromRow)]
struct Polled {
    user_id: Option<String>,
    denied: bool,
    expired: bool,
    too_fast: bool,
    interval_secs: i32,
}

/// The machine polls with its device code: the user who allowed it (the device code is then
/// used up), or why not yet or not at all.
pub async fn poll(
    pool: &PgPool,
    client: &Client,
    device_code: &str,
) -> Result<Result<UserId, GrantError>, sqlx::Error> {
    let hash = secrets::hash(device_code);
    let polled: Option<Polled> = sqlx::query_as(
        "WITH before AS ( \
             SELECT device_hash, polled_at IS NOT NULL \
                    AND polled_at > now() - make_interval(secs => interval_secs) AS too_fast \
             FROM oidc_device_grants WHERE device_hash = $1 AND client_id = $2 FOR UPDATE) \
         UPDATE oidc_device_grants g \
         SET polled_at = now(), \
             interval_secs = g.interval_secs + CASE WHEN b.too_fast THEN 5 ELSE 0 END \
         FROM before b WHERE g.device_hash = b.device_hash \
         RETURNING g.user_id, g.denied, g.expires_at <= now() AS expired, b.too_fast, \
                   g.interval_secs",
    )
    .bind(&hash)
    .bind(client.as_str())
    .fetch_optional(pool)
    .await?;
    // Unknown, used, or another client's: the same answer.
    let Some(polled) = polled else {
        return Ok(Err(GrantError::InvalidGrant(
            "the device code is unknown or was already used".into(),
        )));
    };
    let ended = |error: GrantError| async {
        sqlx::query("DELETE FROM oidc_device_grants WHERE device_hash = $1")
            .bind(&hash)
            .execute(pool)
            .await
            .map(|_| Err(error))
    };
    if polled.expired {
        return ended(GrantError::ExpiredToken).await;
    }
    if polled.denied {
        return ended(GrantError::AccessDenied(
            "the user denied the request".into(),
        ))
        .await;
    }
    if let Some(user) = polled.user_id {
        // Used up now: only one poll gets the tokens.
        let taken = sqlx::query("DELETE FROM oidc_device_grants WHERE device_hash = $1")
            .bind(&hash)
            .execute(pool)
            .await?
            .rows_affected();
        return Ok(match (taken, UserId::parse(&user)) {
            (1, Ok(user)) => Ok(user),
            _ => Err(GrantError::InvalidGrant(
                "the device code is unknown or was already used".into(),
            )),
        });
    }
    if polled.too_fast {
        return Ok(Err(GrantError::SlowDown(
            u64::try_from(polled.interval_secs).unwrap_or(POLL_INTERVAL),
        )));
    }
    Ok(Err(GrantError::AuthorizationPending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_unambiguous_letters_typed_any_way() {
        for _ in 0..100 {
            let code = new_user_code().unwrap();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            let shown = display(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize(&format!(" {} ", shown.to_lowercase())).as_deref(),
                Some(code.as_str())
            );
        }
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJ1", "AEIO-UBCD"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
