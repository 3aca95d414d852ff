//! The login flow: start (remember `state`, `nonce` and the PKCE verifier, send the browser to
//! the provider) and complete (consume the `state` once, exchange the code, find or register the
//! user — or link the identity to the signed-in user — and start a session).

use chrono::Utc;
use cqrs_es::AggregateError;
use hexabase_command::store::{load_state, with_position, Cqrs};
use hexabase_command::user::{ExternalProfile, Identity, User, UserCommand, UserError};
use hexabase_command::{CommandMetadata, UserId};
use sqlx::PgPool;

use super::{AuthorizationRequest, LoginError, Providers};
use crate::secrets::{self, pkce_challenge, random_token};

#[derive(sqlx::FromRow)]
struct Attempt {
    nonce: String,
    code_verifier: String,
    link_user: Option<String>,
    return_to: Option<String>,
    expired: bool,
}

/// Logins through the configured providers: the attempts in flight (in `pool`) and the users
/// they sign in or register (through `users`).
pub struct Logins {
    pool: PgPool,
    providers: Providers,
    users: Cqrs<User>,
    /// How long a started login stays usable.
    ttl_secs: u64,
}

/// A started login.
pub struct Started {
    pub authorization_url: String,
    pub expires_in: u64,
    /// The browser's login binder, to set as the `hxb_login` cookie.
    pub binder: String,
}

/// A completed login: who signed in, through which provider.
pub struct Completed {
    pub user: UserId,
    pub provider: String,
    /// Position of the user's event (registered, logged in, identity linked), if one was
    /// recorded.
    pub position: Option<i64>,
    pub return_to: Option<String>,
    /// The login linked a new identity to an already signed-in user.
    pub linked: bool,
}

/// Only paths on this site, never `//host` or `/\host`, so the callback is no open redirect.
fn valid_return_to(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 2048
        && !path.chars().any(char::is_control)
}

impl Logins {
    pub fn new(pool: PgPool, providers: Providers, users: Cqrs<User>, ttl_secs: u64) -> Self {
        Self {
            pool,
            providers,
            users,
            ttl_secs,
        }
    }

    /// The configured providers' names.
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.names()
    }

    /// Start a login. `binder` is the browser's `hxb_login` cookie, if it has one (reused, so
    /// logins in several tabs of one browser all complete).
    pub async fn start(
        &self,
        provider: &str,
        link_user: Option<&UserId>,
        return_to: Option<String>,
        binder: Option<String>,
    ) -> Result<Started, LoginError> {
        let provider = self.providers.get(provider)?;
        if let Some(user) = link_user {
            let current: User = load_state(&self.pool, user.as_str()).await?;
            if !current.is_registered() {
                return Err(LoginError::NotRegistered);
            }
        }
        let binder = match binder.filter(|b| b.len() == 43) {
            Some(binder) => binder,
            None => random_token()?,
        };
        if let Some(path) = &return_to {
            if !valid_return_to(path) {
                return Err(LoginError::ReturnTo);
            }
        }
        let (login_state, nonce, verifier) = (random_token()?, random_token()?, random_token()?);
        let url = provider
            .authorization_url(&AuthorizationRequest {
                state: &login_state,
                nonce: &nonce,
                code_challenge: &pkce_challenge(&verifier),
            })
            .await?;
        let ttl = self.ttl_secs;
        sqlx::query("DELETE FROM login_attempts WHERE expires_at < now()")
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO login_attempts (state_hash, binder_hash, provider, nonce, code_verifier, \
         link_user, return_to, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
        )
        .bind(secrets::hash(&login_state))
        .bind(secrets::hash(&binder))
        .bind(provider.name())
        .bind(&nonce)
        .bind(&verifier)
        .bind(link_user.map(UserId::as_str))
        .bind(&return_to)
        .bind(ttl as f64)
        .execute(&self.pool)
        .await?;
        Ok(Started {
            authorization_url: url,
            expires_in: ttl,
            binder,
        })
    }

    /// Take the login `state` names, once, if it was started with this provider in this browser:
    /// a second callback with the same `state` finds nothing, and neither does another browser.
    async fn consume(
        &self,
        provider: &str,
        login_state: &str,
        binder: &str,
    ) -> Result<Attempt, LoginError> {
        sqlx::query_as::<_, Attempt>(
        "DELETE FROM login_attempts WHERE state_hash = $1 AND provider = $2 AND binder_hash = $3 \
         RETURNING nonce, code_verifier, link_user, return_to, expires_at < now() AS expired",
    )
    .bind(secrets::hash(login_state))
    .bind(provider)
    .bind(secrets::hash(binder))
    .fetch_optional(&self.pool)
    .await?
    .ok_or_else(|| {
        LoginError::State(
            "unknown or already used `state`, or a login started with another provider or in \
             another browser; start the login again"
                .into(),
        )
    })
    }

    /// Complete the login `login_state` names: consume it (once, in the browser that started it),
    /// exchange the code, and find or register the user — or link the identity to the user who
    /// started a link.
    pub async fn complete(
        &self,
        provider_name: &str,
        code: &str,
        login_state: &str,
        binder: Option<&str>,
        request_id: &str,
    ) -> Result<Completed, LoginError> {
        let provider = self.providers.get(provider_name)?;
        let binder = binder.ok_or_else(|| {
            LoginError::State(
                "the `hxb_login` cookie of the browser that started this login is missing".into(),
            )
        })?;
        let attempt = self.consume(provider.name(), login_state, binder).await?;
        if attempt.expired {
            return Err(LoginError::State(
                "the login took too long; start again".into(),
            ));
        }
        let profile = provider
            .complete(code, &attempt.code_verifier, &attempt.nonce)
            .await?;
        if !profile.email_verified {
            return Err(LoginError::EmailNotVerified);
        }
        let (user, position, linked) = match attempt.link_user.as_deref().map(UserId::parse) {
            Some(Ok(user)) => {
                let position = self.link(&user, profile, request_id).await?;
                (user, position, true)
            }
            Some(Err(_)) => return Err(LoginError::State("the login names no valid user".into())),
            None => {
                let (user, position) = self.sign_in(profile, request_id).await?;
                (user, position, false)
            }
        };
        Ok(Completed {
            user,
            provider: provider.name().to_owned(),
            position,
            return_to: attempt.return_to,
            linked,
        })
    }

    async fn execute(
        &self,
        user: &UserId,
        command: UserCommand,
        request_id: &str,
    ) -> Result<Option<i64>, AggregateError<UserError>> {
        let metadata = CommandMetadata::for_request(user.clone(), request_id.to_owned());
        let (result, position) = with_position(self.users.execute_with_metadata(
            user.as_str(),
            command,
            metadata.into_map(),
        ))
        .await;
        result.map(|()| position)
    }
}

