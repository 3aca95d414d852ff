//! The OpenID provider the vClusters trust: discovery, keys, workspace tokens for members, and
//! the authorization code flow (PKCE, refresh tokens) that `hexabase login` and
//! `kubectl oidc-login` use, with the workspace id as client id.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hexabase_command::credential::CredentialCommand;
use hexabase_command::organization::Organization;
use hexabase_command::policy::WorkspaceAction;
use hexabase_command::store;
use hexabase_command::workspace::Workspace;
use hexabase_command::{CommandMetadata, OrganizationId, UserId, WorkspaceId};
use hexabase_query::workspace::WorkspaceRow;
use poem::http::header;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Form, Html, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde::Deserialize;

use super::context::Ctx;
use super::error::{ApiError, ApiResult};
use super::security::SignedIn;
use super::workspace::scope;
use crate::device;
use crate::grant::{self, GrantError, Redirect};
use crate::oidc::WorkspaceClaims;
use crate::session::{self, SessionError};

#[derive(Tags)]
enum ApiTags {
    /// The OpenID provider behind `kubectl`'s access to the vClusters.
    Oidc,
}

#[derive(Debug, Object)]
pub struct WorkspaceToken {
    /// A JWT for the workspace's API server: `sub` = user id, `aud` = workspace id, `groups` =
    /// the caller's groups in it with their ancestors.
    pub token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    /// The groups in the token.
    pub groups: Vec<String>,
}

/// A token request (RFC 6749 §4.1.3, §6), form-encoded. Public clients only: the client id
/// comes in the form or as the user of HTTP Basic with an empty password.
#[derive(Debug, Object, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `urn:ietf:params:oauth:grant-type:device_code`.
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    /// The device flow's device code.
    pub device_code: Option<String>,
    /// The workspace id.
    pub client_id: Option<String>,
    pub scope: Option<String>,
}

/// The grant type of the device flow's token requests (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device authorization request (RFC 8628 §3.1).
#[derive(Debug, Object, Deserialize)]
pub struct DeviceRequest {
    /// The workspace id.
    pub client_id: Option<String>,
    /// Must include `openid`.
    pub scope: Option<String>,
}

