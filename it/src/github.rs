//! A stand-in for GitHub's OAuth app endpoints and the two REST calls a login needs
//! (`/user`, `/user/emails`): GitHub itself is not reachable from the test machines. It follows
//! GitHub's documented behaviour — errors from the token endpoint come back as 200 with an
//! `error` field, PKCE S256 is checked, codes are single use — and signs in whichever account
//! the test put in front of the browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{get, handler, post, EndpointExt, IntoResponse, Request, Response, Route, Server};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct GithubAccount {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
}

impl GithubAccount {
    pub fn new(login: &str, email: &str, email_verified: bool) -> Self {
        Self {
            id: u64::from(uuid::Uuid::new_v4().as_fields().0),
            login: login.into(),
            name: format!("{login} (GitHub)"),
            email: email.into(),
            email_verified,
        }
    }
}

struct Grant {
    account: GithubAccount,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct World {
    /// The account whoever opens the authorize page is signed in as.
    signed_in: Option<GithubAccount>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, GithubAccount>,
}

type Shared = Arc<Mutex<World>>;

pub struct GithubStandIn {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    world: Shared,
    shutdown: CancellationToken,
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
}

#[handler]
fn authorize(
    Query(q): Query<AuthorizeQuery>,
    world: Data<&Shared>,
    expected: Data<&Client>,
) -> Response {
    if q.client_id != expected.id || q.code_challenge_method != "S256" {
        return (StatusCode::BAD_REQUEST, "unknown client or no PKCE").into_response();
    }
    let mut world = world.lock().expect("world");
    let Some(account) = world.signed_in.clone() else {
        return (StatusCode::UNAUTHORIZED, "nobody is signed in to GitHub").into_response();
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    world.codes.insert(
        code.clone(),
        Grant {
            account,
            challenge: q.code_challenge,
            redirect_uri: q.redirect_uri.clone(),
        },
    );
    let separator = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let target = format!(
        "{}{separator}code={code}&state={}",
        q.redirect_uri,
        urlencode(&q.state)
    );
    Redirect::see_other(target).into_response()
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct TokenForm {
    code: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
}

#[derive(Clone)]
struct Client {
    id: String,
    secret: String,
}

fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[handler]
fn access_token(
    req: &Request,
    Form(form): Form<TokenForm>,
    world: Data<&Shared>,
    expected: Data<&Client>,
) -> Json<serde_json::Value> {
    let error = |code: &str| Json(json!({ "error": code, "error_description": code }));
    let (id, secret) = basic_credentials(req)
        .or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)))
        .unwrap_or_default();
    if id != expected.id || secret != expected.secret {
        return error("incorrect_client_credentials");
    }
    let mut world = world.lock().expect("world");
    let Some(grant) = world.codes.remove(&form.code) else {
        return error("bad_verification_code");
    };
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return error("redirect_uri_mismatch");
    }
    let verifier = form.code_verifier.unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(ring_sha256(verifier.as_bytes()));
    if challenge != grant.challenge {
        return error("bad_verification_code");
    }
    let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
    world.tokens.insert(token.clone(), grant.account);
    Json(json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,user:email" }))
}

fn ring_sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn account_for(req: &Request, world: &Shared) -> Option<GithubAccount> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))?;
    world.lock().ok()?.tokens.get(token).cloned()
}

#[handler]
fn user(req: &Request, world: Data<&Shared>) -> Response {
    match account_for(req, &world) {
        Some(a) => Json(json!({ "id": a.id, "login": a.login, "name": a.name })).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Bad credentials" })),
        )
            .into_response(),
    }
}

#[handler]
fn emails(req: &Request, world: Data<&Shared>) -> Response {
    match account_for(req, &world) {
        Some(a) => Json(json!([
            { "email": a.email, "primary": true, "verified": a.email_verified, "visibility": "private" },
            { "email": format!("{}@users.noreply.github.com", a.login), "primary": false, "verified": true, "visibility": null },
        ]))
        .into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(json!({ "message": "Bad credentials" })))
            .into_response(),
    }
}

impl GithubStandIn {
    pub async fn start() -> Self {
        let world: Shared = Arc::default();
        let client = Client {
            id: format!("Iv1.{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            secret: uuid::Uuid::new_v4().simple().to_string(),
        };
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the GitHub stand-in");
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .expect("local address");
        let app = Route::new()
            .at("/login/oauth/authorize", get(authorize))
            .at("/login/oauth/access_token", post(access_token))
            .at("/api/user", get(user))
            .at("/api/user/emails", get(emails))
            .data(world.clone())
            .data(client.clone());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, token.cancelled_owned(), None)
                .await;
        });
        Self {
            base: format!("http://{addr}"),
            client_id: client.id,
            client_secret: client.secret,
            world,
            shutdown,
        }
    }

    /// The account the next authorization is granted for.
    pub fn sign_in_as(&self, account: &GithubAccount) {
        self.world.lock().expect("world").signed_in = Some(account.clone());
    }

    /// Provider settings (`auth.providers.<name>`) pointing at this stand-in.
    pub fn provider_settings(&self) -> hexabase::config::ProviderSettings {
        hexabase::config::ProviderSettings {
            kind: hexabase::config::ProviderKind::Github,
            client_id: self.client_id.clone(),
            client_secret: secrecy::SecretString::from(self.client_secret.clone()),
            issuer: None,
            scopes: None,
            authorize_url: Some(format!("{}/login/oauth/authorize", self.base)),
            token_url: Some(format!("{}/login/oauth/access_token", self.base)),
            api_url: Some(format!("{}/api", self.base)),
            ca_file: None,
        }
    }
}

impl Drop for GithubStandIn {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
