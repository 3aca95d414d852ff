use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::json;

/// An org with a workspace; returns (admin token, org id, workspace id).
async fn workspace(app: &TestApp) -> (String, String, String) {
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    (admin, org, ws)
}

fn id(reply: &hexabase_it::spine::Reply) -> String {
    reply.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn groups_form_a_hierarchy_without_cycles_and_presets_stay() {
    let app = TestApp::spawn().await;
    let (admin, _, ws) = workspace(&app).await;
    let url = format!("/api/v1/workspaces/{ws}/groups");
    let ops = app.post(&url, &admin, &json!({ "name": "ops" })).await;
    assert_eq!(ops.status, StatusCode::CREATED, "{}", ops.text);
    let ops_id = id(&ops);
    assert_eq!(ops.headers["location"], format!("{url}/{ops_id}").as_str());
    let oncall = app
        .post(
            &url,
            &admin,
            &json!({ "name": "oncall", "parent_id": ops_id }),
        )
        .await;
    assert_eq!(oncall.status, StatusCode::CREATED, "{}", oncall.text);
    let oncall_id = id(&oncall);
    let position = oncall.body["position"].as_i64().unwrap();

    let list = app.get(&format!("{url}?position={position}"), &admin).await;
    let mut names: Vec<(String, Option<String>)> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["parent_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    names.sort();
    let members_group = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "WorkspaceMembers")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admins_group = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "WSAdmins")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        names,
        [
            ("WSAdmins".to_owned(), Some(members_group.clone())),
            ("WorkspaceMembers".to_owned(), None),
            ("oncall".to_owned(), Some(ops_id.clone())),
            ("ops".to_owned(), Some(members_group.clone())),
        ]
    );

    for (body, status) in [
        (json!({ "name": "ops" }), StatusCode::CONFLICT),
        (
            json!({ "name": "two words" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "x", "parent_id": "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a8" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": "x", "parent_id": "nope" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let reply = app.post(&url, &admin, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
    }
    let cycle = app
        .patch(
            &format!("{url}/{ops_id}"),
            &admin,
            &json!({ "parent_id": oncall_id }),
        )
        .await;
    assert_eq!(cycle.status, StatusCode::CONFLICT, "{}", cycle.text);
    let with_child = app.delete(&format!("{url}/{ops_id}"), &admin).await;
    assert_eq!(
        with_child.status,
        StatusCode::CONFLICT,
        "{}",
        with_child.text
    );
    assert!(with_child.text.contains("oncall"), "{}", with_child.text);
    for preset in [&members_group, &admins_group] {
        let reply = app.delete(&format!("{url}/{preset}"), &admin).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
        let reply = app
            .patch(
                &format!("{url}/{preset}"),
                &admin,
                &json!({ "name": "mine" }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    }
    let renamed = app
        .patch(
            &format!("{url}/{oncall_id}"),
            &admin,
            &json!({ "name": "pager" }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let deleted = app.delete(&format!("{url}/{oncall_id}"), &admin).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let position = deleted.body["position"].as_i64().unwrap();
    let gone = app
        .get(&format!("{url}/{oncall_id}?position={position}"), &admin)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn group_membership_decides_who_sees_and_who_manages_the_workspace() {
    let app = TestApp::spawn().await;
    let (admin, org, ws) = workspace(&app).await;
    let (bob, bob_token) = app.member_of(&org, &admin, "member").await;
    let (carol, carol_token) = app.member_of(&org, &admin, "member").await;
    let (stranger, _) = app.user();
    let groups = format!("/api/v1/workspaces/{ws}/groups");
    let ws_url = format!("/api/v1/organizations/{org}/workspaces/{ws}");

    let ops = app.post(&groups, &admin, &json!({ "name": "ops" })).await;
    let ops_id = id(&ops);
    let list = app.get(&groups, &admin).await;
    let admins_group = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "WSAdmins")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let leads = app
        .post(
            &groups,
            &admin,
            &json!({ "name": "leads", "parent_id": admins_group }),
        )
        .await;
    let leads_id = id(&leads);

    // Only members of the organization join its groups.
    let outsider = app
        .post(
            &format!("{groups}/{ops_id}/members"),
            &admin,
            &json!({ "user_id": stranger.as_str() }),
        )
        .await;
    assert_eq!(
        outsider.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        outsider.text
    );

    assert_eq!(
        app.get(&ws_url, &bob_token).await.status,
        StatusCode::NOT_FOUND
    );
    let joined = app
        .post(
            &format!("{groups}/{ops_id}/members"),
            &admin,
            &json!({ "user_id": bob.as_str() }),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.text);
    let again = app
        .post(
            &format!("{groups}/{ops_id}/members"),
            &admin,
            &json!({ "user_id": bob.as_str() }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // A member of a group in `leads` (below WSAdmins) is a WSAdmin.
    let lead = app
        .post(
            &format!("{groups}/{leads_id}/members"),
            &admin,
            &json!({ "user_id": carol.as_str() }),
        )
        .await;
    let position = lead.body["position"].as_i64().unwrap();
    app.get(&format!("{groups}?position={position}"), &admin)
        .await;

    // Bob, in `ops`, reads the workspace and its groups but manages nothing.
    assert_eq!(app.get(&ws_url, &bob_token).await.status, StatusCode::OK);
    assert_eq!(app.get(&groups, &bob_token).await.status, StatusCode::OK);
    let members = app
        .get(&format!("{groups}/{ops_id}/members"), &bob_token)
        .await;
    assert_eq!(members.body["items"][0]["user_id"], bob.as_str());
    assert_eq!(
        app.patch(&ws_url, &bob_token, &json!({ "name": "Mine" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&groups, &bob_token, &json!({ "name": "bobs" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Carol manages it.
    let renamed = app
        .patch(&ws_url, &carol_token, &json!({ "name": "Carol's" }))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let created = app
        .post(&groups, &carol_token, &json!({ "name": "qa" }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // Removing Bob hides the workspace from him again.
    let removed = app
        .delete(&format!("{groups}/{ops_id}/members/{bob}"), &admin)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let position = removed.body["position"].as_i64().unwrap();
    app.get(&format!("{groups}?position={position}"), &admin)
        .await;
    assert_eq!(
        app.get(&ws_url, &bob_token).await.status,
        StatusCode::NOT_FOUND
    );
    let not_in = app
        .delete(&format!("{groups}/{ops_id}/members/{bob}"), &admin)
        .await;
    assert_eq!(not_in.status, StatusCode::NOT_FOUND);
}