/// A started device authorization (RFC 8628 §3.2).
#[derive(Debug, Object)]
pub struct DeviceAuthorization {
    /// The machine's secret, for polling `/oauth/token`.
    pub device_code: String,
    /// What the user enters at `verification_uri` (`XXXX-XXXX`).
    pub user_code: String,
    pub verification_uri: String,
    /// `verification_uri` with the code filled in.
    pub verification_uri_complete: String,
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

#[derive(ApiResponse)]
pub enum DeviceReply {
    #[oai(status = 200)]
    Started(
        Json<DeviceAuthorization>,
        #[oai(header = "Cache-Control")] String,
    ),
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
    #[oai(status = 401)]
    UnknownClient(Json<OAuthError>),
}

#[derive(ApiResponse)]
pub enum DevicePage {
    /// The form to enter a code, the approval page, or the answer, recorded.
    #[oai(status = 200)]
    Page(Html<String>),
    /// The signed-in user may not have tokens for that workspace.
    #[oai(status = 403)]
    Forbidden(Html<String>),
    /// No request waits under that code (mistyped, answered already or expired).
    #[oai(status = 404)]
    NotFound(Html<String>),
}

/// The form at `/oauth/device`, with a line above it (escaped HTML).
fn code_form(note: &str) -> String {
    grant::plain_page(
        "Connect a device",
        &format!(
            "{note}<form method=\"get\" action=\"/oauth/device\">\
             <label>Code shown by <code>hexabase login --device</code>: \
             <input name=\"user_code\" autocomplete=\"off\" autofocus></label> \
             <button type=\"submit\">Continue</button></form>"
        ),
    )
}

/// Tokens for a workspace's API server.
#[derive(Debug, Object)]
pub struct TokenSet {
    /// The workspace token (the same JWT as `id_token`).
    pub access_token: String,
    /// The workspace token, with the `nonce` of the authorization request.
    pub id_token: String,
    pub token_type: String,
    /// Seconds until the tokens expire.
    pub expires_in: u64,
    /// Exchange at this endpoint for new tokens; rotated on every use, and a reused one revokes
    /// the grant.
    pub refresh_token: String,
    pub scope: String,
}

/// An OAuth 2.0 error (RFC 6749 §5.2).
#[derive(Debug, Object)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

#[derive(ApiResponse)]
pub enum TokenReply {
    #[oai(status = 200)]
    Issued(
        Json<TokenSet>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
    /// The request or the grant is not acceptable.
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
    /// The client id is missing or not a workspace id.
    #[oai(status = 401)]
    UnknownClient(Json<OAuthError>),
}

/// An OAuth error answer (RFC 6749 §5.2).
fn oauth_error(error: &GrantError) -> Json<OAuthError> {
    Json(OAuthError {
        error: error.code().to_owned(),
        error_description: error.to_string(),
    })
}

impl DeviceReply {
    fn refused(error: GrantError) -> Self {
        let body = oauth_error(&error);
        match error {
            GrantError::InvalidClient(_) => Self::UnknownClient(body),
            _ => Self::Refused(body),
        }
    }
}

impl TokenReply {
    fn refused(error: GrantError) -> Self {
        let body = oauth_error(&error);
        match error {
            GrantError::InvalidClient(_) => Self::UnknownClient(body),
            _ => Self::Refused(body),
        }
    }
}

#[derive(ApiResponse)]
pub enum AuthorizeReply {
    /// The approval page: which workspace, which groups, which local address asks; Allow and
    /// Deny lead to `/oauth/approve`.
    #[oai(status = 200)]
    Approval(Html<String>),
    /// Back to the client's loopback redirect URI with `code` and `state`, or with `error`.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// What a workspace token says of its user — the organization and the user's groups — and the
/// workspace and organization aggregates as the decision read them.
struct Grant {
    org: OrganizationId,
    groups: Vec<String>,
    read: Vec<store::ReadAt>,
}

/// The workspace and what a token for it says of `user` — the organization and `user`'s groups
/// — if `user` may hold one: the policy lets them read the workspace, and the aggregates
/// themselves (not read models that may lag) have them in one of the workspace's groups and in
/// its organization.
async fn grant_for(
    ctx: &Ctx,
    user: &UserId,
    ws: &WorkspaceId,
) -> ApiResult<Option<(WorkspaceRow, Grant)>> {
    let row = match scope(ctx, ws.as_str(), user, WorkspaceAction::Read).await {
        Ok((_, row)) => row,
        Err(ApiError::NotFound(_) | ApiError::Forbidden(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(grant_in_state(ctx, user, ws)
        .await?
        .map(|grant| (row, grant)))
}

/// `grant_for` once the policy has let `user` read the workspace, decided from the workspace and
/// organization aggregates. A grant may come from their cached states, since the token's
/// issuance is appended only if neither has moved on since (`mint`); a refusal always comes
/// from their current states.
async fn grant_in_state(ctx: &Ctx, user: &UserId, ws: &WorkspaceId) -> ApiResult<Option<Grant>> {
    let states = &ctx.state;
    let cached = states
        .workspace_states
        .cached_at(ws.as_str())
        .and_then(|workspace| {
            let org = workspace.0.organization()?;
            let organization = states.organization_states.cached_at(org.as_str())?;
            Some((workspace, organization))
        });
    if let Some((workspace, organization)) = cached {
        if let Some(grant) = decide(ws, user, workspace, organization) {
            return Ok(Some(grant));
        }
    }
    current_grant(ctx, user, ws).await
}

/// The grant decided from the events recorded up to now.
async fn current_grant(ctx: &Ctx, user: &UserId, ws: &WorkspaceId) -> ApiResult<Option<Grant>> {
    let (pool, states) = (&ctx.state.pool, &ctx.state);
    let internal = |e: store::LoadError| ApiError::internal(&e);
    // A workspace's organization never changes: once it is known, both aggregates are caught
    // up by one query.
    let known = states
        .workspace_states
        .cached_at(ws.as_str())
        .and_then(|(w, _)| w.organization().cloned());
    let (workspace, organization) = match known {
        Some(org) => {
            let (workspace, organization) = states
                .workspace_states
                .load_with(pool, ws.as_str(), &states.organization_states, org.as_str())
                .await
                .map_err(internal)?;
            (workspace, Some((org, organization)))
        }
        None => (
            states
                .workspace_states
                .load(pool, ws.as_str())
                .await
                .map_err(internal)?,
            None,
        ),
    };
    let Some(org) = workspace.0.organization().cloned() else {
        return Ok(None);
    };
    let organization = match organization {
        Some((known, organization)) if known == org => organization,
        _ => states
            .organization_states
            .load(pool, org.as_str())
            .await
            .map_err(internal)?,
    };
    Ok(decide(ws, user, workspace, organization))
}

/// A grant when the workspace (at the sequence given) has `user` in one of its groups and its
/// organization (likewise) has them as a member.
fn decide(
    ws: &WorkspaceId,
    user: &UserId,
    (workspace, ws_sequence): (Arc<Workspace>, i64),
    (organization, org_sequence): (Arc<Organization>, i64),
) -> Option<Grant> {
    let (org, groups) = workspace.token_grant(user)?;
    organization.role_of(user)?;
    let read = vec![
        store::ReadAt {
            aggregate_type: Workspace::TYPE.to_owned(),
            aggregate_id: ws.to_string(),
            sequence: ws_sequence,
        },
        store::ReadAt {
            aggregate_type: Organization::TYPE.to_owned(),
            aggregate_id: org.to_string(),
            sequence: org_sequence,
        },
    ];
    Some(Grant { org, groups, read })
}

/// Times a grant is decided again because the workspace or organization changed while its
/// token was being issued.
const GRANT_ATTEMPTS: usize = 3;

/// Sign a workspace token for `user` and record it as issued (who, which workspace, jti,
/// expiry). The record is appended only if the workspace and organization are still as the
/// grant read them; otherwise the grant is decided again from their current states. `None`
/// when that decision refuses.
async fn mint(
    ctx: &Ctx,
    user: &UserId,
    ws: &WorkspaceId,
    mut grant: Grant,
    nonce: Option<String>,
) -> ApiResult<Option<(String, WorkspaceClaims)>> {
    for _ in 0..GRANT_ATTEMPTS {
        let mut claims = ctx.state.oidc.claims(user, ws, grant.groups.clone());
        claims.nonce = nonce.clone();
        let command = CredentialCommand::IssueWorkspaceToken {
            org_id: grant.org.clone(),
            workspace_id: ws.clone(),
            user: user.clone(),
            expires_at: claims.exp,
            groups: grant.groups.clone(),
        };
        let metadata = CommandMetadata::for_request(user.clone(), ctx.request_id.clone());
        // A new aggregate per token (its jti): nothing to read first.
        let issued = store::if_unchanged(
            std::mem::take(&mut grant.read),
            store::create(
                &ctx.state.credentials,
                &claims.jti,
                command,
                &(),
                metadata.into_map(),
            ),
        )
        .await;
        match issued {
            Ok(()) => {
                // An ES256 signature is about 0.4 ms of CPU: made on the blocking pool, so a
                // server on one thread (`runtime.threads = 1`) keeps answering meanwhile.
                let (state, unsigned) = (ctx.state.clone(), claims.clone());
                let token = tokio::task::spawn_blocking(move || state.oidc.sign(&unsigned))
                    .await
                    .map_err(|e| ApiError::internal(&e))?
                    .map_err(|e| ApiError::internal(&e))?;
                return Ok(Some((token, claims)));
            }
            Err(AggregateError::AggregateConflict) => match current_grant(ctx, user, ws).await? {
                Some(current) => grant = current,
                None => return Ok(None),
            },
            Err(e) => return Err(ApiError::command_failed(e)),
        }
    }
    Err(ApiError::conflict(
        "the workspace's groups kept changing while the token was issued; retry",
    ))
}

/// The client id of a token request: HTTP Basic (user = client id, empty password) or the form.
fn client_of(req: &poem::Request, form_client: Option<&str>) -> Result<WorkspaceId, GrantError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(grant::basic_client)
        .transpose()?
        .flatten();
    let client = basic
        .or_else(|| form_client.map(str::to_owned))
        .ok_or_else(|| {
            GrantError::InvalidClient("the client id (the workspace id) is required".into())
        })?;
    WorkspaceId::parse(&client)
        .map_err(|_| GrantError::InvalidClient("the client id must be a workspace id".into()))
}

/// An approval page's answer: `allow` or `deny`.
fn allowed(decision: &str) -> ApiResult<bool> {
    match decision {
        "allow" => Ok(true),
        "deny" => Ok(false),
        _ => Err(ApiError::bad_request(
            "decision must be allow or deny",
            Some("decision"),
        )),
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, GrantError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| GrantError::InvalidRequest(format!("`{name}` is required")))
}

fn session_refused(error: SessionError) -> Result<GrantError, ApiError> {
    match error {
        SessionError::UnknownRefreshToken
        | SessionError::Revoked
        | SessionError::Reused
        | SessionError::JustRotated => Ok(GrantError::InvalidGrant(error.to_string())),
        other => Err(ApiError::internal(&other)),
    }
}

pub struct OidcApi;

#[OpenApi(tag = "ApiTags::Oidc")]
impl OidcApi {
    /// OpenID Provider discovery document (issuer = this control plane's public URL).
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openidConfiguration"
    )]
    async fn discovery(&self, ctx: Ctx) -> Json<serde_json::Value> {
        Json(ctx.state.oidc.discovery())
    }

    /// The keys workspace tokens are signed with (retired keys stay until their tokens expire).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, ctx: Ctx) -> ApiResult<Json<serde_json::Value>> {
        let jwks = ctx.state.oidc.keys.jwks().await;
        serde_json::to_value(jwks)
            .map(Json)
            .map_err(|e| ApiError::internal(&e))
    }

