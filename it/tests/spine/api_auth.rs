use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hexabase_command::UserId;
use hexabase_identity::keyring::KeyringService;
use hexabase_identity::token::{Claims, SigningKey, Tokens};
use hexabase_it::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(app: &TestApp, user: &UserId) -> Claims {
    app.tokens().claims_for(user, Duration::from_secs(300))
}

#[tokio::test]
async fn every_api_call_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    let user = UserId::generate();
    let other_key = Tokens::new(
        SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap(),
        &app.settings.auth,
    );
    let mut expired = claims(&app, &user);
    expired.exp = now() - 3600;
    expired.iat = now() - 7200;
    expired.nbf = now() - 7200;
    let mut wrong_audience = claims(&app, &user);
    wrong_audience.aud = "ws-0192f0c1a8b47c3e9d2a51b0c4e6f7a8".into();
    let mut wrong_issuer = claims(&app, &user);
    wrong_issuer.iss = "https://elsewhere.example".into();
    let mut not_yet = claims(&app, &user);
    not_yet.nbf = now() + 3600;
    let valid = app.tokens().issue(&user).unwrap();
    let payload = valid.split('.').nth(1).unwrap();
    let alg_none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );

    let bad_tokens = [
        ("garbage", "not.a.token".to_owned()),
        ("another key", other_key.issue(&user).unwrap()),
        ("expired", app.tokens().sign(&expired).unwrap()),
        (
            "wrong audience",
            app.tokens().sign(&wrong_audience).unwrap(),
        ),
        ("wrong issuer", app.tokens().sign(&wrong_issuer).unwrap()),
        ("not yet valid", app.tokens().sign(&not_yet).unwrap()),
        ("alg none", alg_none),
    ];
    let calls = [
        (
            Method::POST,
            "/api/v1/organizations",
            Some(json!({ "name": "X" })),
        ),
        (Method::GET, "/api/v1/organizations", None),
        (
            Method::GET,
            "/api/v1/organizations/org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8",
            None,
        ),
    ];
    for (method, path, body) in &calls {
        let anonymous = app.request(method.clone(), path, None, body.as_ref()).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} anonymous"
        );
        assert_eq!(anonymous.body["code"], "unauthorized", "{}", anonymous.text);
        for (why, token) in &bad_tokens {
            let reply = app
                .request(method.clone(), path, Some(token), body.as_ref())
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {why}: {}",
                reply.text
            );
            assert_eq!(reply.body["code"], "unauthorized");
        }
    }
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type <> 'Keyring'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 0);

    let ok = app
        .request(Method::GET, "/api/v1/organizations", Some(&valid), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_outlive_a_restart_because_the_keys_are_in_the_event_store() {
    let app = TestApp::spawn().await;
    let user = UserId::generate();
    let token = app
        .tokens()
        .issue_with_ttl(&user, Duration::from_secs(60))
        .unwrap();
    let keys = KeyringService::for_sessions(&app.pool, &app.settings.auth)
        .await
        .unwrap();
    let reloaded = Tokens::new(keys.key_set().await.unwrap(), &app.settings.auth);
    assert_eq!(reloaded.verify(&token).unwrap().user, user);
}
