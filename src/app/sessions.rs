//! Signing in to the control plane: a login through an external provider starts a session
//! (a short-lived access token and a rotating refresh token); refresh, sign out, and who the
//! caller is.

use hexabase_command::UserId;
use hexabase_identity::external::login::{Completed, Started};
use hexabase_identity::session::Issued;
use hexabase_projector::user as user_projection;
use hexabase_query::organization::{self as org_query, OrganizationRow};
use hexabase_query::user::{self as user_query, IdentityRow, PendingInvitationRow, UserRow};

use super::{App, OpContext};
use crate::error::{Error, Result};

/// A login's answer: the session, and where the browser goes next.
pub struct SignedIn {
    pub session: Issued,
    pub position: Option<i64>,
    pub return_to: Option<String>,
}

/// The credentials a sign-out presents: an API client's bearer token, or a browser's cookies
/// (the refresh cookie alone will do, so an expired access token is no obstacle).
pub enum SignOut {
    Bearer(String),
    Cookies {
        access: Option<String>,
        refresh: Option<String>,
    },
}

/// The signed-in user, their organizations and the invitations waiting for their verified
/// email.
pub struct Me {
    pub user: UserRow,
    pub identities: Vec<IdentityRow>,
    pub organizations: Vec<OrganizationRow>,
    pub invitations: Vec<PendingInvitationRow>,
}

impl App {
    /// Start a login with `provider` (or, with `link_user`, the linking of another identity to
    /// that signed-in user). `binder` is the browser's login cookie, if it has one.
    pub async fn start_login(
        &self,
        provider: &str,
        link_user: Option<&UserId>,
        return_to: Option<String>,
        binder: Option<String>,
    ) -> Result<Started> {
        Ok(self
            .logins
            .start(provider, link_user, return_to, binder)
            .await?)
    }

    /// Complete a login at the provider's callback and open a session for whoever signed in.
    pub async fn complete_login(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        binder: Option<&str>,
        request_id: &str,
    ) -> Result<SignedIn> {
        let Completed {
            user,
            provider,
            position,
            return_to,
            ..
        } = self
            .logins
            .complete(provider, code, state, binder, request_id)
            .await?;
        let session = self.sessions.create(user, &provider).await?;
        if let Some(position) = position {
            // The UI asks `/auth/me` next; give the read model a moment to show the login.
            let _ = self.wait_for(user_projection::NAME, position).await;
        }
        Ok(SignedIn {
            session,
            position,
            return_to,
        })
    }

    /// A new access token and refresh token for a session's refresh token.
    pub async fn refresh_session(&self, refresh_token: &str) -> Result<Issued> {
        Ok(self.sessions.refresh(refresh_token).await?)
    }

    /// End the session the credentials belong to, on every replica.
    pub async fn sign_out(&self, presented: SignOut) -> Result<()> {
        let tokens = self.sessions.tokens();
        let session = match presented {
            SignOut::Bearer(token) => {
                tokens
                    .verify(&token)
                    .map_err(|e| Error::unauthorized(e.to_string()))?
                    .session
            }
            SignOut::Cookies { access, refresh } => {
                let from_access = access
                    .and_then(|token| tokens.verify(&token).ok())
                    .and_then(|principal| principal.session);
                match (from_access, refresh) {
                    (Some(session), _) => Some(session),
                    (None, Some(refresh)) => self.sessions.session_of(&refresh).await?,
                    (None, None) => None,
                }
            }
        };
        if let Some(session) = session {
            self.sessions.revoke(&session, "signed out").await?;
        }
        Ok(())
    }

    pub async fn me(&self, op: &OpContext, position: Option<i64>) -> Result<Me> {
        if let Some(position) = position {
            self.wait_for(user_projection::NAME, position).await?;
        }
        let pool = &self.pool;
        let user_id = op.user();
        let user = user_query::get(pool, user_id).await?.ok_or_else(|| {
            Error::not_found("no such user (tokens signed by an operator name no registered user)")
        })?;
        let identities = user_query::identities(pool, user_id).await?;
        let organizations = org_query::list_for_user(pool, user_id, None, 100).await?;
        let invitations = match user.email.as_deref().filter(|_| user.email_verified) {
            Some(email) => user_query::invitations_for(pool, email).await?,
            None => Vec::new(),
        };
        Ok(Me {
            user,
            identities,
            organizations: organizations.items,
            invitations,
        })
    }
}
