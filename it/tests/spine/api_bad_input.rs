use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::json;

async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type <> 'Keyring'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user();
    let url = format!("{}/api/v1/organizations", app.base);
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (
            "malformed JSON",
            raw("{\"name\": ", "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "not an object",
            raw("[1,2]", "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "unknown field",
            raw(r#"{"name":"A","owner":"me"}"#, "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "missing field",
            raw("{}", "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "wrong type",
            raw(r#"{"name": ["A"]}"#, "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "wrong content type",
            raw(r#"{"name":"A"}"#, "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "empty name",
            raw(r#"{"name":"   "}"#, "application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "control characters",
            raw(r#"{"name":"a\u0007b"}"#, "application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
    ];
    for (what, request, status, field) in cases {
        let reply = TestApp::read(request.send().await.unwrap()).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert!(
            reply.body["code"].is_string() && reply.body["message"].is_string(),
            "{what}: not a JSON error body: {}",
            reply.text
        );
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field, "{what}");
        }
    }
    let long = app
        .post(
            "/api/v1/organizations",
            &token,
            &json!({ "name": "x".repeat(101) }),
        )
        .await;
    assert_eq!(
        long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        long.text
    );
    assert_eq!(long.body["field"], "name");
    let very_long = app
        .post(
            "/api/v1/organizations",
            &token,
            &json!({ "name": "x".repeat(5000) }),
        )
        .await;
    assert_eq!(
        very_long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        very_long.text
    );
    assert_eq!(very_long.body["field"], "name");
    assert_eq!(event_count(&app).await, 0, "no bad request wrote an event");

    let unknown_route = app.get("/api/v1/nothing-here", &token).await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_route.body["code"], "not_found");
    let unknown_position = app
        .get("/api/v1/organizations?position=999999", &token)
        .await;
    assert_eq!(unknown_position.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_position.body["code"], "not_found");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (_, bob) = app.user();
    let url = format!("{}/api/v1/organizations", app.base);
    let send = |token: &str, key: &str, name: &str| {
        app.client
            .post(&url)
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "name": name }))
            .send()
    };
    let first = TestApp::read(send(&alice, "key-1", "Acme").await.unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = TestApp::read(send(&alice, "key-1", "Acme").await.unwrap()).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        second.body, first.body,
        "the same organization, not a second one"
    );
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.headers["location"], first.headers["location"]);
    assert_eq!(event_count(&app).await, 1);

    let different = TestApp::read(send(&alice, "key-1", "Other").await.unwrap()).await;
    assert_eq!(
        different.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        different.text
    );
    assert_eq!(different.body["field"], "Idempotency-Key");
    assert_eq!(event_count(&app).await, 1);

    let bobs = TestApp::read(send(&bob, "key-1", "Acme").await.unwrap()).await;
    assert_eq!(bobs.status, StatusCode::CREATED, "keys are per user");
    assert_ne!(bobs.body["id"], first.body["id"]);

    let refused = TestApp::read(send(&alice, "key-2", "").await.unwrap()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused_again = TestApp::read(send(&alice, "key-2", "").await.unwrap()).await;
    assert_eq!(
        refused_again.body, refused.body,
        "final refusals replay too"
    );
    assert_eq!(event_count(&app).await, 2);

    let bad_key = TestApp::read(send(&alice, "", "Acme").await.unwrap()).await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);

    // The scheme is case-insensitive for the key as it is for authentication.
    let lower = |_: ()| {
        app.client
            .post(&url)
            .header("authorization", format!("bearer {alice}"))
            .header("Idempotency-Key", "key-3")
            .json(&json!({ "name": "Lower" }))
            .send()
    };
    let once = TestApp::read(lower(()).await.unwrap()).await;
    let twice = TestApp::read(lower(()).await.unwrap()).await;
    assert_eq!(once.status, StatusCode::CREATED, "{}", once.text);
    assert_eq!(twice.body, once.body);
    assert_eq!(event_count(&app).await, 3);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_organization() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let url = format!("{}/api/v1/organizations", app.base);
    let requests = (0..8).map(|_| {
        app.client
            .post(&url)
            .bearer_auth(&alice)
            .header("Idempotency-Key", "same")
            .json(&json!({ "name": "Acme" }))
            .send()
    });
    let replies = futures::future::join_all(requests).await;
    let mut created = 0;
    for reply in replies {
        let reply = TestApp::read(reply.unwrap()).await;
        match reply.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(created >= 1);
    assert_eq!(event_count(&app).await, 1, "one key, one organization");
}
