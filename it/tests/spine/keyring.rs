//! Session signing keys live in the event store, sealed with the key-encryption key: replicas
//! share them, restarts keep them, and rotation overlaps old and new keys.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hexabase::app::{self, App};
use hexabase_command::store::verify::verify;
use hexabase_command::UserId;
use hexabase_identity::keyring::{Kek, KeyChange, KeyringService, RotationPolicy};
use hexabase_identity::token::{SigningKey, TokenError};
use hexabase_it::services::TestDatabase;
use hexabase_it::TestApp;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

/// The `sessions` keyring's events: (event type, payload, actor).
async fn keyring_events(app: &TestApp) -> Vec<(String, Value, String)> {
    sqlx::query_as(
        "SELECT event_type, payload, metadata->>'actor' FROM events \
         WHERE aggregate_type = 'Keyring' AND aggregate_id = 'sessions' ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn start_error(settings: hexabase::config::Settings) -> String {
    match App::connect(settings).await {
        Ok(_) => panic!("the app started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn replicas_share_the_active_key_and_verify_each_others_tokens() {
    let app = TestApp::spawn().await;
    let replica = App::connect(app.settings.clone()).await.unwrap();
    assert_eq!(replica.tokens.signing_kid(), app.tokens().signing_kid());
    let events: Vec<String> = keyring_events(&app)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(events, ["SigningKeyGenerated", "SigningKeyActivated"]);

    let (user, token) = app.user();
    assert_eq!(replica.tokens.verify(&token).unwrap().user, user);
    let theirs = replica.tokens.issue(&user).unwrap();
    assert_eq!(kid_of(&theirs), app.tokens().signing_kid());
    let reply = app.get("/api/v1/organizations", &theirs).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn replicas_starting_together_on_an_empty_store_agree_on_one_key() {
    let app = TestApp::spawn().await;
    let db = TestDatabase::create().await;
    let pool = db.pool(8).await;
    app::migrate(&pool).await.unwrap();
    let starts = (0..4).map(|_| KeyringService::for_sessions(&pool, &app.settings.auth));
    let mut kids = Vec::new();
    for service in futures::future::join_all(starts).await {
        let keys = service.unwrap().key_set().await.unwrap();
        kids.push(keys.signing_kid().to_owned());
    }
    kids.dedup();
    assert_eq!(kids.len(), 1, "{kids:?}");
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Keyring' ORDER BY sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events, ["SigningKeyGenerated", "SigningKeyActivated"]);
}

#[tokio::test]
async fn tokens_issued_before_a_restart_verify_after_it() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user();
    let restarted = App::connect(app.settings.clone()).await.unwrap();
    assert_eq!(restarted.tokens.verify(&token).unwrap().user, user);
    assert_eq!(
        keyring_events(&app).await.len(),
        2,
        "the restart made no new key"
    );
}

#[tokio::test]
async fn the_event_store_holds_the_private_key_only_sealed() {
    let app = TestApp::spawn().await;
    let events = keyring_events(&app).await;
    let (event_type, payload, actor) = &events[0];
    assert_eq!(event_type, "SigningKeyGenerated");
    assert_eq!(actor, "system");
    let generated = &payload["SigningKeyGenerated"];
    let kid = generated["kid"].as_str().unwrap();
    assert_eq!(kid, app.tokens().signing_kid());
    assert_eq!(generated["algorithm"], "ES256");
    assert_eq!(generated["public_jwk"]["crv"], "P-256");

    let kek = Kek::from_settings(&app.settings.auth).unwrap();
    assert_eq!(generated["kek_id"], kek.id());
    let sealed = generated["sealed_private_key"].as_str().unwrap();
    let pkcs8 = kek.open(kid, sealed).unwrap();
    assert_eq!(SigningKey::from_pkcs8(&pkcs8).unwrap().kid(), kid);

    // Neither the PKCS#8 document nor the private scalar appears in any encoding.
    let text = payload.to_string();
    let scalar = &pkcs8[36..68];
    for secret in [&pkcs8[..], scalar] {
        for encoded in [
            STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            secret.iter().map(|b| format!("{b:02x}")).collect(),
        ] {
            assert!(!text.contains(&encoded[..40.min(encoded.len())]));
        }
    }
    assert!(!text.contains("PRIVATE KEY"));
    assert!(SigningKey::from_pkcs8(&STANDARD.decode(sealed).unwrap()).is_err());
}

#[tokio::test]
async fn rotation_overlaps_the_old_and_new_keys_then_retires_the_old_one() {
    let app = TestApp::spawn().await;
    let (keys, tokens) = (&app.state.session_keys, &app.state.tokens);
    let policy = RotationPolicy::for_sessions(&app.settings.auth);
    let user = UserId::generate();
    let old_kid = tokens.signing_kid();
    let old_token = tokens.issue(&user).unwrap();
    let activated_at = &keyring_events(&app).await[1].1["SigningKeyActivated"]["activated_at"];
    let activated_at: DateTime<Utc> = serde_json::from_value(activated_at.clone()).unwrap();
    let due = activated_at + policy.rotate_after;

    // Shortly before the active key is due, its successor is published but does not sign.
    assert_eq!(
        keys.sync(tokens, due - policy.publish_ahead - Duration::seconds(1))
            .await
            .unwrap(),
        []
    );
    let changes = keys.sync(tokens, due - policy.publish_ahead).await.unwrap();
    let [KeyChange::Generated(new_kid)] = &changes[..] else {
        panic!("{changes:?}");
    };
    assert_eq!(tokens.signing_kid(), old_kid);
    let published: Vec<String> = keys.jwks().await.keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(published, [old_kid.clone(), new_kid.to_string()]);
    let replica = App::connect(app.settings.clone()).await.unwrap();
    assert_eq!(
        replica.tokens.signing_kid(),
        old_kid,
        "no replica signs with it yet"
    );

    // When the old key is due, the new one signs; the old key's tokens keep verifying.
    let activated = due + Duration::seconds(1);
    assert_eq!(
        keys.sync(tokens, activated).await.unwrap(),
        [KeyChange::Activated(new_kid.clone())]
    );
    let new_token = tokens.issue(&user).unwrap();
    assert_eq!(kid_of(&new_token), new_kid.as_str());
    assert_eq!(tokens.verify(&old_token).unwrap().user, user);
    for token in [&old_token, &new_token] {
        let reply = app.get("/api/v1/organizations", token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    // The replica has not read the keyring since the new key was published, yet it already
    // trusts it; it signs with it once it reads the keyring again.
    assert_eq!(replica.tokens.verify(&new_token).unwrap().user, user);
    assert_eq!(replica.tokens.signing_kid(), old_kid);
    replica.session_keys.refresh(&replica.tokens).await.unwrap();
    assert_eq!(replica.tokens.signing_kid(), new_kid.as_str());

    // The old key stays until every token it signed has expired, then goes.
    let overlap_end = activated + policy.tokens_valid_for;
    assert_eq!(
        keys.sync(tokens, overlap_end - Duration::seconds(1))
            .await
            .unwrap(),
        []
    );
    assert_eq!(tokens.verify(&old_token).unwrap().user, user);
    let old = hexabase_command::keyring::KeyId::parse(&old_kid).unwrap();
    assert_eq!(
        keys.sync(tokens, overlap_end).await.unwrap(),
        [KeyChange::Retired(old)]
    );
    assert_eq!(tokens.verify(&old_token), Err(TokenError::UnknownKey));
    let reply = app.get("/api/v1/organizations", &old_token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(tokens.verify(&new_token).unwrap().user, user);
    let published: Vec<String> = keys.jwks().await.keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(published, [new_kid.to_string()]);

    let restarted = App::connect(app.settings.clone()).await.unwrap();
    assert_eq!(restarted.tokens.signing_kid(), new_kid.as_str());
    assert_eq!(
        restarted.tokens.verify(&old_token),
        Err(TokenError::UnknownKey)
    );
    let events: Vec<String> = keyring_events(&app)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        events,
        [
            "SigningKeyGenerated",
            "SigningKeyActivated",
            "SigningKeyGenerated",
            "SigningKeyActivated",
            "SigningKeyRetired"
        ]
    );
}

#[tokio::test]
async fn a_wrong_or_missing_key_encryption_key_fails_start_up_clearly() {
    let app = TestApp::spawn().await;
    let configured = Kek::from_settings(&app.settings.auth).unwrap();

    let mut wrong = app.settings.clone();
    let other = Kek::generate_base64().unwrap();
    wrong.auth.key_encryption_key = Some(SecretString::from(other.clone()));
    let message = start_error(wrong).await;
    let other_id = Kek::from_base64(&other, "test").unwrap().id().to_owned();
    assert!(
        message.contains("key-encryption key")
            && message.contains(configured.id())
            && message.contains(&other_id),
        "{message}"
    );

    let mut missing = app.settings.clone();
    missing.auth.key_encryption_key = None;
    missing.auth.key_encryption_key_file = std::env::temp_dir().join("hxb-no-such-kek");
    let message = start_error(missing).await;
    assert!(
        message.contains("no key-encryption key") && message.contains("hexabase keygen"),
        "{message}"
    );

    let mut short = app.settings.clone();
    short.auth.key_encryption_key = Some(SecretString::from(STANDARD.encode([1u8; 16])));
    let message = start_error(short).await;
    assert!(message.contains("32 bytes"), "{message}");

    assert_eq!(keyring_events(&app).await.len(), 2, "nothing was written");
}

#[tokio::test]
async fn projections_replay_and_verify_pass_over_keyring_events() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user();
    app.create_org(&token, "Acme").await;
    app.caught_up().await;
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_audit_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 1, "only the organization's event");
    for projection in hexabase_projector::all() {
        hexabase_projector::replay(&app.pool, projection.as_ref())
            .await
            .unwrap();
    }
    let report = verify(&app.pool).await.unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    // The organization's event, and the two keyrings' (sessions, OIDC) generated + activated.
    assert_eq!((report.events, report.aggregates), (5, 3));
}
