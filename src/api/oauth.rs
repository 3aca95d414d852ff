//! The OpenID provider the workspaces' API servers trust: discovery, keys, workspace tokens
//! for members, and the authorization code and device flows (PKCE, refresh tokens) that
//! `hexabase login` and `kubectl oidc-login` use, with the workspace id as client id.

use chrono::{DateTime, Utc};
use hexabase_command::WorkspaceId;
use hexabase_identity::issuer::code::{self as grant, GrantError, Redirect};
use hexabase_identity::issuer::{Client, CLI_CLIENT};
use poem::http::header;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Form, Html, Json};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use serde::Deserialize;

use super::context::Ctx;
use super::error::{ApiResult, ErrorBody};
use super::pages::{self, ApprovalPage, Asking, Target};
use super::security::SignedIn;
use crate::app::oauth::{Approval, Asked, Authorization, DeviceCode, TokenGrant, DEVICE_GRANT};
use crate::error::Error;

#[derive(Tags)]
enum ApiTags {
    /// The OpenID provider behind `kubectl`'s access to the vClusters.
    Oidc,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
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

/// A device authorization request (RFC 8628 §3.1).
#[derive(Debug, Object, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DeviceRequest {
    /// The workspace id.
    pub client_id: Option<String>,
    /// Must include `openid`.
    pub scope: Option<String>,
}

/// A started device authorization (RFC 8628 §3.2).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(bad_request_handler = "DeviceReply::malformed")]
pub enum DeviceReply {
    #[oai(status = 200)]
    Started(
        Json<DeviceAuthorization>,
        #[oai(header = "Cache-Control")] String,
    ),
    /// The request or the grant is not acceptable (RFC 6749 §5.2).
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
    /// The client id is missing or names no client (`invalid_client`).
    #[oai(status = 401)]
    UnknownClient(Json<OAuthError>),
    /// The request body is not a form.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests from this client in the current window.
    #[oai(status = 429)]
    #[allow(dead_code)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`server_error`).
    #[oai(status = 500)]
    Failed(Json<OAuthError>),
    /// Not now (`temporarily_unavailable`); retry after `Retry-After`.
    #[oai(status = 503)]
    Unavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u32),
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
    pages::plain_page(
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
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "TokenReply::malformed")]
pub enum TokenReply {
    #[oai(status = 200)]
    Issued(
        Json<TokenSet>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
    /// The request or the grant is not acceptable (RFC 6749 §5.2).
    #[oai(status = 400)]
    Refused(Json<OAuthError>),
    /// The client id is missing or names no client (`invalid_client`).
    #[oai(status = 401)]
    UnknownClient(Json<OAuthError>),
    /// The request body is not a form.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests from this client in the current window.
    #[oai(status = 429)]
    #[allow(dead_code)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`server_error`).
    #[oai(status = 500)]
    Failed(Json<OAuthError>),
    /// Not now (`temporarily_unavailable`); retry after `Retry-After`.
    #[oai(status = 503)]
    Unavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u32),
}

/// An OAuth error answer (RFC 6749 §5.2).
fn oauth_error(error: &GrantError) -> Json<OAuthError> {
    Json(OAuthError {
        error: error.code().to_owned(),
        error_description: error.to_string(),
    })
}

/// An OAuth answer for a failure on our side.
fn failure(error: &Error) -> (Json<OAuthError>, Option<u32>) {
    let (code, retry) = match error {
        Error::Unavailable { retry_after, .. } => ("temporarily_unavailable", Some(*retry_after)),
        _ => ("server_error", None),
    };
    let body = Json(OAuthError {
        error: code.to_owned(),
        error_description: error.to_string(),
    });
    (body, retry)
}

/// The answer to a body that is not a form (415, as every other operation answers it).
fn unsupported_media_type(error: &poem::Error) -> Option<Json<ErrorBody>> {
    (error.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE).then(|| {
        Json(ErrorBody {
            code: "unsupported_media_type".into(),
            message: error.to_string(),
            field: None,
        })
    })
}

/// A request the framework could not parse (a missing or malformed form field).
fn malformed_request(error: &poem::Error) -> Json<OAuthError> {
    oauth_error(&GrantError::InvalidRequest(error.to_string()))
}

impl DeviceReply {
    fn refused(error: GrantError) -> Self {
        let body = oauth_error(&error);
        match error {
            GrantError::InvalidClient(_) => Self::UnknownClient(body),
            _ => Self::Refused(body),
        }
    }

    fn failed(error: Error) -> Self {
        match failure(&error) {
            (body, Some(retry)) => Self::Unavailable(body, retry),
            (body, None) => Self::Failed(body),
        }
    }