    /// A fresh token for the workspace's API server, for members of the workspace (in at least
    /// one of its groups). Every token handed out is recorded (`WorkspaceTokenIssued`, one
    /// small aggregate per token: issuing never contends with the workspace's own changes).
    #[oai(
        path = "/api/v1/workspaces/:ws_id/token",
        method = "post",
        operation_id = "issueWorkspaceToken"
    )]
    async fn token(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "ws_id")] ws_id: Path<String>,
        /// Replays the first response for a repeated request with the same key.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<WorkspaceToken>> {
        let user = auth.principal().user.clone();
        let ws = WorkspaceId::parse(&ws_id)?;
        // Decided from the workspace and organization aggregates (current to the last event).
        // A refusal answers as the workspace's other routes do: 404 to whoever may not see it.
        let minted = match grant_in_state(&ctx, &user, &ws).await? {
            Some(grant) => mint(&ctx, &user, &ws, grant, None).await?,
            None => None,
        };
        let Some((token, claims)) = minted else {
            scope(&ctx, &ws_id, &user, WorkspaceAction::Read).await?;
            return Err(ApiError::forbidden(
                "workspace tokens go to members of the workspace's groups only",
            ));
        };
        let expires_at = DateTime::<Utc>::from_timestamp(i64::try_from(claims.exp).unwrap_or(0), 0)
            .unwrap_or_default();
        Ok(Json(WorkspaceToken {
            token,
            token_type: "Bearer".into(),
            expires_at,
            groups: claims.groups,
        }))
    }

    /// Authorization endpoint (code flow with PKCE S256) for kubectl clients of a workspace:
    /// `client_id` = the workspace id, `redirect_uri` = a loopback address of the client
    /// (`http://127.0.0.1:<port>/…`, `http://localhost:<port>/…`). The browser must be signed in
    /// to the control plane; members of the workspace's groups get an approval page, and a code
    /// once they allow it.
    #[oai(path = "/oauth/authorize", method = "get", operation_id = "authorize")]
    #[allow(clippy::too_many_arguments)]
    async fn authorize(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        /// `code`.
        response_type: Query<Option<String>>,
        /// The workspace id.
        client_id: Query<Option<String>>,
        #[oai(validator(max_length = 2048))] redirect_uri: Query<Option<String>>,
        /// Must include `openid`.
        #[oai(name = "scope")]
        requested_scope: Query<Option<String>>,
        #[oai(validator(max_length = 1024))] state: Query<Option<String>>,
        /// Copied into the ID token.
        #[oai(validator(max_length = 1024))]
        nonce: Query<Option<String>>,
        code_challenge: Query<Option<String>>,
        /// `S256`.
        code_challenge_method: Query<Option<String>>,
    ) -> ApiResult<AuthorizeReply> {
        // Until the client and its redirect URI are known good, errors go to the browser, never
        // to the redirect URI (RFC 6749 §4.1.2.1).
        let client = client_id
            .0
            .as_deref()
            .and_then(|c| WorkspaceId::parse(c).ok())
            .ok_or_else(|| {
                ApiError::bad_request("client_id must be a workspace id", Some("client_id"))
            })?;
        let redirect = Redirect::parse(redirect_uri.0.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("redirect_uri")))?;
        let state = state.0;
        let back = |error: GrantError| {
            Ok(AuthorizeReply::Found(
                redirect.with_error(&error, state.as_deref()),
            ))
        };
        let request = grant::AuthorizationRequest {
            response_type: response_type.0.as_deref(),
            scope: requested_scope.0.as_deref(),
            code_challenge: code_challenge.0.as_deref(),
            code_challenge_method: code_challenge_method.0.as_deref(),
        };
        let challenge = match request.challenge() {
            Ok(challenge) => challenge,
            Err(error) => return back(error),
        };
        let user = auth.principal().user.clone();
        let Some((row, Grant { groups, .. })) = grant_for(&ctx, &user, &client).await? else {
            return back(GrantError::AccessDenied(
                "only members of the workspace's groups may sign in to it".into(),
            ));
        };
        let approval = grant::request_approval(
            &ctx.state,
            &client,
            &user,
            &redirect,
            challenge,
            nonce.0.as_deref(),
            state.as_deref(),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
        Ok(AuthorizeReply::Approval(Html(grant::approval_page(
            &grant::ApprovalPage {
                workspace: &row.name,
                workspace_id: client.as_str(),
                user: user.as_str(),
                groups: &groups,
                asking: grant::Asking::Loopback(&redirect),
                approval: &approval,
            },
        ))))
    }

    /// The signed-in user's answer on the approval page: back to the client's redirect URI with
    /// a code (`decision=allow`) or with `access_denied`. The approval secret exists only on
    /// that page, which other sites cannot read, and belongs to this user; it is used once.
    #[oai(
        path = "/oauth/approve",
        method = "get",
        operation_id = "approveAuthorization"
    )]
    async fn approve(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(validator(max_length = 128))] approval: Query<String>,
        /// `allow` or `deny`.
        decision: Query<String>,
    ) -> ApiResult<AuthorizeReply> {
        let allow = allowed(&decision)?;
        grant::decide(&ctx.state, &approval, &auth.principal().user, allow)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map(AuthorizeReply::Found)
            .ok_or_else(|| {
                ApiError::not_found(
                    "no such request waiting for your approval (decided already or expired)",
                )
            })
    }

    /// Device authorization (RFC 8628) for machines without a browser: a device code to poll
    /// `/oauth/token` with, and a short user code its user enters at `verification_uri` in a
    /// browser signed in to the control plane.
    #[oai(
        path = "/oauth/device_authorization",
        method = "post",
        operation_id = "deviceAuthorization"
    )]
    async fn device_authorization(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        form: Form<DeviceRequest>,
    ) -> ApiResult<DeviceReply> {
        let client = match client_of(req, form.client_id.as_deref()) {
            Ok(client) => client,
            Err(error) => return Ok(DeviceReply::refused(error)),
        };
        let openid = form
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|scope| scope == "openid"));
        if !openid {
            return Ok(DeviceReply::refused(GrantError::InvalidScope));
        }
        let workspace = ctx
            .state
            .workspace_states
            .load(&ctx.state.pool, client.as_str())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if workspace.0.organization().is_none() {
            return Ok(DeviceReply::refused(GrantError::InvalidClient(
                "no such workspace".into(),
            )));
        }
        let started = device::start(&ctx.state, &client)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let verification_uri = format!("{}/oauth/device", ctx.state.oidc.issuer());
        let verification_uri_complete =
            format!("{verification_uri}?user_code={}", started.user_code);
        Ok(DeviceReply::Started(
            Json(DeviceAuthorization {
                device_code: started.device_code,
                user_code: started.user_code,
                verification_uri,
                verification_uri_complete,
                expires_in: started.expires_in,
                interval: started.interval,
            }),
            "no-store".into(),
        ))
    }

    /// Where the user enters a device's code (signed in; a browser without a session gets a
    /// sign-in page that comes back here). Without `user_code`: the form. With it: the approval
    /// page for the workspace asking, if the user is a member of its groups.
    #[oai(
        path = "/oauth/device",
        method = "get",
        operation_id = "deviceVerification"
    )]
    async fn device_verification(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(validator(max_length = 64))] user_code: Query<Option<String>>,
    ) -> ApiResult<DevicePage> {
        let Some(typed) = user_code.0.filter(|c| !c.trim().is_empty()) else {
            return Ok(DevicePage::Page(Html(code_form(""))));
        };
        let not_found = || {
            DevicePage::NotFound(Html(code_form(
                "<p>No device is waiting with that code: check it, or start again on the \
                 device (codes last 10 minutes and work once).</p>",
            )))
        };
        let Some(code) = device::normalize(&typed) else {
            return Ok(not_found());
        };
        let user = auth.principal().user.clone();
        let internal = |e: grant::StoreError| ApiError::internal(&e);
        let Some(client) = device::waiting_client(&ctx.state, &code)
            .await
            .map_err(internal)?
        else {
            return Ok(not_found());
        };
        // Only someone who may hold the tokens gets to answer (and so to replace an earlier
        // page's secret).
        let Some((row, Grant { groups, .. })) = grant_for(&ctx, &user, &client).await? else {
            return Ok(DevicePage::Forbidden(Html(grant::plain_page(
                "Not allowed",
                "<p>Only members of the workspace's groups may give a device access to it.</p>",
            ))));
        };
        let Some(approval) = device::open_approval(&ctx.state, &code, &user)
            .await
            .map_err(internal)?
        else {
            return Ok(not_found());
        };
        let shown = device::display(&code);
        Ok(DevicePage::Page(Html(grant::approval_page(
            &grant::ApprovalPage {
                workspace: &row.name,
                workspace_id: client.as_str(),
                user: user.as_str(),
                groups: &groups,
                asking: grant::Asking::Device(&shown),
                approval: &approval,
            },
        ))))
    }

    /// The signed-in user's answer on a device's approval page; the device's next poll of
    /// `/oauth/token` gets the tokens or `access_denied`. The approval secret is only on that
    /// page and belongs to this user; it is used once.
    #[oai(
        path = "/oauth/device/approve",
        method = "get",
        operation_id = "approveDevice"
    )]
    async fn approve_device(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        #[oai(validator(max_length = 128))] approval: Query<String>,
        /// `allow` or `deny`.
        decision: Query<String>,
    ) -> ApiResult<DevicePage> {
        let allow = allowed(&decision)?;
        if !device::decide(&ctx.state, &approval, &auth.principal().user, allow)
            .await
            .map_err(|e| ApiError::internal(&e))?
        {
            return Err(ApiError::not_found(
                "no such device waiting for your approval (decided already or expired)",
            ));
        }
        Ok(DevicePage::Page(Html(if allow {
            grant::plain_page(
                "Device allowed",
                "<p>The device gets its tokens now; you can close this page.</p>",
            )
        } else {
            grant::plain_page(
                "Device denied",
                "<p>The device gets no tokens; you can close this page.</p>",
            )
        })))
    }

    /// Token endpoint: `authorization_code` (with the PKCE verifier and the same redirect URI)
    /// or `refresh_token`. Answers a workspace token as `id_token` and `access_token`, and a new
    /// refresh token; membership is checked again on every refresh.
    #[oai(path = "/oauth/token", method = "post", operation_id = "oauthToken")]
    async fn oauth_token(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        form: Form<TokenRequest>,
    ) -> ApiResult<TokenReply> {
        match self.exchange(&ctx, req, &form).await? {
            Ok(set) => Ok(TokenReply::Issued(
                Json(set),
                "no-store".into(),
                "no-cache".into(),
            )),
            Err(error) => Ok(TokenReply::refused(error)),
        }
    }
}

