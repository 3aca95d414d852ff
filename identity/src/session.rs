//! Login sessions: a short-lived access JWT plus an opaque refresh token, stored hashed and
//! rotated on every refresh. Presenting a refresh token that was already rotated means it was
//! copied: the whole session is revoked. Revocations are written to Postgres (the record) and
//! to Redis (what every API replica checks on every request); while Redis is unreachable the
//! replicas check Postgres instead.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hexabase_command::UserId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::secrets::{self, RandomError};
use crate::shared::Shared;
use crate::token::{TokenError, Tokens};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the refresh token is unknown or expired")]
    UnknownRefreshToken,
    #[error("the session has been signed out")]
    Revoked,
    #[error("the refresh token was already used; the session has been revoked")]
    Reused,
    #[error("the refresh token was just rotated by another request; use the newest one")]
    JustRotated,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// What a client holds after login or refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub user: UserId,
    pub session_id: String,
    pub access_token: String,
    pub access_expires_at: u64,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    /// For the browser: the value of the CSRF cookie to echo on writes.
    pub csrf_token: String,
}

/// A session's refresh token, fresh from `open` or `rotate`.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub user: UserId,
    pub session_id: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    session_id: String,
    user_id: String,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    /// Rotated within the grace period, and its successor not used yet: two tabs refreshing at
    /// once, not a copied token.
    concurrent: bool,
}

/// How long after a rotation presenting the old refresh token is taken for a concurrent
/// refresh of the same client rather than reuse.
const ROTATION_GRACE_SECS: f64 = 10.0;

/// Sign-in sessions: opened, refreshed, revoked, and checked on every request.
pub struct Sessions {
    pool: PgPool,
    shared: Arc<Shared>,
    tokens: Arc<Tokens>,
    refresh_ttl: chrono::Duration,
    revocations: RecentRevocations,
}

impl Sessions {
    /// Sessions recorded in `pool`, their revocations also in `shared`, access tokens signed by
    /// `tokens`; refresh tokens live `refresh_ttl_secs`.
    pub fn new(
        pool: PgPool,
        shared: Arc<Shared>,
        tokens: Arc<Tokens>,
        refresh_ttl_secs: u64,
    ) -> Self {
        Self {
            pool,
            shared,
            tokens,
            refresh_ttl: chrono::Duration::seconds(
                i64::try_from(refresh_ttl_secs).unwrap_or(i64::MAX / 1000),
            ),
            revocations: RecentRevocations::default(),
        }
    }