    fn malformed(error: poem::Error) -> Self {
        match unsupported_media_type(&error) {
            Some(body) => Self::UnsupportedMediaType(body),
            None => Self::Refused(malformed_request(&error)),
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

    fn failed(error: Error) -> Self {
        match failure(&error) {
            (body, Some(retry)) => Self::Unavailable(body, retry),
            (body, None) => Self::Failed(body),
        }
    }

    fn malformed(error: poem::Error) -> Self {
        match unsupported_media_type(&error) {
            Some(body) => Self::UnsupportedMediaType(body),
            None => Self::Refused(malformed_request(&error)),
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

/// The client id of a token request: HTTP Basic (user = client id, empty password) or the form.
fn client_of(req: &poem::Request, form_client: Option<&str>) -> Result<Client, GrantError> {
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
    Client::parse(&client).ok_or_else(|| {
        GrantError::InvalidClient(format!(
            "the client id must be a workspace id or `{CLI_CLIENT}`"
        ))
    })
}

/// The approval page for `approval`, shown to `user`.
fn page(approval: &Approval, user: &str, asking: Asking<'_>) -> String {
    let target = match &approval.asked {
        Asked::Workspace { id, name, groups } => Target::Workspace {
            name,
            id: id.as_str(),
            groups,
        },
        Asked::ControlPlane => Target::ControlPlane,
    };
    pages::approval_page(&ApprovalPage {
        target,
        user,
        asking,
        approval: &approval.approval,
    })
}

/// An approval page's answer: `allow` or `deny`.
/// An approval page's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, GrantError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| GrantError::InvalidRequest(format!("`{name}` is required")))
}

/// What a token request presents, once its grant type and the fields it needs are there.
fn token_grant(form: &TokenRequest) -> Result<TokenGrant<'_>, GrantError> {
    match form.grant_type.as_str() {
        "authorization_code" => Ok(TokenGrant::AuthorizationCode {
            code: required(&form.code, "code")?,
            redirect_uri: required(&form.redirect_uri, "redirect_uri")?,
            verifier: required(&form.code_verifier, "code_verifier")?,
        }),
        "refresh_token" => Ok(TokenGrant::RefreshToken(required(
            &form.refresh_token,
            "refresh_token",
        )?)),
        DEVICE_GRANT => Ok(TokenGrant::DeviceCode(required(
            &form.device_code,
            "device_code",
        )?)),
        other => Err(GrantError::UnsupportedGrantType(
            other.chars().take(64).collect(),
        )),
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
        Json(ctx.app.issuer.discovery())
    }

    /// The keys workspace tokens are signed with (retired keys stay until their tokens expire).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, ctx: Ctx) -> ApiResult<Json<serde_json::Value>> {
        let jwks = ctx.app.issuer.keys.jwks().await;
        serde_json::to_value(jwks)
            .map(Json)
            .map_err(|e| Error::internal(&e))
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
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        _idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Json<WorkspaceToken>> {
        let ws = WorkspaceId::parse(&ws_id)?;
        let minted = ctx.app.workspace_token(&ctx.op(&auth), &ws).await?;
        let exp = i64::try_from(minted.claims.exp).unwrap_or(0);
        Ok(Json(WorkspaceToken {
            token: minted.token,
            token_type: "Bearer".into(),
            expires_at: DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_default(),
            groups: minted.claims.groups,
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
        /// The workspace id (or `hexabase-cli`).
        #[oai(validator(pattern = r"^(ws-[0-9a-f]{32}|hexabase-cli)$"))]
        client_id: Query<String>,
        /// A loopback address of the client: `http://127.0.0.1`, `http://localhost` or
        /// `http://[::1]`, with a port and a path.
        #[oai(validator(
            max_length = 2048,
            pattern = r"^http://(127\.0\.0\.1|localhost|\[::1\])(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
        ))]
        redirect_uri: Query<String>,
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
        let client = Client::parse(&client_id.0).ok_or_else(|| {
            Error::bad_request(
                format!("client_id must be a workspace id or `{CLI_CLIENT}`"),
                Some("client_id"),
            )
        })?;
        let redirect = Redirect::parse(&redirect_uri.0)
            .map_err(|e| Error::bad_request(e.to_string(), Some("redirect_uri")))?;
        let request = grant::AuthorizationRequest {
            response_type: response_type.0.as_deref(),
            scope: requested_scope.0.as_deref(),
            code_challenge: code_challenge.0.as_deref(),
            code_challenge_method: code_challenge_method.0.as_deref(),
        };
        let op = ctx.op(&auth);
        let (nonce, state) = (nonce.0.as_deref(), state.0.as_deref());
        Ok(
            match ctx
                .app
                .authorize(&op, &client, &redirect, &request, nonce, state)
                .await?
            {
                Authorization::Redirect(location) => AuthorizeReply::Found(location),
                Authorization::Approve(approval) => AuthorizeReply::Approval(Html(page(
                    &approval,
                    op.user().as_str(),
                    Asking::Loopback(&redirect),
                ))),
            },
        )
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
        decision: Query<Decision>,
    ) -> ApiResult<AuthorizeReply> {
        let allow = decision.0 == Decision::Allow;
        let location = ctx.app.approve(&ctx.op(&auth), &approval, allow).await?;
        Ok(AuthorizeReply::Found(location))
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
    ) -> DeviceReply {
        let client = match client_of(req, form.client_id.as_deref()) {
            Ok(client) => client,
            Err(error) => return DeviceReply::refused(error),
        };
        let started = match ctx
            .app
            .start_device_authorization(&client, form.scope.as_deref())
            .await
        {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => return DeviceReply::refused(error),
            Err(error) => return DeviceReply::failed(error),
        };
        DeviceReply::Started(
            Json(DeviceAuthorization {
                device_code: started.device_code,
                user_code: started.user_code,
                verification_uri: started.verification_uri,
                verification_uri_complete: started.verification_uri_complete,
                expires_in: started.expires_in,
                interval: started.interval,
            }),
            "no-store".into(),
        )
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
        let op = ctx.op(&auth);
        Ok(match ctx.app.device_code(&op, &typed).await? {
            DeviceCode::Unknown => DevicePage::NotFound(Html(code_form(
                "<p>No device is waiting with that code: check it, or start again on the \
                 device (codes last 10 minutes and work once).</p>",
            ))),
            DeviceCode::NotAllowed => DevicePage::Forbidden(Html(pages::plain_page(
                "Not allowed",
                "<p>Only members of the workspace's groups may give a device access to it.</p>",
            ))),
            DeviceCode::Approve { approval, shown } => DevicePage::Page(Html(page(
                &approval,
                op.user().as_str(),
                Asking::Device(&shown),
            ))),
        })
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
        decision: Query<Decision>,
    ) -> ApiResult<DevicePage> {
        let allow = decision.0 == Decision::Allow;
        ctx.app
            .approve_device(&ctx.op(&auth), &approval, allow)
            .await?;
        Ok(DevicePage::Page(Html(if allow {
            pages::plain_page(
                "Device allowed",
                "<p>The device gets its tokens now; you can close this page.</p>",
            )
        } else {
            pages::plain_page(
                "Device denied",
                "<p>The device gets no tokens; you can close this page.</p>",
            )
        })))
    }

    /// Token endpoint: `authorization_code` (with the PKCE verifier and the same redirect URI),
    /// `refresh_token`, or the device flow's device code. Answers a workspace token as
    /// `id_token` and `access_token`, and a new refresh token; membership is checked again on
    /// every refresh.
    #[oai(path = "/oauth/token", method = "post", operation_id = "oauthToken")]
    async fn oauth_token(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        form: Form<TokenRequest>,
    ) -> TokenReply {
        let presented = client_of(req, form.client_id.as_deref())
            .and_then(|client| Ok((client, token_grant(&form)?)));
        let (client, grant) = match presented {
            Ok(presented) => presented,
            Err(error) => return TokenReply::refused(error),
        };
        match ctx.app.exchange(&client, grant, &ctx.request_id).await {
            Ok(Ok(issued)) => TokenReply::Issued(
                Json(TokenSet {
                    access_token: issued.token.clone(),
                    id_token: issued.token,
                    token_type: "Bearer".into(),
                    expires_in: issued.expires_in,
                    refresh_token: issued.refresh_token,
                    scope: "openid".into(),
                }),
                "no-store".into(),
                "no-cache".into(),
            ),
            Ok(Err(error)) => TokenReply::refused(error),
            Err(error) => TokenReply::failed(error),
        }
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
    let app = req.data::<std::sync::Arc<crate::app::App>>().cloned();
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(e) => e.into_response(),
    };
    let sign_in = offers_sign_in && response.status() == StatusCode::UNAUTHORIZED;
    if let (true, Some(app), Some(back)) = (sign_in, app, back) {
        let providers: Vec<&str> = app.logins.provider_names().collect();
        if !providers.is_empty() {
            response = poem::Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .content_type("text/html; charset=utf-8")
                .body(pages::sign_in_page(&providers, &back));
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
