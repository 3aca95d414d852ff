use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn projects_have_unique_dns_names_a_hierarchy_and_the_plans_limit() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let (_, member) = app.member_of(&org, &admin, "member").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    let url = format!("/api/v1/workspaces/{ws}/projects");

    let web = app.post(&url, &admin, &json!({ "name": "web" })).await;
    assert_eq!(web.status, StatusCode::CREATED, "{}", web.text);
    let web_id = web.body["id"].as_str().unwrap().to_owned();
    assert!(web_id.starts_with("prj-"));
    let api = app
        .post(&url, &admin, &json!({ "name": "api", "parent_id": web_id }))
        .await;
    assert_eq!(api.status, StatusCode::CREATED, "{}", api.text);
    let api_id = api.body["id"].as_str().unwrap().to_owned();

    for (body, status) in [
        (json!({ "name": "web" }), StatusCode::CONFLICT),
        (
            json!({ "name": "Web_App" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "name": "" }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({ "name": "x", "parent_id": "prj-0192f0c1a8b47c3e9d2a51b0c4e6f7a8" }),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let reply = app.post(&url, &admin, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
    }
    let cycle = app
        .patch(
            &format!("{url}/{web_id}"),
            &admin,
            &json!({ "parent_id": api_id }),
        )
        .await;
    assert_eq!(cycle.status, StatusCode::CONFLICT, "{}", cycle.text);
    let with_child = app.delete(&format!("{url}/{web_id}"), &admin).await;
    assert_eq!(
        with_child.status,
        StatusCode::CONFLICT,
        "{}",
        with_child.text
    );
    let nothing = app
        .patch(&format!("{url}/{api_id}"), &admin, &json!({}))
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let to_top = app
        .patch(
            &format!("{url}/{api_id}"),
            &admin,
            &json!({ "parent_id": null }),
        )
        .await;
    assert_eq!(to_top.status, StatusCode::OK, "{}", to_top.text);
    let position = to_top.body["position"].as_i64().unwrap();
    let view = app
        .get(&format!("{url}/{api_id}?position={position}"), &admin)
        .await;
    assert_eq!(view.body["parent_id"], serde_json::Value::Null);
    assert_eq!(view.body["name"], "api");

    // The starter plan allows 5 projects.
    for name in ["p3", "p4", "p5"] {
        let reply = app.post(&url, &admin, &json!({ "name": name })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let over = app.post(&url, &admin, &json!({ "name": "p6" })).await;
    assert_eq!(over.status, StatusCode::CONFLICT, "{}", over.text);
    assert!(over.text.contains('5'), "{}", over.text);
    app.caught_up().await;
    let page = app.get(&format!("{url}?limit=2"), &admin).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{url}?limit=10&cursor={cursor}"), &admin)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 3);

    // An org member outside the workspace sees nothing; nobody else creates anything.
    assert_eq!(app.get(&url, &member).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&url, &member, &json!({ "name": "mine" }))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let deleted = app.delete(&format!("{url}/{api_id}"), &admin).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
}