    /// The access tokens of these sessions.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    fn revoked_key(&self, session: &str) -> String {
        self.shared.key(&["revoked", session])
    }

    async fn issue(
        &self,
        user: UserId,
        session_id: String,
        refresh_expires_at: DateTime<Utc>,
        refresh_token: String,
    ) -> Result<Issued, SessionError> {
        let (access_token, access_expires_at) =
            self.tokens.issue_for_session(&user, &session_id)?;
        Ok(Issued {
            user,
            session_id,
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            csrf_token: secrets::random_token()?,
        })
    }

    /// Start a session for `user`, who just signed in through `provider`.
    pub async fn create(&self, user: UserId, provider: &str) -> Result<Issued, SessionError> {
        let opened = self.open(&user, provider, None).await?;
        self.issue(
            user,
            opened.session_id,
            opened.expires_at,
            opened.refresh_token,
        )
        .await
    }

    /// Record a session and its first refresh token. `client` is the workspace a grant of the
    /// OpenID provider is for (`None` for a sign-in to the control plane).
    pub async fn open(
        &self,
        user: &UserId,
        provider: &str,
        client: Option<&str>,
    ) -> Result<Rotated, SessionError> {
        let session_id = format!("hxb-ses-{}", Uuid::now_v7().simple());
        let refresh_token = secrets::random_token()?;
        let expires_at = Utc::now() + self.refresh_ttl;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, provider, expires_at, client_id) \
         VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session_id)
        .bind(user.as_str())
        .bind(provider)
        .bind(expires_at)
        .bind(client)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
            .bind(secrets::hash(&refresh_token))
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Rotated {
            user: user.clone(),
            session_id,
            refresh_token,
            expires_at,
        })
    }

    /// Exchange a refresh token of a control-plane sign-in for a new access token and a new
    /// refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued, SessionError> {
        let (tx, rotated) = self.begin_rotation(refresh_token, None).await?;
        tx.commit().await?;
        self.issue(
            rotated.user,
            rotated.session_id,
            rotated.expires_at,
            rotated.refresh_token,
        )
        .await
    }

    /// Replace a refresh token of a session of `client` (`None`: a control-plane sign-in) with a
    /// new one, in a transaction the caller commits once what the new token is for has been done
    /// (dropping it keeps the old token valid). A token of another client is unknown here, so a
    /// grant for one workspace never yields control-plane access or another workspace's tokens.
    /// Two browser tabs may refresh one sign-in at once (a short grace, nothing revoked); a
    /// workspace grant's clients refresh one at a time, so for them any reuse revokes.
    pub async fn begin_rotation(
        &self,
        refresh_token: &str,
        client: Option<&str>,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Rotated), SessionError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT s.id AS session_id, s.user_id, s.revoked_at, s.expires_at, r.rotated_at, \
         coalesce($3::text IS NULL AND r.rotated_at > now() - make_interval(secs => $2) \
                  AND next.rotated_at IS NULL, false) AS concurrent \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         LEFT JOIN refresh_tokens next ON next.token_hash = r.replaced_by \
         WHERE r.token_hash = $1 AND s.client_id IS NOT DISTINCT FROM $3 FOR UPDATE OF r, s",
        )
        .bind(secrets::hash(refresh_token))
        .bind(ROTATION_GRACE_SECS)
        .bind(client)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(RefreshRow {
            session_id,
            user_id: user,
            revoked_at,
            expires_at,
            rotated_at,
            concurrent,
        }) = row
        else {
            return Err(SessionError::UnknownRefreshToken);
        };
        if revoked_at.is_some() {
            return Err(SessionError::Revoked);
        }
        if rotated_at.is_some() && concurrent {
            return Err(SessionError::JustRotated);
        }
        if rotated_at.is_some() {
            tx.rollback().await?;
            self.revoke(&session_id, "refresh token reused").await?;
            tracing::warn!(session = %session_id, "a rotated refresh token was presented again; session revoked");
            return Err(SessionError::Reused);
        }
        if expires_at <= Utc::now() {
            return Err(SessionError::UnknownRefreshToken);
        }
        let user = UserId::parse(&user).map_err(|_| SessionError::UnknownRefreshToken)?;
        let next = secrets::random_token()?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
            .bind(secrets::hash(&next))
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = now(), replaced_by = $2 WHERE token_hash = $1",
        )
        .bind(secrets::hash(refresh_token))
        .bind(secrets::hash(&next))
        .execute(&mut *tx)
        .await?;
        Ok((
            tx,
            Rotated {
                user,
                session_id,
                refresh_token: next,
                expires_at,
            },
        ))
    }

    /// The session a refresh token belongs to, if any.
    pub async fn session_of(&self, refresh_token: &str) -> Result<Option<String>, SessionError> {
        Ok(
            sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(secrets::hash(refresh_token))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// End a session: its refresh tokens stop working at once, and so do its access tokens, on
    /// every replica.
    pub async fn revoke(&self, session: &str, reason: &str) -> Result<(), SessionError> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 \
         WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(session)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        // Access tokens of the session expire within their lifetime; remembering the revocation
        // that long is enough.
        let ttl = self.tokens.ttl() + Duration::from_secs(120);
        let mut command = redis::cmd("SET");
        command
            .arg(self.revoked_key(session))
            .arg(reason)
            .arg("EX")
            .arg(ttl.as_secs());
        if self.shared.query::<()>(&command).await.is_none() {
            tracing::warn!(
            session,
            "Redis did not record the revocation; replicas consult Postgres while Redis is down"
        );
        }
        Ok(())
    }

    /// Whether a session was signed out: Redis (written at revocation), then the recent revocations
    /// from Postgres; while Redis is unreachable, Postgres directly. A database failure counts as
    /// revoked (fail closed).
    pub async fn is_revoked(&self, session: &str) -> bool {
        let mut command = redis::cmd("EXISTS");
        command.arg(self.revoked_key(session));
        if let Some(found) = self.shared.query::<bool>(&command).await {
            if found {
                return true;
            }
            let window = self.tokens.ttl() + Duration::from_secs(120);
            if let Some(found) = self.revocations.contains(&self.pool, window, session).await {
                return found;
            }
        }
        let revoked: Result<Option<Option<DateTime<Utc>>>, _> =
            sqlx::query_scalar("SELECT revoked_at FROM sessions WHERE id = $1")
                .bind(session)
                .fetch_optional(&self.pool)
                .await;
        match revoked {
            Ok(Some(revoked_at)) => revoked_at.is_some(),
            Ok(None) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot check the session; refusing the token");
                true
            }
        }
    }
}