fn command_error(e: AggregateError<UserError>) -> LoginError {
    match e {
        AggregateError::UserError(e) => LoginError::User(e),
        AggregateError::AggregateConflict => {
            LoginError::Command("the user changed concurrently; sign in again".into())
        }
        other => LoginError::Command(other.to_string()),
    }
}

impl Logins {
    /// Give up an identity claimed for a command that then failed.
    async fn release_identity(&self, identity: &Identity, user: &UserId) {
        let released = sqlx::query(
            "DELETE FROM user_identities WHERE provider = $1 AND subject = $2 AND user_id = $3",
        )
        .bind(&identity.provider)
        .bind(&identity.subject)
        .bind(user.as_str())
        .execute(&self.pool)
        .await;
        if let Err(e) = released {
            tracing::error!(error = %e, identity = %identity, "cannot release a claimed identity");
        }
    }

    /// The user an identity belongs to: `candidate` if nobody had it yet.
    async fn claim_identity(
        &self,
        identity: &Identity,
        candidate: &UserId,
    ) -> Result<String, LoginError> {
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO user_identities (provider, subject, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING RETURNING user_id",
        )
        .bind(&identity.provider)
        .bind(&identity.subject)
        .bind(candidate.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(owner) = claimed {
            return Ok(owner);
        }
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2",
        )
        .bind(&identity.provider)
        .bind(&identity.subject)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The user an identity belongs to, registering them on their first login.
    async fn sign_in(
        &self,
        profile: ExternalProfile,
        request_id: &str,
    ) -> Result<(UserId, Option<i64>), LoginError> {
        let identity = &profile.identity;
        let candidate = UserId::generate();
        // Reserve the identity for a new user; if it is taken, it belongs to whoever took it.
        let owner = self.claim_identity(identity, &candidate).await?;
        let user = UserId::parse(&owner)
            .map_err(|e| LoginError::Command(format!("identity index holds {e}")))?;
        // Two attempts: a simultaneous first login of the same identity may register in between.
        for _ in 0..2 {
            let current: User = load_state(&self.pool, user.as_str()).await?;
            let command = if current.is_registered() {
                UserCommand::RecordLogin {
                    profile: profile.clone(),
                }
            } else {
                UserCommand::Register {
                    id: user.clone(),
                    profile: profile.clone(),
                }
            };
            match self.execute(&user, command, request_id).await {
                Ok(position) => return Ok((user, position)),
                Err(AggregateError::AggregateConflict)
                | Err(AggregateError::UserError(UserError::AlreadyRegistered)) => continue,
                Err(e) => {
                    if user == candidate {
                        self.release_identity(identity, &user).await;
                    }
                    return Err(command_error(e));
                }
            }
        }
        Err(LoginError::Command(
            "the user changed concurrently; sign in again".into(),
        ))
    }

    /// Add an identity to the signed-in user's account.
    async fn link(
        &self,
        user: &UserId,
        profile: ExternalProfile,
        request_id: &str,
    ) -> Result<Option<i64>, LoginError> {
        let identity = profile.identity.clone();
        let owner = self.claim_identity(&identity, user).await?;
        if owner != user.as_str() {
            return Err(LoginError::IdentityTaken);
        }
        let command = UserCommand::LinkIdentity { profile };
        match self.execute(user, command, request_id).await {
            Ok(position) => Ok(position),
            // Linking the same identity twice changes nothing.
            Err(AggregateError::UserError(UserError::AlreadyLinked(_))) => Ok(None),
            Err(e) => {
                self.release_identity(&identity, user).await;
                Err(command_error(e))
            }
        }
    }
}

/// Seconds until `at` (for `expires_in`).
pub fn seconds_until(at: u64) -> u64 {
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    at.saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::valid_return_to;

    #[test]
    fn return_to_stays_on_this_site() {
        assert!(valid_return_to("/"));
        assert!(valid_return_to("/workspaces?tab=1"));
        for bad in [
            "https://evil.test/",
            "//evil.test",
            "/\\evil.test",
            "evil",
            "/a\nb",
        ] {
            assert!(!valid_return_to(bad), "{bad}");
        }
    }
}
