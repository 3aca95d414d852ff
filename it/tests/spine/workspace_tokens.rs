//! Workspace tokens (`POST /api/v1/workspaces/{wsId}/token`) are decided from the workspace and
//! organization aggregates, current to their last event whichever replica recorded it.

use hexabase_it::TestApp;
use reqwest::StatusCode;
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
    let (status, groups) = token(&app, &app.base, &ws, &bob_token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(groups.contains(&"WSAdmins".to_owned()), "{groups:?}");
    issued += 1;

    // The other replica records an unrelated change: tokens are still granted, once each.
    let created = app
        .client
        .post(format!("{other}/api/v1/workspaces/{ws}/groups"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "ops" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let (status, groups) = token(&app, &app.base, &ws, &bob_token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(groups.contains(&"WSAdmins".to_owned()), "{groups:?}");
    issued += 1;

    // It removes bob from his only group: this replica refuses him at once.
    let removed = app
        .client
        .delete(format!(
            "{other}/api/v1/workspaces/{ws}/groups/{admins}/members/{bob}"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    let (status, _) = token(&app, &app.base, &ws, &bob_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // It adds him back: granted again, with the group.
    let added = app
        .client
        .post(format!(
            "{other}/api/v1/workspaces/{ws}/groups/{admins}/members"
        ))
        .bearer_auth(&admin)
        .json(&json!({ "user_id": bob }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let (status, groups) = token(&app, &app.base, &ws, &bob_token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(groups.contains(&"WSAdmins".to_owned()), "{groups:?}");
    issued += 1;

    // It removes him from the organization: refused, though he is still in the group.
    let left = app
        .client
        .delete(format!("{other}/api/v1/organizations/{org}/users/{bob}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(left.status().is_success(), "{}", left.status());
    let (status, _) = token(&app, &app.base, &ws, &bob_token).await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status}"
    );

    // Every token handed out is recorded once, none for a refusal or a decision taken again.
    app.caught_up().await;
    assert_eq!(app.credentials_recorded(&org, &admin).await, issued);
}