/// Forget what can no longer be used: finished or abandoned logins, unredeemed authorization
/// codes, and sessions (with their
/// refresh tokens) a day after they expired. Returns the rows removed.
pub async fn purge_expired(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let logins = sqlx::query("DELETE FROM login_attempts WHERE expires_at < now()")
        .execute(pool)
        .await?
        .rows_affected();
    let codes = sqlx::query("DELETE FROM oidc_authorizations WHERE expires_at < now()")
        .execute(pool)
        .await?
        .rows_affected();
    // Kept an hour past expiry, so a device still polling hears `expired_token`.
    let devices =
        sqlx::query("DELETE FROM oidc_device_grants WHERE expires_at < now() - interval '1 hour'")
            .execute(pool)
            .await?
            .rows_affected();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'")
        .execute(pool)
        .await?
        .rows_affected();
    Ok(logins + codes + devices + sessions)
}

/// Sessions revoked within the last access-token lifetime, re-read from Postgres every few
/// seconds: they cover revocations Redis missed (written while it was unreachable, or lost when
/// it restarted without persistence), so a miss lasts seconds, not a token lifetime.
pub struct RecentRevocations {
    known: std::sync::RwLock<Option<(Instant, HashSet<String>)>>,
    refreshing: tokio::sync::Mutex<()>,
}

const REVOCATIONS_POLL: Duration = Duration::from_secs(5);

impl Default for RecentRevocations {
    fn default() -> Self {
        Self {
            known: std::sync::RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }
}

impl RecentRevocations {
    fn lookup(&self, session: &str) -> Option<(bool, bool)> {
        let known = self.known.read().ok()?;
        let (at, sessions) = known.as_ref()?;
        Some((sessions.contains(session), at.elapsed() < REVOCATIONS_POLL))
    }

    /// Whether `session` is among the recent revocations; `None` when they cannot be read.
    async fn contains(&self, pool: &PgPool, window: Duration, session: &str) -> Option<bool> {
        if let Some((found, true)) = self.lookup(session) {
            return Some(found);
        }
        // One caller re-reads; the others use what is known meanwhile.
        if let Ok(_refreshing) = self.refreshing.try_lock() {
            let revoked: Result<Vec<String>, _> = sqlx::query_scalar(
                "SELECT id FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)",
            )
            .bind(window.as_secs_f64())
            .fetch_all(pool)
            .await;
            match revoked {
                Ok(ids) => {
                    if let Ok(mut known) = self.known.write() {
                        *known = Some((Instant::now(), ids.into_iter().collect()));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read recent session revocations"),
            }
        }
        self.lookup(session).map(|(found, _)| found)
    }
}
