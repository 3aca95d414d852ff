use hexabase_it::browser::{self, dex_authorize, dex_login, start_login, visit};
use reqwest::{Method, StatusCode};

use crate::world;

#[tokio::test]
async fn a_user_signs_in_through_dex_and_sees_themself() {
    let w = world().await;
    let reply = dex_login(&w.app, &w.dex, &w.ada).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let user_id = reply.body["user_id"].as_str().unwrap().to_owned();
    assert!(user_id.starts_with("hxb-usr-"), "{user_id}");
    let token = reply.body["access_token"].as_str().unwrap();
    assert_eq!(reply.body["token_type"], "Bearer");
    assert!(reply.body["expires_in"].as_u64().unwrap() <= 900);

    // The access token is a JWT with the user as `sub` and our key's `kid`.
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert!(header.kid.is_some());

    let me = w.app.get("/auth/me", token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], user_id.as_str());
    assert_eq!(me.body["email"], w.ada.email.as_str());
    assert_eq!(me.body["email_verified"], true);
    assert_eq!(me.body["identities"][0]["provider"], "dex");
    assert_eq!(me.body["organizations"], serde_json::json!([]));

    // The same person signing in again is the same user.
    let again = dex_login(&w.app, &w.dex, &w.ada).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["user_id"], user_id.as_str());
    // Someone else is someone else.
    let bob = dex_login(&w.app, &w.dex, &w.bob).await;
    assert_ne!(bob.body["user_id"], user_id.as_str());

    // Both logins are events in the store.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'User' AND aggregate_id = $1 \
         ORDER BY sequence",
    )
    .bind(&user_id)
    .fetch_all(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(events, ["UserRegistered", "UserLoggedIn"]);
}

