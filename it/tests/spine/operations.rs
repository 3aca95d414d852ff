use hexabase_it::TestApp;
use reqwest::StatusCode;

#[tokio::test]
async fn health_readiness_metrics_and_docs_are_served() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user();
    let (_, position) = app.create_org(&token, "Acme").await;
    app.get(
        &format!("/api/v1/organizations?position={position}"),
        &token,
    )
    .await;

    let get = |path: &'static str| {
        let url = format!("{}{path}", app.base);
        let client = app.client.clone();
        async move { TestApp::read(client.get(url).send().await.unwrap()).await }
    };
    let health = get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["postgres"], "ok");
    assert_eq!(ready.body["nats"], "ok");

    // The lag histogram is recorded by the worker just after its commit: allow it a moment.
    app.caught_up().await;
    let mut metrics = get("/metrics").await;
    for _ in 0..100 {
        if metrics.text.contains("hexabase_projection_lag_seconds") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        metrics = get("/metrics").await;
    }
    assert_eq!(metrics.status, StatusCode::OK);
    for name in [
        "hexabase_http_request_duration_seconds_bucket",
        "operation=\"createOrganization\"",
        "hexabase_outbox_backlog",
        "hexabase_projection_pending_events{projection=\"organizations\"}",
        "hexabase_projection_lag_seconds",
    ] {
        assert!(metrics.text.contains(name), "{name} missing from /metrics");
    }

    let spec = get("/openapi.json").await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["paths"]["/api/v1/organizations"].is_object());
    let docs = get("/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("swagger"), "docs page is the Swagger UI");

    let id = health
        .headers
        .get("x-request-id")
        .expect("every response carries a request id");
    assert!(!id.is_empty());
    let echoed = TestApp::read(
        app.client
            .get(format!("{}/healthz", app.base))
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
}

/// A GET of `path` on `app`, unauthenticated and without following redirects.
fn get_from(
    app: &TestApp,
    path: &str,
) -> impl std::future::Future<Output = hexabase_it::spine::Reply> {
    let url = format!("{}{path}", app.base);
    let client = app.client.clone();
    async move { TestApp::read(client.get(url).send().await.unwrap()).await }
}

#[tokio::test]
async fn the_console_is_served_from_its_directory_and_nothing_outside_it() {
    let dir = std::env::temp_dir().join(format!("hxb-console-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("org")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>start</h1>").unwrap();
    std::fs::write(dir.join("org/index.html"), "<h1>organization</h1>").unwrap();
    std::fs::write(dir.parent().unwrap().join("hxb-outside.txt"), "secret").unwrap();
    let console = dir.clone();
    let server = hexabase::server::HttpServer::bind("127.0.0.1:0")
        .await
        .unwrap();
    let app = TestApp::spawn_on(server, Default::default(), move |s| {
        s.http.console_dir = Some(console)
    })
    .await;
    let get = |path: &str| get_from(&app, path);
    let start = get("/console/").await;
    assert_eq!(start.status, StatusCode::OK);
    assert_eq!(start.text, "<h1>start</h1>");
    assert!(start.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        get("/console/org/?org=x").await.text,
        "<h1>organization</h1>"
    );
    let bare = get("/console/org").await;
    assert!(bare.status.is_redirection(), "{}", bare.status);
    for outside in [
        "/console/../hxb-outside.txt",
        "/console/%2e%2e/hxb-outside.txt",
    ] {
        let reply = get(outside).await;
        assert!(!reply.text.contains("secret"), "{outside} is served");
    }
    assert_eq!(
        get("/console/nothing-here/").await.status,
        StatusCode::NOT_FOUND
    );
    // A browser opening the server's root is sent to the console.
    let home = get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.headers["location"], "/console/");

    // Without `http.console_dir` there is no console.
    let plain = TestApp::spawn().await;
    let reply = get_from(&plain, "/console/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let home = get_from(&plain, "/").await;
    assert_eq!(home.status, StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(dir).unwrap();
}
