//! An OpenID Connect provider that can be made to lie: discovery, JWKS, authorize and token
//! endpoints that behave like a real issuer, except that the ID token it hands out can be
//! forged in each of the ways an attacker (or a compromised intermediary) would try. dex can
//! only issue honest tokens, so the relying party's refusals are proven against this one; the
//! honest mode shows the refusals are not just a broken flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{get, handler, post, EndpointExt, IntoResponse, Response, Route, Server};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// How the next ID token is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgery {
    Honest,
    /// `iss` names another issuer.
    OtherIssuer,
    /// `aud` names another client.
    OtherAudience,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 with the provider's public key (JWK JSON) as the HMAC secret.
    Hs256WithPublicKey,
    /// `exp` an hour ago.
    Expired,
    /// Signed by a key the JWKS does not publish, under a `kid` it does not know.
    UnknownKid,
    /// Signed by another key under the published `kid`.
    WrongKeySameKid,
    /// A nonce from another login.
    WrongNonce,
    /// `email_verified: false`.
    UnverifiedEmail,
}

struct SigningKey {
    kid: String,
    der: Vec<u8>,
    jwk: Value,
}

fn new_key(kid: &str) -> SigningKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key pair");
    let point = pair.public_key().as_ref();
    SigningKey {
        kid: kid.into(),
        der: pkcs8.as_ref().to_vec(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

struct World {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: SigningKey,
    stranger: SigningKey,
    forgery: Forgery,
    subject: String,
    email: String,
    /// code → (nonce, PKCE challenge)
    codes: HashMap<String, (String, String)>,
}

type Shared = Arc<Mutex<World>>;

pub struct HostileIdp {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    world: Shared,
    shutdown: CancellationToken,
}

#[handler]
fn discovery(world: Data<&Shared>) -> Json<Value> {
    let issuer = world.lock().expect("world").issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

#[handler]
fn jwks(world: Data<&Shared>) -> Json<Value> {
    Json(json!({ "keys": [world.lock().expect("world").key.jwk.clone()] }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
}

#[handler]
fn authorize(Query(q): Query<AuthorizeQuery>, world: Data<&Shared>) -> Response {
    let code = uuid::Uuid::new_v4().simple().to_string();
    world
        .lock()
        .expect("world")
        .codes
        .insert(code.clone(), (q.nonce, q.code_challenge));
    let state: String = url_encode(&q.state);
    Redirect::see_other(format!("{}?code={code}&state={state}", q.redirect_uri)).into_response()
}

fn url_encode(value: &str) -> String {
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
    code_verifier: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&key.der)).expect("sign")
}

#[handler]
fn token(Form(form): Form<TokenForm>, world: Data<&Shared>) -> Response {
    let mut w = world.lock().expect("world");
    let Some((nonce, challenge)) = w.codes.remove(&form.code) else {
        return (
            poem::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant" })),
        )
            .into_response();
    };
    let computed = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        form.code_verifier.as_bytes(),
    ));
    if computed != challenge {
        return (
            poem::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": "PKCE" })),
        )
            .into_response();
    }
    let mut claims = json!({
        "iss": w.issuer, "aud": w.client_id, "sub": w.subject, "nonce": nonce,
        "iat": now(), "exp": now() + 300, "email": w.email, "email_verified": true,
    });
    let kid = w.key.kid.clone();
    let id_token = match w.forgery {
        Forgery::Honest => sign(&w.key, &kid, &claims),
        Forgery::OtherIssuer => {
            claims["iss"] = json!("https://accounts.evil.example");
            sign(&w.key, &kid, &claims)
        }
        Forgery::OtherAudience => {
            claims["aud"] = json!("some-other-client");
            sign(&w.key, &kid, &claims)
        }
        Forgery::Expired => {
            claims["iat"] = json!(now() - 7200);
            claims["exp"] = json!(now() - 3600);
            sign(&w.key, &kid, &claims)
        }
        Forgery::WrongNonce => {
            claims["nonce"] = json!("a-nonce-from-another-login");
            sign(&w.key, &kid, &claims)
        }
        Forgery::UnverifiedEmail => {
            claims["email_verified"] = json!(false);
            sign(&w.key, &kid, &claims)
        }
        Forgery::UnknownKid => sign(&w.stranger, "not-published", &claims),
        Forgery::WrongKeySameKid => sign(&w.stranger, &kid, &claims),
        Forgery::AlgNone => {
            let header =
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
            format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
        }
        Forgery::Hs256WithPublicKey => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid);
            let secret = serde_json::to_vec(&w.key.jwk).expect("jwk");
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret))
                .expect("sign")
        }
    };
    Json(json!({
        "access_token": uuid::Uuid::new_v4().simple().to_string(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

impl HostileIdp {
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the hostile IdP");
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .expect("local address");
        let issuer = format!("http://{addr}");
        let world: Shared = Arc::new(Mutex::new(World {
            issuer: issuer.clone(),
            client_id: "hexabase".into(),
            client_secret: uuid::Uuid::new_v4().simple().to_string(),
            key: new_key("published-key"),
            stranger: new_key("stranger"),
            forgery: Forgery::Honest,
            subject: uuid::Uuid::new_v4().to_string(),
            email: "mallory-target@example.com".into(),
            codes: HashMap::new(),
        }));
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(jwks))
            .at("/authorize", get(authorize))
            .at("/token", post(token))
            .data(world.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, stop.cancelled_owned(), None)
                .await;
        });
        let (client_id, client_secret) = {
            let w = world.lock().expect("world");
            (w.client_id.clone(), w.client_secret.clone())
        };
        Self {
            issuer,
            client_id,
            client_secret,
            world,
            shutdown,
        }
    }

    pub fn forge(&self, forgery: Forgery) {
        self.world.lock().expect("world").forgery = forgery;
    }

    pub fn provider_settings(&self) -> hexabase::config::ProviderSettings {
        hexabase::config::ProviderSettings {
            kind: hexabase::config::ProviderKind::Oidc,
            client_id: self.client_id.clone(),
            client_secret: secrecy::SecretString::from(self.client_secret.clone()),
            issuer: Some(self.issuer.clone()),
            scopes: None,
            authorize_url: None,
            token_url: None,
            api_url: None,
            ca_file: None,
        }
    }
}

impl Drop for HostileIdp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
