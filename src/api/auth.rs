//! `/auth`: sign in with an external identity provider, refresh, sign out, who am I.
//!
//! Browsers get the session in cookies (`hxb_session` for the access token, `hxb_refresh`
//! scoped to `/auth`, both HttpOnly, Secure, SameSite; plus the script-readable `hxb_csrf` to
//! echo in `X-CSRF-Token` on writes). API clients use the same tokens from the JSON bodies as
//! bearer tokens.

use super::text::Text;
use chrono::{DateTime, Utc};
use hexabase_identity::external::login::{self, seconds_until};
use hexabase_identity::session::Issued;
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::security::{self, SignedIn, CSRF_COOKIE, LOGIN_COOKIE, REFRESH_COOKIE, SESSION_COOKIE};
use crate::app::sessions::{self, SignOut};
use crate::error::Error;

#[derive(Tags)]
enum ApiTags {
    /// Signing in and out.
    Auth,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginStarted {
    /// Send the browser here.
    pub authorization_url: String,
    /// Seconds the login may take.
    pub expires_in: u64,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionTokens {
    pub user_id: String,
    /// Access token (JWT) for `Authorization: Bearer`. Absent when the session travels in
    /// cookies only (a cookie refresh), so page scripts never see it.
    pub access_token: Option<String>,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: `POST /auth/refresh` answers with a new one. Absent like `access_token`.
    pub refresh_token: Option<String>,
    pub refresh_expires_at: DateTime<Utc>,
    /// What a browser echoes in `X-CSRF-Token` on cookie-authenticated writes.
    pub csrf_token: String,
    /// Position of the login's event (read-your-writes).
    pub position: Option<i64>,
}

#[derive(Debug, Default, Object)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct RefreshRequest {
    /// The refresh token; browsers send `{}` with the `hxb_refresh` cookie instead.
    #[oai(validator(max_length = 200))]
    pub refresh_token: Option<Text>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub linked_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
    pub identities: Vec<Identity>,
    /// Organizations the user belongs to (first 100, oldest first).
    pub organizations: Vec<MyOrganization>,
    /// Invitations waiting for the user's verified email.
    pub invitations: Vec<PendingInvitation>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MyOrganization {
    pub id: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PendingInvitation {
    pub org_id: String,
    pub org_name: String,
    pub role: String,
    pub invited_by: String,
    pub invited_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum CallbackResponse {
    /// Signed in: the session (also set as cookies).
    #[oai(status = 200)]
    SignedIn(Json<SessionTokens>),
    /// Signed in; the browser goes on to the `return_to` path of the login.
    #[oai(status = 303)]
    Redirect(#[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum BrowserLogin {
    /// On to the identity provider's sign-in.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum LoggedOut {
    /// The session is revoked and the cookies are cleared.
    #[oai(status = 204)]
    Done,
}

fn cookie(name: &str, value: &str, path: &str, max_age: i64, http_only: bool) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_path(path);
    cookie.set_secure(true);
    cookie.set_http_only(http_only);
    cookie.set_same_site(Some(if name == SESSION_COOKIE || name == LOGIN_COOKIE {
        // Lax: sent on top-level navigations from elsewhere — following a link to the UI, and
        // the identity provider sending the browser back to the callback. Writes are covered by
        // the CSRF check.
        SameSite::Lax
    } else {
        SameSite::Strict
    }));
    cookie.set_max_age(std::time::Duration::from_secs(max_age.max(0) as u64));
    cookie
}

fn set_session_cookies(jar: &CookieJar, issued: &Issued) {
    let access = i64::try_from(seconds_until(issued.access_expires_at)).unwrap_or(0);
    let refresh = (issued.refresh_expires_at - Utc::now()).num_seconds();
    jar.add(cookie(
        SESSION_COOKIE,
        &issued.access_token,
        "/",
        access,
        true,
    ));
    jar.add(cookie(
        REFRESH_COOKIE,
        &issued.refresh_token,
        "/auth",
        refresh,
        true,
    ));
    jar.add(cookie(CSRF_COOKIE, &issued.csrf_token, "/", refresh, false));
}

fn clear_session_cookies(jar: &CookieJar) {
    jar.add(cookie(SESSION_COOKIE, "", "/", 0, true));
    jar.add(cookie(REFRESH_COOKIE, "", "/auth", 0, true));
    jar.add(cookie(CSRF_COOKIE, "", "/", 0, false));
}

/// Start a login (or a link, for `link_user`) in this browser: the login is bound to it by the
/// `hxb_login` cookie (reused if it has one).
async fn start_login(
    ctx: &Ctx,
    req: &poem::Request,
    jar: &CookieJar,
    provider: &str,
    link_user: Option<&hexabase_command::UserId>,
    return_to: Option<String>,
) -> ApiResult<login::Started> {
    let binder = security::cookie_value(req, LOGIN_COOKIE);
    let started = ctx
        .app
        .start_login(provider, link_user, return_to, binder)
        .await?;
    set_login_cookie(jar, &started.binder, started.expires_in);
    Ok(started)
}

fn set_login_cookie(jar: &CookieJar, binder: &str, ttl: u64) {
    let max_age = i64::try_from(ttl).unwrap_or(i64::MAX);
    jar.add(cookie(
        LOGIN_COOKIE,
        binder,
        "/auth/callback",
        max_age,
        true,
    ));
}

fn tokens_body(issued: Issued, position: Option<i64>, with_tokens: bool) -> SessionTokens {
    SessionTokens {
        user_id: issued.user.to_string(),
        expires_in: seconds_until(issued.access_expires_at),
        access_token: with_tokens.then_some(issued.access_token),
        token_type: "Bearer".into(),
        refresh_token: with_tokens.then_some(issued.refresh_token),
        refresh_expires_at: issued.refresh_expires_at,
        csrf_token: issued.csrf_token,
        position,
    }
}

/// An identity provider people can sign in with.
#[derive(Debug, Object)]
pub struct Provider {
    /// The name in `/auth/login/{provider}`.
    pub name: String,
}

#[derive(Debug, Object)]
pub struct ProviderList {
    pub items: Vec<Provider>,
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// The identity providers configured for signing in, by name.
    #[oai(path = "/providers", method = "get", operation_id = "listProviders")]
    async fn providers(&self, ctx: Ctx) -> Json<ProviderList> {
        let items = ctx
            .app
            .logins
            .provider_names()
            .map(|name| Provider {
                name: name.to_owned(),
            })
            .collect();
        Json(ProviderList { items })
    }

    /// Start signing in with a configured identity provider: answers the URL to send the
    /// browser to (authorization code flow with PKCE, `state` and `nonce`).
    #[oai(
        path = "/login/:provider",
        method = "post",
        operation_id = "startLogin"
    )]
    async fn login(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        jar: &CookieJar,
        provider: Path<String>,
        /// A path on this site to send the browser to once signed in (e.g. `/workspaces`);
        /// without it the callback answers with the session as JSON.
        #[oai(validator(max_length = 2048))]
        return_to: Query<Option<String>>,
    ) -> ApiResult<Json<LoginStarted>> {
        let started = start_login(&ctx, req, jar, &provider, None, return_to.0).await?;
        Ok(Json(LoginStarted {
            authorization_url: started.authorization_url,
            expires_in: started.expires_in,
        }))
    }

    /// Start signing in from a browser: like `POST /auth/login/{provider}`, but answers with the
    /// redirect to the identity provider itself (the sign-in page `/oauth/authorize` shows a
    /// browser without a session links here, with `return_to` = that authorization request).
    #[oai(
        path = "/login/:provider/browser",
        method = "get",
        operation_id = "startBrowserLogin"
    )]
    async fn browser_login(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        jar: &CookieJar,
        provider: Path<String>,
        /// A path on this site to send the browser to once signed in.
        #[oai(validator(max_length = 2048))]
        return_to: Query<Option<String>>,
    ) -> ApiResult<BrowserLogin> {
        let started = start_login(&ctx, req, jar, &provider, None, return_to.0).await?;
        Ok(BrowserLogin::Found(started.authorization_url))
    }