impl OidcApi {
    async fn exchange(
        &self,
        ctx: &Ctx,
        req: &poem::Request,
        form: &TokenRequest,
    ) -> ApiResult<Result<TokenSet, GrantError>> {
        let client = match client_of(req, form.client_id.as_deref()) {
            Ok(client) => client,
            Err(error) => return Ok(Err(error)),
        };
        let (user, nonce, refresh) = match form.grant_type.as_str() {
            "authorization_code" => {
                let checked = (|| {
                    Ok::<_, GrantError>((
                        required(&form.code, "code")?,
                        required(&form.redirect_uri, "redirect_uri")?,
                        required(&form.code_verifier, "code_verifier")?,
                    ))
                })();
                let (code, redirect_uri, verifier) = match checked {
                    Ok(fields) => fields,
                    Err(error) => return Ok(Err(error)),
                };
                let redeemed =
                    grant::redeem_code(&ctx.state, &client, code, redirect_uri, verifier)
                        .await
                        .map_err(|e| ApiError::internal(&e))?;
                match redeemed {
                    Ok(redeemed) => (redeemed.user, redeemed.nonce, None),
                    Err(error) => return Ok(Err(error)),
                }
            }
            "refresh_token" => {
                let token = match required(&form.refresh_token, "refresh_token") {
                    Ok(token) => token,
                    Err(error) => return Ok(Err(error)),
                };
                match session::begin_rotation(&ctx.state, token, Some(client.as_str())).await {
                    Ok(rotation) => (rotation.1.user.clone(), None, Some(rotation)),
                    Err(error) => return Ok(Err(session_refused(error)?)),
                }
            }
            DEVICE_GRANT => {
                let code = match required(&form.device_code, "device_code") {
                    Ok(code) => code,
                    Err(error) => return Ok(Err(error)),
                };
                match device::poll(&ctx.state, &client, code)
                    .await
                    .map_err(|e| ApiError::internal(&e))?
                {
                    Ok(user) => (user, None, None),
                    Err(error) => return Ok(Err(error)),
                }
            }
            other => {
                return Ok(Err(GrantError::UnsupportedGrantType(
                    other.chars().take(64).collect(),
                )))
            }
        };
        let minted = match grant_for(ctx, &user, &client).await? {
            Some((_, grant)) => mint(ctx, &user, &client, grant, nonce).await?,
            None => None,
        };
        let Some((token, claims)) = minted else {
            if let Some((tx, rotated)) = refresh {
                drop(tx);
                session::revoke(&ctx.state, &rotated.session_id, "no longer a member")
                    .await
                    .map_err(|e| ApiError::internal(&e))?;
            }
            return Ok(Err(GrantError::InvalidGrant(
                "the user is no longer a member of the workspace's groups or organization".into(),
            )));
        };
        // The new refresh token counts only once the token it answers with is minted: a
        // failure above leaves the presented one valid for a retry.
        let refresh = match refresh {
            Some((tx, rotated)) => {
                tx.commit().await.map_err(|e| ApiError::internal(&e))?;
                rotated
            }
            None => session::open(&ctx.state, &user, "oidc", Some(client.as_str()))
                .await
                .map_err(|e| ApiError::internal(&e))?,
        };
        let expires_in = claims.exp.saturating_sub(claims.iat);
        Ok(Ok(TokenSet {
            access_token: token.clone(),
            id_token: token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token: refresh.refresh_token,
            scope: "openid".into(),
        }))
    }
}

