//! The OpenID provider's grants for the clients on users' machines — kubectl for a workspace
//! (the client id is the workspace id) and the `hexabase` CLI (`hexabase-cli`): the
//! authorization code flow with PKCE and the user's approval, the device flow, and the token
//! endpoint that redeems either — or a refresh token — for a workspace token, or for the CLI a
//! control-plane session. Refusals the client must hear in OAuth's own words are
//! `GrantError`s; the rest is the one `Error`.

use hexabase_command::{UserId, WorkspaceId};
use hexabase_identity::issuer::code::{self, AuthorizationRequest, GrantError, Redirect};
use hexabase_identity::issuer::device;
use hexabase_identity::issuer::Client;
use hexabase_identity::session::SessionError;

use super::App;
use super::OpContext;
use crate::error::{Error, Result};

/// The grant type of the device flow's token requests (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the tokens asked for are good for.
pub enum Asked {
    /// A workspace's API server, with the user's groups in it.
    Workspace {
        id: WorkspaceId,
        name: String,
        groups: Vec<String>,
    },
    /// The control plane, as the user.
    ControlPlane,
}

/// What the approval page shows, and the secret its Allow and Deny links carry.
pub struct Approval {
    pub asked: Asked,
    pub approval: String,
}

/// The answer to an authorization request.
pub enum Authorization {
    /// Ask the user (RFC 8252 §8.6: nothing goes to a local listener without them).
    Approve(Approval),
    /// Back to the client's redirect URI (with an error).
    Redirect(String),
}

