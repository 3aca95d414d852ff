//! Who is calling: an access token in `Authorization: Bearer …` (API clients) or in the
//! `hxb_session` cookie (the browser UI). Cookie-authenticated writes must also echo the
//! `hxb_csrf` cookie in `X-CSRF-Token` (double-submit), since browsers attach cookies to
//! cross-site requests. Tokens of a signed-out session are refused on every replica at once.

use std::sync::Arc;

use poem::http::{header, Method};
use poem::Request;
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::SecurityScheme;

use crate::app::App;
use crate::error::Error;
use hexabase_identity::secrets::constant_time_eq;
use hexabase_identity::token::Principal;

/// Cookie carrying the access token.
pub const SESSION_COOKIE: &str = "hxb_session";
/// Cookie carrying the refresh token (sent only to `/auth`).
pub const REFRESH_COOKIE: &str = "hxb_refresh";
/// Cookie binding a login in progress to the browser that started it.
pub const LOGIN_COOKIE: &str = "hxb_login";
/// Cookie the UI's script reads and echoes in `X-CSRF-Token`.
pub const CSRF_COOKIE: &str = "hxb_csrf";
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// `Authorization: Bearer <JWT>` signed by this control plane.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

/// The `hxb_session` cookie set at login; writes also need `X-CSRF-Token`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "hxb_session",
    key_in = "cookie",
    checker = "check_cookie"
)]
pub struct CookieAuth(pub Principal);

/// A signed-in caller, by bearer token or by session cookie.
#[derive(SecurityScheme)]
pub enum SignedIn {
    Bearer(BearerAuth),
    Cookie(CookieAuth),
}

impl SignedIn {
    pub fn principal(&self) -> &Principal {
        match self {
            SignedIn::Bearer(BearerAuth(p)) | SignedIn::Cookie(CookieAuth(p)) => p,
        }
    }
}

fn state_of(req: &Request) -> poem::Result<&Arc<App>> {
    req.data::<Arc<App>>()
        .ok_or_else(|| poem::Error::from(Error::unauthorized("authentication unavailable")))
}

async fn principal_for(state: &App, token: &str) -> poem::Result<Principal> {
    let principal = state
        .tokens
        .verify(token)
        .map_err(|e| Error::unauthorized(e.to_string()))?;
    if let Some(session) = &principal.session {
        if state.sessions.is_revoked(session).await {
            return Err(Error::unauthorized("the session has been signed out").into());
        }
    }
    Ok(principal)
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    principal_for(state_of(req)?, &bearer.token).await
}

async fn check_cookie(req: &Request, cookie: ApiKey) -> poem::Result<Principal> {
    let principal = principal_for(state_of(req)?, &cookie.key).await?;
    check_csrf(req)?;
    Ok(principal)
}

/// Unsafe methods authenticated by cookie must echo the CSRF cookie in `X-CSRF-Token`.
pub fn check_csrf(req: &Request) -> poem::Result<()> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let cookie = cookie_value(req, CSRF_COOKIE);
    let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match (cookie, header) {
        (Some(cookie), Some(header)) if !cookie.is_empty() && constant_time_eq(&cookie, header) => {
            Ok(())
        }
        _ => Err(Error::forbidden(
            "a cookie-authenticated write needs the X-CSRF-Token header matching the hxb_csrf cookie",
        )
        .into()),
    }
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie_value(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// The caller as the endpoints will see them: the bearer token if it verifies, else the session
/// cookie (the order `SignedIn` tries them). For middlewares that key on the caller.
pub fn presented_principal(state: &App, req: &Request) -> Option<Principal> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| state.tokens.verify(token.trim()).ok());
    bearer.or_else(|| {
        cookie_value(req, SESSION_COOKIE).and_then(|token| state.tokens.verify(&token).ok())
    })
}