/// The provider's browser pages (`GET /oauth/…`): never cached (the approval pages carry a
/// secret), never framed by another page. A browser that opens `/oauth/authorize` or
/// `/oauth/device` without a (valid) control-plane session gets, with the 401, a page to sign
/// in with each configured provider; signing in brings it back to the same request.
pub async fn oauth_pages<E: poem::Endpoint>(
    next: E,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    use poem::http::{header, HeaderValue, Method, StatusCode};
    use poem::IntoResponse;
    if req.method() != Method::GET || !req.uri().path().starts_with("/oauth/") {
        return next.call(req).await.map(IntoResponse::into_response);
    }
    let offers_sign_in = matches!(req.uri().path(), "/oauth/authorize" | "/oauth/device");
    let back = req.uri().path_and_query().map(|p| p.as_str().to_owned());
    let state = req.data::<std::sync::Arc<crate::app::AppState>>().cloned();
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(e) => e.into_response(),
    };
    let sign_in = offers_sign_in && response.status() == StatusCode::UNAUTHORIZED;
    if let (true, Some(state), Some(back)) = (sign_in, state, back) {
        let providers: Vec<&str> = state.providers.names().collect();
        if !providers.is_empty() {
            response = poem::Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .content_type("text/html; charset=utf-8")
                .body(grant::sign_in_page(&providers, &back));
        }
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    Ok(response)
}
