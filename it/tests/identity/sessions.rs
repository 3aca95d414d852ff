use hexabase_it::browser::{cookie_value, dex_login};
use reqwest::StatusCode;
use serde_json::json;

use crate::world;

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let w = world().await;
    let login = dex_login(&w.app, &w.dex, &w.ada).await;
    let first = login.body["refresh_token"].as_str().unwrap().to_owned();
    let access = login.body["access_token"].as_str().unwrap().to_owned();

    let refreshed = w
        .app
        .request(
            reqwest::Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({ "refresh_token": first })),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let second = refreshed.body["refresh_token"].as_str().unwrap().to_owned();
    let new_access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(refreshed.body["user_id"], login.body["user_id"]);
    assert_eq!(
        w.app.get("/auth/me", &new_access).await.status,
        StatusCode::OK
    );

    // The client goes on refreshing with the newest token.
    let third = refresh(&w, &second).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    let third_refresh = third.body["refresh_token"].as_str().unwrap().to_owned();
    let third_access = third.body["access_token"].as_str().unwrap().to_owned();

    // The first refresh token shows up again: someone copied it. The whole session ends.
    let reused = refresh(&w, &first).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{}", reused.text);
    let after = refresh(&w, &third_refresh).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
    for token in [&access, &new_access, &third_access] {
        let me = w.app.get("/auth/me", token).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    }
    let unknown = w
        .app
        .request(
            reqwest::Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({ "refresh_token": "made-up" })),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.text);
}

#[tokio::test]
async fn logout_stops_the_access_token_on_every_replica_at_once() {
    let w = world().await;
    let replica = w.app.replica().await;
    let login = dex_login(&w.app, &w.dex, &w.ada).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let me_on = |base: String| {
        let (client, access) = (client.clone(), access.clone());
        async move {
            client
                .get(format!("{base}/auth/me"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me_on(w.app.base.clone()).await, StatusCode::OK);
    assert_eq!(me_on(replica.clone()).await, StatusCode::OK);

    let out = w
        .app
        .request(reqwest::Method::POST, "/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    // Well before the token's expiry, neither replica accepts it any more.
    assert_eq!(me_on(w.app.base.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_on(replica.clone()).await, StatusCode::UNAUTHORIZED);
    let refreshed = w
        .app
        .request(
            reqwest::Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refreshed.text
    );
}

#[tokio::test]
async fn browsers_use_cookies_and_cookie_writes_need_the_csrf_header() {
    let w = world().await;
    let login = dex_login(&w.app, &w.dex, &w.ada).await;
    let session = cookie_value(&login, "hxb_session").unwrap();
    let refresh = cookie_value(&login, "hxb_refresh").unwrap();
    let csrf = cookie_value(&login, "hxb_csrf").unwrap();
    assert_eq!(session, login.body["access_token"].as_str().unwrap());
    let cookies = format!("hxb_session={session}; hxb_csrf={csrf}");
    let client = &w.app.client;

    let me = client
        .get(format!("{}/auth/me", w.app.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let url = format!("{}/api/v1/organizations", w.app.base);
    // A cross-site form post carries the cookie but cannot know the CSRF value.
    let forged = client
        .post(&url)
        .header("cookie", &cookies)
        .json(&json!({ "name": "Forged" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = client
        .post(&url)
        .header("cookie", &cookies)
        .header("x-csrf-token", "guess")
        .json(&json!({ "name": "Forged" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let orgs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Organization'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(orgs, 0, "refused writes record nothing");

    let created = client
        .post(&url)
        .header("cookie", &cookies)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // Refreshing by cookie also needs the CSRF header, and sets fresh cookies.
    let refresh_url = format!("{}/auth/refresh", w.app.base);
    let refresh_cookies = format!("hxb_refresh={refresh}; hxb_csrf={csrf}");
    let forged = client
        .post(&refresh_url)
        .header("cookie", &refresh_cookies)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let refreshed = hexabase_it::TestApp::read(
        client
            .post(&refresh_url)
            .header("cookie", &refresh_cookies)
            .header("x-csrf-token", &csrf)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert!(cookie_value(&refreshed, "hxb_refresh").is_some_and(|r| r != refresh));
    // The tokens stay in HttpOnly cookies: the body gives a page script nothing to steal.
    assert!(
        refreshed.body["access_token"].is_null(),
        "{}",
        refreshed.text
    );
    assert!(
        refreshed.body["refresh_token"].is_null(),
        "{}",
        refreshed.text
    );
    assert!(refreshed.body["csrf_token"].is_string());

    // Signing out by cookie clears the cookies.
    let out = hexabase_it::TestApp::read(
        client
            .post(format!("{}/auth/logout", w.app.base))
            .header("cookie", &cookies)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    assert_eq!(cookie_value(&out, "hxb_session").as_deref(), Some(""));
}

async fn refresh(w: &crate::World, token: &str) -> hexabase_it::spine::Reply {
    w.app
        .request(
            reqwest::Method::POST,
            "/auth/refresh",
            None,
            Some(&json!({ "refresh_token": token })),
        )
        .await
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_do_not_sign_the_user_out() {
    let w = world().await;
    let login = dex_login(&w.app, &w.dex, &w.ada).await;
    let first = login.body["refresh_token"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(refresh(&w, &first), refresh(&w, &first));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.text,
        b.text
    );
    let winner = if a.status == StatusCode::OK { &a } else { &b };
    // The session lives on: the winner's tokens work and rotate.
    let access = winner.body["access_token"].as_str().unwrap();
    assert_eq!(w.app.get("/auth/me", access).await.status, StatusCode::OK);
    let next = winner.body["refresh_token"].as_str().unwrap();
    let later = refresh(&w, next).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text);
    // Once the successor has been used, the first token showing up again is reuse.
    let reused = refresh(&w, &first).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{}", reused.text);
    let newest = later.body["access_token"].as_str().unwrap();
    assert_eq!(
        w.app.get("/auth/me", newest).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_browser_whose_access_token_expired_still_signs_out_with_its_refresh_cookie() {
    let w = world().await;
    let login = dex_login(&w.app, &w.dex, &w.ada).await;
    let refresh_cookie = cookie_value(&login, "hxb_refresh").unwrap();
    let csrf = cookie_value(&login, "hxb_csrf").unwrap();
    let access = login.body["access_token"].as_str().unwrap();
    let cookies = format!("hxb_refresh={refresh_cookie}; hxb_csrf={csrf}");
    let url = format!("{}/auth/logout", w.app.base);
    let forged = w
        .app
        .client
        .post(&url)
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no CSRF header");
    let out = hexabase_it::TestApp::read(
        w.app
            .client
            .post(&url)
            .header("cookie", &cookies)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    assert_eq!(cookie_value(&out, "hxb_refresh").as_deref(), Some(""));
    assert_eq!(
        w.app.get("/auth/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let anonymous = w
        .app
        .request(reqwest::Method::POST, "/auth/logout", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
