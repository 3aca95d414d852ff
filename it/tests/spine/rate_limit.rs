//! Rate limits hold across API replicas sharing Redis, are stricter on `/auth/…`, and keep
//! working (per process) while Redis is unreachable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase_it::spine::Reply;
use hexabase_it::{TestApp, TestAppOptions};
use reqwest::StatusCode;

/// Long windows, so a test practically never straddles two of them (see `fresh_window`).
const WINDOW_SECS: u64 = 3600;

/// An API server (no worker) with `configure` applied to its settings.
async fn spawn(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    TestApp::spawn_on(server, options, configure).await
}

/// Two API servers sharing one Redis key prefix, as two replicas of one deployment.
async fn replicas(configure: fn(&mut Settings)) -> (TestApp, TestApp) {
    fresh_window().await;
    let a = spawn(configure).await;
    let prefix = a.settings.redis.key_prefix.clone();
    let b = spawn(|settings| {
        configure(settings);
        settings.redis.key_prefix = prefix;
    })
    .await;
    (a, b)
}

/// Counters reset when a window ends: start with most of one ahead.
async fn fresh_window() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let left = WINDOW_SECS - now.as_secs() % WINDOW_SECS;
    if left < 30 {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

/// GET `path` with an optional bearer token and `X-Forwarded-For`.
async fn get(app: &TestApp, path: &str, token: Option<&str>, forwarded_for: Option<&str>) -> Reply {
    let mut req = app.client.get(format!("{}{path}", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    TestApp::read(req.send().await.unwrap()).await
}

fn assert_limited(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert_eq!(reply.body["code"], "rate_limited", "{}", reply.text);
    assert!(reply.body["message"].is_string(), "{}", reply.text);
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=WINDOW_SECS).contains(&retry_after), "{retry_after}");
}

/// Whatever the endpoint answers (it may not exist), it is neither refused nor failed.
fn assert_not_limited(reply: &Reply) {
    assert_ne!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert!(!reply.status.is_server_error(), "{}", reply.text);
}

fn api_limit_5(settings: &mut Settings) {
    settings.rate_limit.window_secs = WINDOW_SECS;
    settings.rate_limit.api_per_window = 5;
}

#[tokio::test]
async fn the_request_past_the_limit_is_refused_whichever_replica_serves_it() {
    let (a, b) = replicas(api_limit_5).await;
    let (user, token_a) = a.user();
    // Each replica signs with its own test key; the limit follows the user, not the token.
    let token_b = b.tokens().issue(&user).unwrap();
    for i in 0..5 {
        let (app, token) = if i % 2 == 0 {
            (&a, &token_a)
        } else {
            (&b, &token_b)
        };
        let reply = get(app, "/api/v1/organizations", Some(token), None).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.text);
    }
    assert_limited(&get(&b, "/api/v1/organizations", Some(&token_b), None).await);
    assert_limited(&get(&a, "/api/v1/organizations", Some(&token_a), None).await);
    // Operations endpoints are never limited, and `/auth/…` counts separately.
    for app in [&a, &b] {
        assert_eq!(
            get(app, "/healthz", None, None).await.status,
            StatusCode::OK
        );
        assert_not_limited(&get(app, "/auth/nothing-here", None, None).await);
    }
}

fn api_limit_3_behind_proxy(settings: &mut Settings) {
    settings.rate_limit.window_secs = WINDOW_SECS;
    settings.rate_limit.api_per_window = 3;
    settings.rate_limit.trust_forwarded_for = true;
}

#[tokio::test]
async fn a_signed_in_user_is_limited_across_replicas_whatever_their_ip() {
    let (a, b) = replicas(api_limit_3_behind_proxy).await;
    let (user, token_a) = a.user();
    let token_b = b.tokens().issue(&user).unwrap();
    let path = "/api/v1/organizations";
    assert_eq!(
        get(&a, path, Some(&token_a), Some("203.0.113.1"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&b, path, Some(&token_b), Some("203.0.113.2"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&a, path, Some(&token_a), Some("203.0.113.3"))
            .await
            .status,
        StatusCode::OK
    );
    assert_limited(&get(&b, path, Some(&token_b), Some("203.0.113.4")).await);
    // Another user, from an address not seen yet, is not affected.
    let (_, other) = b.user();
    assert_eq!(
        get(&b, path, Some(&other), Some("203.0.113.5"))
            .await
            .status,
        StatusCode::OK
    );
    // The per-IP limit holds on its own: no token, one address.
    for _ in 0..3 {
        let reply = get(&a, path, None, Some("198.51.100.9")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    assert_limited(&get(&b, path, None, Some("198.51.100.9")).await);
}

fn auth_limit_2(settings: &mut Settings) {
    settings.rate_limit.window_secs = WINDOW_SECS;
    settings.rate_limit.auth_per_window = 2;
    settings.rate_limit.api_per_window = 100;
}

#[tokio::test]
async fn auth_endpoints_have_a_stricter_limit_per_ip() {
    let (a, b) = replicas(auth_limit_2).await;
    // Any path under /auth counts, even one that does not exist.
    assert_not_limited(&get(&a, "/auth/login/nowhere", None, None).await);
    assert_not_limited(&get(&b, "/auth/token", None, None).await);
    assert_limited(&get(&a, "/auth/anything", None, None).await);
    assert_limited(&get(&b, "/auth/login/nowhere", None, None).await);
    let (_, token) = a.user();
    let api = get(&a, "/api/v1/organizations", Some(&token), None).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.text);
    // The reads a page makes on every view count as API requests, not sign-ins.
    for path in ["/auth/providers", "/auth/me", "/auth/providers"] {
        assert_not_limited(&get(&b, path, Some(&token), None).await);
    }
}

fn redis_down_api_limit_3(settings: &mut Settings) {
    api_limit_5(settings);
    settings.rate_limit.api_per_window = 3;
    settings.redis.url = "redis://127.0.0.1:1".to_owned().into();
}

#[tokio::test]
async fn without_redis_each_process_limits_on_its_own_and_nothing_fails() {
    fresh_window().await;
    let app = spawn(redis_down_api_limit_3).await;
    let (_, token) = app.user();
    for i in 0..3 {
        let reply = get(&app, "/api/v1/organizations", Some(&token), None).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.text);
    }
    assert_limited(&get(&app, "/api/v1/organizations", Some(&token), None).await);
    assert_eq!(
        get(&app, "/healthz", None, None).await.status,
        StatusCode::OK
    );
}