#[tokio::test]
async fn the_authorization_url_carries_pkce_state_and_nonce() {
    let w = world().await;
    let started = start_login(&w.app, "dex").await;
    assert!(started.url.starts_with(&w.dex.issuer));
    assert_eq!(started.param("code_challenge_method"), "S256");
    assert_eq!(started.param("response_type"), "code");
    assert_eq!(started.param("client_id"), w.dex.client_id);
    assert_eq!(started.param("code_challenge").len(), 43);
    assert!(started.param("state").len() >= 43 && started.param("nonce").len() >= 43);
    assert!(started.param("scope").contains("openid"));
    // Nothing secret is stored in the clear: the state is kept as a hash.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM login_attempts WHERE state_hash = $1")
            .bind(started.param("state").as_bytes())
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn an_unknown_provider_is_404() {
    let w = world().await;
    // The sign-in page's list names the configured providers (this world's three), and only
    // them: `myspace` is not one.
    let listed = w
        .app
        .request(Method::GET, "/auth/providers", None, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(
        listed.body["items"],
        serde_json::json!([{ "name": "dex" }, { "name": "github" }, { "name": "mallory" }])
    );
    let reply = w
        .app
        .request(Method::POST, "/auth/login/myspace", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_eq!(reply.body["code"], "not_found");
    let reply = w
        .app
        .request(
            Method::GET,
            "/auth/callback/myspace?code=x&state=y",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
}

#[tokio::test]
async fn a_missing_mismatched_or_replayed_state_is_refused() {
    let w = world().await;
    let started = start_login(&w.app, "dex").await;
    let callback = dex_authorize(&w.app, &w.dex, &w.ada, &started.url).await;
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let binder = Some(started.binder.as_str());
    let base = &w.app.base;

    let missing = visit(
        &w.app,
        &format!("{base}/auth/callback/dex?code={code}"),
        binder,
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
    let forged = visit(
        &w.app,
        &format!("{base}/auth/callback/dex?code={code}&state=forged-state"),
        binder,
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.text);
    // A state started for GitHub is no good for dex.
    let github = start_login(&w.app, "github").await;
    let crossed = visit(
        &w.app,
        &format!(
            "{base}/auth/callback/dex?code={code}&state={}",
            github.param("state")
        ),
        Some(&github.binder),
    )
    .await;
    assert_eq!(crossed.status, StatusCode::BAD_REQUEST, "{}", crossed.text);
    // Login CSRF: the genuine callback opened in another browser (no or another login
    // cookie) signs nobody in there, and does not use the login up.
    let elsewhere = visit(&w.app, &callback, None).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::BAD_REQUEST,
        "{}",
        elsewhere.text
    );
    let other_browser = visit(&w.app, &callback, Some(&github.binder)).await;
    assert_eq!(
        other_browser.status,
        StatusCode::BAD_REQUEST,
        "{}",
        other_browser.text
    );

    // In the browser that started it, the callback works once; replaying it does not.
    let first = visit(&w.app, &callback, binder).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let replayed = visit(&w.app, &callback, binder).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.text
    );
    assert!(replayed.body["message"].as_str().unwrap().contains("state"));
}

#[tokio::test]
async fn a_provider_error_or_a_bad_code_signs_nobody_in() {
    let w = world().await;
    let started = start_login(&w.app, "dex").await;
    let state = started.param("state");
    let binder = Some(started.binder.as_str());
    let denied = visit(
        &w.app,
        &format!(
            "{}/auth/callback/dex?error=access_denied&state={state}",
            w.app.base
        ),
        binder,
    )
    .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{}", denied.text);
    let bad_code = visit(
        &w.app,
        &format!(
            "{}/auth/callback/dex?code=not-a-code&state={state}",
            w.app.base
        ),
        binder,
    )
    .await;
    assert_eq!(
        bad_code.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        bad_code.text
    );
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'User'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn return_to_redirects_the_browser_with_cookies_and_refuses_other_sites() {
    let w = world().await;
    let reply = w
        .app
        .request(
            Method::POST,
            "/auth/login/dex?return_to=%2F%2Fevil.example%2F",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);

    let reply = w
        .app
        .request(
            Method::POST,
            "/auth/login/dex?return_to=%2Fworkspaces",
            None,
            None,
        )
        .await;
    let login_cookie = browser::set_cookie(&reply, "hxb_login").expect("login cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/auth/callback"] {
        assert!(login_cookie.contains(attribute), "{login_cookie}");
    }
    let started = browser::Started::from_reply(&reply);
    let callback = dex_authorize(&w.app, &w.dex, &w.ada, &started.url).await;
    let landed = visit(&w.app, &callback, Some(&started.binder)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.text);
    assert_eq!(landed.headers["location"], "/workspaces");
    let session = browser::set_cookie(&landed, "hxb_session").expect("session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    let refresh = browser::set_cookie(&landed, "hxb_refresh").expect("refresh cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/auth"] {
        assert!(refresh.contains(attribute), "{refresh}");
    }
    let csrf = browser::set_cookie(&landed, "hxb_csrf").expect("csrf cookie");
    assert!(
        !csrf.contains("HttpOnly"),
        "the UI's script reads it: {csrf}"
    );
}

/// A browser without a control-plane session opening an authorization request (what
/// `hexabase login` or kubelogin prints) is offered to sign in, and comes back to the same
/// request — the approval page — once it has.
#[tokio::test]
async fn a_browser_without_a_session_signs_in_from_the_authorize_page_and_comes_back() {
    let w = world().await;
    // Ada, signed in elsewhere, has a workspace.
    let first = dex_login(&w.app, &w.dex, &w.ada).await;
    let token = first.body["access_token"].as_str().unwrap().to_owned();
    let (org, _) = w.app.create_org(&token, "Acme").await;
    let ws = w.app.create_workspace(&token, &org, "Dev").await;
    let challenge = hexabase_identity::secrets::pkce_challenge("a-verifier-of-the-kubectl-client");
    let mut request = reqwest::Url::parse(&format!("{}/oauth/authorize", w.app.base)).unwrap();
    request.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", ws.as_str()),
        ("redirect_uri", "http://127.0.0.1:18000/callback"),
        ("scope", "openid"),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let authorize = format!("{}?{}", request.path(), request.query().unwrap());

    // A browser with no session: still a 401, now with a page to sign in with each provider.
    let page = w.app.request(Method::GET, &authorize, None, None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("Sign in with github"), "{}", page.text);
    let link = page
        .text
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .find(|href| href.starts_with("/auth/login/dex/browser?"))
        .unwrap_or_else(|| panic!("no dex link: {}", page.text));
    let return_to: String = reqwest::Url::parse(&format!("{}{link}", w.app.base))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(return_to, authorize);

    // The link starts a login at dex for this browser; signing in there comes back to the
    // authorization request, which now shows the approval page.
    let started = w.app.request(Method::GET, &link, None, None).await;
    assert_eq!(started.status, StatusCode::FOUND, "{}", started.text);
    let binder = browser::cookie_value(&started, "hxb_login").expect("login cookie");
    let at_dex = started.headers["location"].to_str().unwrap().to_owned();
    let callback = dex_authorize(&w.app, &w.dex, &w.ada, &at_dex).await;
    let landed = visit(&w.app, &callback, Some(&binder)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.text);
    assert_eq!(landed.headers["location"], authorize.as_str());
    let session = browser::cookie_value(&landed, "hxb_session").expect("session cookie");
    let approval = w
        .app
        .client
        .get(format!("{}{authorize}", w.app.base))
        .header("cookie", format!("hxb_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(approval.status(), StatusCode::OK);
    assert!(approval
        .text()
        .await
        .unwrap()
        .contains("Allow kubectl access"));

    // A return path off this site is refused here as at `POST /auth/login`.
    let refused = w
        .app
        .request(
            Method::GET,
            "/auth/login/dex/browser?return_to=%2F%2Fevil.example%2F",
            None,
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
}
