//! Forged ID tokens, each refused at the callback with 401 (403 for an unverified email) and
//! without creating anybody; the honest token from the same provider signs in.

use hexabase_it::browser::{follow_to_callback, start_login, visit};
use hexabase_it::hostile_idp::Forgery;
use reqwest::StatusCode;

use crate::{world, World};

async fn login(w: &World, forgery: Forgery) -> hexabase_it::spine::Reply {
    w.hostile.forge(forgery);
    let started = start_login(&w.app, "mallory").await;
    let callback = follow_to_callback(&w.app, &started.url).await;
    visit(&w.app, &callback, Some(&started.binder)).await
}

async fn users(w: &World) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'User'")
        .fetch_one(&w.app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn forged_id_tokens_are_refused_and_the_honest_one_is_accepted() {
    let w = world().await;
    for (forgery, status) in [
        (Forgery::OtherIssuer, StatusCode::UNAUTHORIZED),
        (Forgery::OtherAudience, StatusCode::UNAUTHORIZED),
        (Forgery::AlgNone, StatusCode::UNAUTHORIZED),
        (Forgery::Hs256WithPublicKey, StatusCode::UNAUTHORIZED),
        (Forgery::Expired, StatusCode::UNAUTHORIZED),
        (Forgery::UnknownKid, StatusCode::UNAUTHORIZED),
        (Forgery::WrongKeySameKid, StatusCode::UNAUTHORIZED),
        (Forgery::WrongNonce, StatusCode::UNAUTHORIZED),
        (Forgery::UnverifiedEmail, StatusCode::FORBIDDEN),
    ] {
        let reply = login(&w, forgery.clone()).await;
        assert_eq!(reply.status, status, "{forgery:?}: {}", reply.text);
        assert!(
            reply.body["code"].is_string(),
            "{forgery:?}: {}",
            reply.text
        );
        assert!(
            reply.body["access_token"].is_null(),
            "{forgery:?} got a session"
        );
    }
    assert_eq!(users(&w).await, 0, "nobody was created by a forged token");
    let honest = login(&w, Forgery::Honest).await;
    assert_eq!(honest.status, StatusCode::OK, "{}", honest.text);
    assert_eq!(users(&w).await, 1);
}
