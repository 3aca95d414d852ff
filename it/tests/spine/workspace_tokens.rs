//! Workspace tokens (`POST /api/v1/workspaces/{wsId}/token`) are decided from the workspace and
//! organization aggregates, current to their last event whichever replica recorded it.

use hexabase_it::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A token from `base` for workspace `ws`: the status and, when granted, its groups.
async fn token(app: &TestApp, base: &str, ws: &str, bearer: &str) -> (StatusCode, Vec<String>) {
    let response = app
        .client
        .post(format!("{base}/api/v1/workspaces/{ws}/token"))
        .bearer_auth(bearer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let groups = body["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (status, groups)
}

/// This replica grants `bearer` a token for `ws` with `WSAdmins` among its groups.
async fn assert_granted_as_admin(app: &TestApp, ws: &str, bearer: &str) {
    let (status, groups) = token(app, &app.base, ws, bearer).await;
    assert_eq!(status, StatusCode::OK);
    assert!(groups.contains(&"WSAdmins".to_owned()), "{groups:?}");
}

/// This replica refuses `bearer` a token for `ws`: 403, or 404 once the read models no longer
/// show them the workspace (a refusal is worded as the workspace's other routes word it).
async fn assert_refused(app: &TestApp, ws: &str, bearer: &str) {
    let (status, _) = token(app, &app.base, ws, bearer).await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status}"
    );
}

/// `method` on `url` as `bearer`, with a JSON body when there is one: the status.
async fn call(
    app: &TestApp,
    method: Method,
    url: String,
    bearer: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut request = app.client.request(method, url).bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn a_token_reflects_what_another_replica_recorded_just_before() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Prod").await;
    let (bob, bob_token) = app.member_of(&org, &admin, "member").await;
    let admins = app.group_id(&ws, &admin, "WSAdmins").await;
    app.add_to_group(&ws, &admins, &admin, bob.as_str()).await;
    let other = app.replica().await;
    let mut issued = 0;

    // This replica decides (and keeps the workspace and organization in memory).
    assert_granted_as_admin(&app, &ws, &bob_token).await;
    issued += 1;

    // The other replica records an unrelated change: tokens are still granted, once each.
    let groups_url = format!("{other}/api/v1/workspaces/{ws}/groups");
    let created = call(
        &app,
        Method::POST,
        groups_url.clone(),
        &admin,
        Some(json!({ "name": "ops" })),
    )
    .await;
    assert_eq!(created, StatusCode::CREATED);
    assert_granted_as_admin(&app, &ws, &bob_token).await;
    issued += 1;

    // It removes bob from his only group: this replica refuses him at once.
    let members = format!("{groups_url}/{admins}/members");
    let removed = call(
        &app,
        Method::DELETE,
        format!("{members}/{bob}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(removed, StatusCode::OK);
    assert_refused(&app, &ws, &bob_token).await;

    // It adds him back: granted again, with the group.
    let added = call(
        &app,
        Method::POST,
        members,
        &admin,
        Some(json!({ "user_id": bob })),
    )
    .await;
    assert_eq!(added, StatusCode::CREATED);
    assert_granted_as_admin(&app, &ws, &bob_token).await;
    issued += 1;

    // It removes him from the organization: refused, though he is still in the group.
    let users = format!("{other}/api/v1/organizations/{org}/users");
    let left = call(&app, Method::DELETE, format!("{users}/{bob}"), &admin, None).await;
    assert!(left.is_success(), "{left}");
    assert_refused(&app, &ws, &bob_token).await;

    // Every token handed out is recorded once, none for a refusal or a decision taken again.
    app.caught_up().await;
    assert_eq!(app.credentials_recorded(&org, &admin).await, issued);
    // Audited by position: no checkpoint row is left behind per token.
    let checkpoints: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projection_offsets WHERE aggregate_type = 'Credential'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(checkpoints, 0);
}
