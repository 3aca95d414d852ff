//! The browser side of a login: follow the control plane's authorization URL through the
//! identity provider (submitting dex's login form like a person would) until the provider
//! sends the browser back to the control plane's callback.

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};

use crate::peers::{IdentityProvider, IdpUser};
use crate::spine::{Reply, TestApp};

/// A browser that trusts the test IdP's CA and stops at the first redirect back to `app_base`.
pub fn browser(app_base: &str, idp_ca_pem: Option<&str>) -> reqwest::Client {
    let base = app_base.to_owned();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(Policy::custom(move |attempt| {
            if attempt.url().as_str().starts_with(&base) {
                attempt.stop()
            } else if attempt.previous().len() > 10 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        }));
    if let Some(ca) = idp_ca_pem {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA"));
    }
    builder.build().expect("browser")
}

/// A started login: where to send the browser, and the `hxb_login` cookie that ties the login
/// to this browser.
#[derive(Debug, Clone)]
pub struct Started {
    pub url: String,
    pub binder: String,
}

impl Started {
    /// The started login of a reply to `POST /auth/login|link/{provider}`.
    pub fn from_reply(reply: &Reply) -> Self {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        Self {
            url: reply.body["authorization_url"]
                .as_str()
                .expect("authorization_url")
                .to_owned(),
            binder: cookie_value(reply, "hxb_login").expect("hxb_login cookie"),
        }
    }

    /// A query parameter of the authorization URL.
    pub fn param(&self, name: &str) -> String {
        reqwest::Url::parse(&self.url)
            .expect("authorization URL")
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {}", self.url))
    }
}

/// `POST /auth/login/{provider}`.
pub async fn start_login(app: &TestApp, provider: &str) -> Started {
    let reply = app
        .request(Method::POST, &format!("/auth/login/{provider}"), None, None)
        .await;
    Started::from_reply(&reply)
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on {} {}", response.status(), response.url()))
        .to_owned()
}

/// Sign in at dex: open the authorization URL, submit the password form; returns the callback
/// URL dex sends the browser back to (not yet visited).
pub async fn dex_authorize(
    app: &TestApp,
    dex: &IdentityProvider,
    user: &IdpUser,
    authorization_url: &str,
) -> String {
    let browser = browser(&app.base, Some(&dex.ca_pem));
    let page = browser
        .get(authorization_url)
        .send()
        .await
        .expect("open the login page");
    let page_url = page.url().clone();
    let html = page.text().await.expect("login page");
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no login form at {page_url}: {html}"))
        .replace("&amp;", "&");
    let post_url = page_url.join(&action).expect("form action URL");
    let response = browser
        .post(post_url)
        .form(&[
            ("login", user.email.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .await
        .expect("submit the login form");
    assert!(
        response.status().is_redirection(),
        "dex did not accept the login ({})",
        response.status()
    );
    let callback = location(&response);
    assert!(
        callback.starts_with(&format!("{}/auth/callback/", app.base)),
        "{callback}"
    );
    callback
}

/// Follow an authorization URL through a provider that redirects straight back (the GitHub
/// stand-in signs in whoever it was told to); returns the callback URL.
pub async fn follow_to_callback(app: &TestApp, authorization_url: &str) -> String {
    let response = browser(&app.base, None)
        .get(authorization_url)
        .send()
        .await
        .expect("authorize");
    assert!(
        response.status().is_redirection(),
        "the provider did not send the browser back ({})",
        response.status()
    );
    location(&response)
}

/// Visit the callback URL as the browser holding `binder` (its `hxb_login` cookie) would.
pub async fn visit(app: &TestApp, callback_url: &str, binder: Option<&str>) -> Reply {
    let mut request = browser(&app.base, None).get(callback_url);
    if let Some(binder) = binder {
        request = request.header("cookie", format!("hxb_login={binder}"));
    }
    TestApp::read(request.send().await.expect("callback")).await
}

/// A whole dex login; returns the callback's reply (the session).
pub async fn dex_login(app: &TestApp, dex: &IdentityProvider, user: &IdpUser) -> Reply {
    let started = start_login(app, "dex").await;
    let callback = dex_authorize(app, dex, user, &started.url).await;
    visit(app, &callback, Some(&started.binder)).await
}

/// The `Set-Cookie` value of cookie `name` in a reply.
pub fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Just the value of cookie `name` from a reply's `Set-Cookie`.
pub fn cookie_value(reply: &Reply, name: &str) -> Option<String> {
    let header = set_cookie(reply, name)?;
    let pair = header.split(';').next()?;
    Some(pair.split_once('=')?.1.to_owned())
}

/// A browser signed in to the control plane as `session` (its `hxb_session` cookie): follows
/// redirects by hand so that the cookie only ever goes to the control plane, and allows on the
/// control plane's approval page.
pub struct SignedInBrowser {
    pub client: reqwest::Client,
    pub control_plane: String,
    pub session: String,
}

impl SignedInBrowser {
    pub fn new(app: &TestApp, session: &str) -> Self {
        Self {
            client: app.client.clone(),
            control_plane: app.base.clone(),
            session: session.to_owned(),
        }
    }

    /// Visit `url` and follow where it leads; the last answer's status and body.
    pub async fn visit(&self, url: &str) -> (StatusCode, String) {
        let mut url = url.to_owned();
        for _ in 0..8 {
            let mut request = self.client.get(&url);
            if url.starts_with(&self.control_plane) {
                request = request.header("Cookie", format!("hxb_session={}", self.session));
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = response.status();
            match response.headers().get("location") {
                Some(next) if status.is_redirection() => {
                    url = next.to_str().unwrap().to_owned();
                }
                _ => {
                    let body = response.text().await.unwrap_or_default();
                    match crate::spine::approval_link(&body, "allow") {
                        Some(link) => url = format!("{}{link}", self.control_plane),
                        None => return (status, body),
                    }
                }
            }
        }
        panic!("too many redirects, last {url}");
    }
}