/// A started device authorization (RFC 8628 §3.2).
pub struct DeviceStarted {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// What `/oauth/device` answers for a typed code.
pub enum DeviceCode {
    /// No request waits under that code (mistyped, answered already or expired).
    Unknown,
    /// The signed-in user may not have tokens for the workspace asking.
    NotAllowed,
    /// Ask the user; the code as the device shows it.
    Approve { approval: Approval, shown: String },
}

/// What a token request presents.
pub enum TokenGrant<'a> {
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        verifier: &'a str,
    },
    RefreshToken(&'a str),
    DeviceCode(&'a str),
}

/// Tokens for a workspace's API server.
pub struct IssuedTokens {
    pub token: String,
    pub expires_in: u64,
    /// Rotated on every use; a reused one ends the grant.
    pub refresh_token: String,
}

fn session_refused(error: SessionError) -> Result<GrantError> {
    match error {
        SessionError::UnknownRefreshToken
        | SessionError::Revoked
        | SessionError::Reused
        | SessionError::JustRotated => Ok(GrantError::InvalidGrant(error.to_string())),
        other => Err(Error::internal(&other)),
    }
}

fn internal(error: impl std::error::Error + 'static) -> Error {
    Error::internal(&error)
}

impl App {
    /// An authorization request of the signed-in caller for `client`, coming back to
    /// `redirect`: the approval page for members of the workspace's groups, otherwise back to
    /// the client with the reason.
    pub async fn authorize(
        &self,
        op: &OpContext,
        client: &Client,
        redirect: &Redirect,
        request: &AuthorizationRequest<'_>,
        nonce: Option<&str>,
        state: Option<&str>,
    ) -> Result<Authorization> {
        let back =
            |error: GrantError| Ok(Authorization::Redirect(redirect.with_error(&error, state)));
        let challenge = match request.challenge() {
            Ok(challenge) => challenge,
            Err(error) => return back(error),
        };
        let Some(asked) = self.asked(op.user(), client).await? else {
            return back(GrantError::AccessDenied(
                "only members of the workspace's groups may sign in to it".into(),
            ));
        };
        let approval = code::request_approval(
            &self.pool,
            client,
            op.user(),
            redirect,
            challenge,
            nonce,
            state,
        )
        .await
        .map_err(internal)?;
        Ok(Authorization::Approve(Approval { asked, approval }))
    }

    /// What `user` would be allowed for `client`: their groups in the workspace, if they may
    /// hold its tokens; the control plane for the CLI (it is their own session).
    async fn asked(&self, user: &UserId, client: &Client) -> Result<Option<Asked>> {
        match client {
            Client::Cli => Ok(Some(Asked::ControlPlane)),
            Client::Workspace(ws) => {
                Ok(self
                    .grant_for(user, ws)
                    .await?
                    .map(|(row, grant)| Asked::Workspace {
                        id: ws.clone(),
                        name: row.name,
                        groups: grant.groups,
                    }))
            }
        }
    }

    /// The caller's answer on an approval page: where the browser goes (back to the client
    /// with a code or with `access_denied`).
    pub async fn approve(&self, op: &OpContext, approval: &str, allow: bool) -> Result<String> {
        code::decide(&self.pool, approval, op.user(), allow)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                Error::not_found(
                    "no such request waiting for your approval (decided already or expired)",
                )
            })
    }

    /// Start a device authorization for `client`, whose scope must include `openid`.
    pub async fn start_device_authorization(
        &self,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<Result<DeviceStarted, GrantError>> {
        let openid = scope.is_some_and(|s| s.split(' ').any(|scope| scope == "openid"));
        if !openid {
            return Ok(Err(GrantError::InvalidScope));
        }
        if let Client::Workspace(ws) = client {
            let workspace = self.workspace_states.load(&self.pool, ws.as_str()).await?;
            if workspace.0.organization().is_none() {
                return Ok(Err(GrantError::InvalidClient("no such workspace".into())));
            }
        }
        let started = device::start(&self.pool, client).await.map_err(internal)?;
        let verification_uri = format!("{}/oauth/device", self.issuer.issuer());
        let verification_uri_complete =
            format!("{verification_uri}?user_code={}", started.user_code);
        Ok(Ok(DeviceStarted {
            device_code: started.device_code,
            user_code: started.user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: started.expires_in,
            interval: started.interval,
        }))
    }

    /// The signed-in caller typed a device's code: the approval page if a request waits under
    /// it and the caller may hold its tokens.
    pub async fn device_code(&self, op: &OpContext, typed: &str) -> Result<DeviceCode> {
        let Some(code) = device::normalize(typed) else {
            return Ok(DeviceCode::Unknown);
        };
        let Some(client) = device::waiting_client(&self.pool, &code)
            .await
            .map_err(internal)?
        else {
            return Ok(DeviceCode::Unknown);
        };
        // Only someone who may hold the tokens gets to answer (and so to replace an earlier
        // page's secret).
        let Some(asked) = self.asked(op.user(), &client).await? else {
            return Ok(DeviceCode::NotAllowed);
        };
        let Some(approval) = device::open_approval(&self.pool, &code, op.user())
            .await
            .map_err(internal)?
        else {
            return Ok(DeviceCode::Unknown);
        };
        Ok(DeviceCode::Approve {
            approval: Approval { asked, approval },
            shown: device::display(&code),
        })
    }

    /// The caller's answer on a device's approval page.
    pub async fn approve_device(&self, op: &OpContext, approval: &str, allow: bool) -> Result<()> {
        if device::decide(&self.pool, approval, op.user(), allow)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(Error::not_found(
                "no such device waiting for your approval (decided already or expired)",
            ))
        }
    }

    /// Redeem a code, a device code or a refresh token of `client`: for a workspace, a
    /// workspace token and a new refresh token, membership checked again every time (a
    /// presented refresh token is used up only once the tokens it answers with are minted); for
    /// the CLI, a control-plane session, refreshed as a browser's is.
    pub async fn exchange(
        &self,
        client: &Client,
        grant: TokenGrant<'_>,
        request_id: &str,
    ) -> Result<Result<IssuedTokens, GrantError>> {
        match client {
            Client::Workspace(ws) => self.exchange_for_workspace(ws, grant, request_id).await,
            Client::Cli => self.exchange_for_cli(grant).await,
        }
    }

    /// Who a code or a device code of `client` was approved for (and the request's nonce).
    async fn redeemed(
        &self,
        client: &Client,
        grant: &TokenGrant<'_>,
    ) -> Result<Result<(UserId, Option<String>), GrantError>> {
        Ok(match grant {
            TokenGrant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => code::redeem_code(&self.pool, client, code, redirect_uri, verifier)
                .await?
                .map(|redeemed| (redeemed.user, redeemed.nonce)),
            TokenGrant::DeviceCode(code) => device::poll(&self.pool, client, code)
                .await?
                .map(|user| (user, None)),
            TokenGrant::RefreshToken(_) => Err(GrantError::InvalidGrant(
                "a refresh token is not a code".into(),
            )),
        })
    }

    async fn exchange_for_cli(
        &self,
        grant: TokenGrant<'_>,
    ) -> Result<Result<IssuedTokens, GrantError>> {
        let issued = match grant {
            TokenGrant::RefreshToken(token) => match self.sessions.refresh(token).await {
                Ok(issued) => issued,
                Err(error) => return Ok(Err(session_refused(error)?)),
            },
            grant => match self.redeemed(&Client::Cli, &grant).await? {
                Ok((user, _)) => self.sessions.create(user, "cli").await?,
                Err(error) => return Ok(Err(error)),
            },
        };
        Ok(Ok(IssuedTokens {
            expires_in: hexabase_identity::external::login::seconds_until(issued.access_expires_at),
            token: issued.access_token,
            refresh_token: issued.refresh_token,
        }))
    }

    async fn exchange_for_workspace(
        &self,
        client: &WorkspaceId,
        grant: TokenGrant<'_>,
        request_id: &str,
    ) -> Result<Result<IssuedTokens, GrantError>> {
        let (user, nonce, refresh): (UserId, _, _) = match grant {
            TokenGrant::RefreshToken(token) => {
                match self
                    .sessions
                    .begin_rotation(token, Some(client.as_str()))
                    .await
                {
                    Ok(rotation) => (rotation.1.user.clone(), None, Some(rotation)),
                    Err(error) => return Ok(Err(session_refused(error)?)),
                }
            }
            grant => {
                let workspace = Client::Workspace(client.clone());
                match self.redeemed(&workspace, &grant).await? {
                    Ok((user, nonce)) => (user, nonce, None),
                    Err(error) => return Ok(Err(error)),
                }
            }
        };
        let minted = match self.grant_for(&user, client).await? {
            Some((_, grant)) => self.mint(&user, client, grant, nonce, request_id).await?,
            None => None,
        };
        let Some(minted) = minted else {
            if let Some((tx, rotated)) = refresh {
                drop(tx);
                self.sessions
                    .revoke(&rotated.session_id, "no longer a member")
                    .await?;
            }
            return Ok(Err(GrantError::InvalidGrant(
                "the user is no longer a member of the workspace's groups or organization".into(),
            )));
        };
        // The new refresh token counts only once the token it answers with is minted: a
        // failure above leaves the presented one valid for a retry.
        let refresh = match refresh {
            Some((tx, rotated)) => {
                tx.commit().await?;
                rotated
            }
            None => {
                self.sessions
                    .open(&user, "oidc", Some(client.as_str()))
                    .await?
            }
        };
        let claims = &minted.claims;
        Ok(Ok(IssuedTokens {
            expires_in: claims.exp.saturating_sub(claims.iat),
            token: minted.token,
            refresh_token: refresh.refresh_token,
        }))
    }
}