    /// Link another identity to the signed-in account: like login, but the callback adds the
    /// provider's identity to this user instead of signing in.
    #[oai(path = "/link/:provider", method = "post", operation_id = "startLink")]
    async fn link(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        req: &poem::Request,
        jar: &CookieJar,
        provider: Path<String>,
        /// A path on this site to send the browser to once signed in (e.g. `/workspaces`);
        /// without it the callback answers with the session as JSON.
        #[oai(validator(max_length = 2048))]
        return_to: Query<Option<String>>,
    ) -> ApiResult<Json<LoginStarted>> {
        let user = &auth.principal().user;
        let started = start_login(&ctx, req, jar, &provider, Some(user), return_to.0).await?;
        Ok(Json(LoginStarted {
            authorization_url: started.authorization_url,
            expires_in: started.expires_in,
        }))
    }

    /// Where the identity provider sends the browser back. Verifies `state`, exchanges the
    /// code, checks the ID token, and starts a session (cookies + JSON, or a redirect to the
    /// login's `return_to`).
    #[oai(
        path = "/callback/:provider",
        method = "get",
        operation_id = "loginCallback"
    )]
    // One parameter per query field is how poem-openapi documents them.
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        jar: &CookieJar,
        provider: Path<String>,
        #[oai(validator(min_length = 1, max_length = 2048))] code: Query<Option<String>>,
        /// The login's `state`, which the provider returns with a code and with an error alike
        /// (RFC 6749 §4.1.2): an answer without it is refused (400).
        #[oai(validator(min_length = 1, max_length = 256))]
        state: Query<String>,
        error: Query<Option<String>>,
        error_description: Query<Option<String>>,
    ) -> ApiResult<CallbackResponse> {
        if let Some(error) = error.0 {
            let detail = error_description.0.unwrap_or_default();
            let said: String = format!("{error} {detail}")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let message = format!("the identity provider refused the login: {}", said.trim());
            return Err(Error::unauthorized(message));
        }
        // An answer without `code` (and without `error`) cannot finish a login: it is refused as
        // a failed login, like the identity provider's own refusals.
        let login_state = state.0;
        let code = code
            .0
            .ok_or_else(|| Error::unauthorized("the identity provider's answer has no `code`"))?;
        let binder = security::cookie_value(req, LOGIN_COOKIE);
        let completed = ctx
            .app
            .complete_login(
                &provider,
                &code,
                &login_state,
                binder.as_deref(),
                &ctx.request_id,
            )
            .await?;
        set_session_cookies(jar, &completed.session);
        Ok(match completed.return_to {
            Some(path) => CallbackResponse::Redirect(path),
            None => CallbackResponse::SignedIn(Json(tokens_body(
                completed.session,
                completed.position,
                true,
            ))),
        })
    }

    /// Exchange a refresh token (body, or the `hxb_refresh` cookie with `X-CSRF-Token`) for a
    /// new access token and a new refresh token. A refresh token works once; presenting it again
    /// revokes the whole session.
    #[oai(path = "/refresh", method = "post", operation_id = "refreshSession")]
    async fn refresh(
        &self,
        ctx: Ctx,
        req: &poem::Request,
        jar: &CookieJar,
        body: Json<RefreshRequest>,
    ) -> ApiResult<Json<SessionTokens>> {
        let from_body = body.0.refresh_token.map(String::from);
        let (token, by_cookie) = match from_body {
            Some(token) => (token, false),
            None => {
                let token = security::cookie_value(req, REFRESH_COOKIE)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Error::unauthorized("no refresh token"))?;
                security::check_csrf(req).map_err(|_| {
                    Error::forbidden(
                        "a cookie refresh needs the X-CSRF-Token header matching the hxb_csrf cookie",
                    )
                })?;
                (token, true)
            }
        };
        let issued = ctx.app.refresh_session(&token).await?;
        if by_cookie {
            set_session_cookies(jar, &issued);
        }
        Ok(Json(tokens_body(issued, None, !by_cookie)))
    }

    /// Sign out: the session's refresh token stops working and its access tokens are refused by
    /// every replica from now on. API clients send their access token as a bearer token;
    /// browsers send their cookies (`X-CSRF-Token` required) — the refresh cookie is enough, so
    /// a browser whose access token expired can still sign out.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, ctx: Ctx, req: &poem::Request, jar: &CookieJar) -> ApiResult<LoggedOut> {
        let bearer = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        let presented = match bearer {
            Some(token) => SignOut::Bearer(token),
            None => {
                let access = security::cookie_value(req, SESSION_COOKIE).filter(|c| !c.is_empty());
                let refresh = security::cookie_value(req, REFRESH_COOKIE).filter(|c| !c.is_empty());
                if access.is_none() && refresh.is_none() {
                    return Err(Error::unauthorized("no session to sign out of"));
                }
                security::check_csrf(req).map_err(|_| {
                    Error::forbidden(
                        "a cookie sign-out needs the X-CSRF-Token header matching the hxb_csrf cookie",
                    )
                })?;
                SignOut::Cookies { access, refresh }
            }
        };
        ctx.app.sign_out(presented).await?;
        clear_session_cookies(jar);
        Ok(LoggedOut::Done)
    }

    /// The signed-in user, their organizations and the invitations waiting for their verified
    /// email.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(
        &self,
        auth: SignedIn,
        ctx: Ctx,
        /// Wait until the read model reflects this event position.
        #[oai(validator(minimum(value = "1")))]
        position: Query<Option<i64>>,
    ) -> ApiResult<Json<Me>> {
        let sessions::Me {
            user,
            identities,
            organizations,
            invitations,
        } = ctx.app.me(&ctx.op(&auth), position.0).await?;
        Ok(Json(Me {
            id: user.id,
            email: user.email,
            email_verified: user.email_verified,
            display_name: user.display_name,
            registered_at: user.registered_at,
            last_login_at: user.last_login_at,
            identities: identities
                .into_iter()
                .map(|i| Identity {
                    provider: i.provider,
                    subject: i.subject,
                    linked_at: i.linked_at,
                })
                .collect(),
            organizations: organizations
                .into_iter()
                .map(|o| MyOrganization {
                    id: o.id,
                    name: o.name,
                    role: o.role,
                })
                .collect(),
            invitations: invitations
                .into_iter()
                .map(|i| PendingInvitation {
                    org_id: i.org_id,
                    org_name: i.org_name,
                    role: i.role,
                    invited_by: i.invited_by,
                    invited_at: i.invited_at,
                })
                .collect(),
        }))
    }
}
