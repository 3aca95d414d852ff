use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_then_read_your_own_write() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user();
    let reply = app
        .post(
            "/api/v1/organizations",
            &token,
            &json!({ "name": "  Acme  " }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("org-"));
    assert_eq!(reply.body["name"], "Acme");
    assert_eq!(reply.body["role"], "admin");
    assert_eq!(
        reply.headers["location"],
        format!("/api/v1/organizations/{id}").as_str()
    );
    let position = reply.body["position"].as_i64().unwrap();

    let org = app
        .get(
            &format!("/api/v1/organizations/{id}?position={position}"),
            &token,
        )
        .await;
    assert_eq!(org.status, StatusCode::OK, "{}", org.text);
    assert_eq!(org.body["name"], "Acme");
    assert_eq!(org.body["role"], "admin");
    assert_eq!(org.body["created_by"], alice.as_str());
    assert_eq!(
        org.body["members"],
        json!([{ "user_id": alice.as_str(), "role": "admin", "since": org.body["created_at"] }])
    );

    let mine = app
        .get(
            &format!("/api/v1/organizations?position={position}"),
            &token,
        )
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn lists_show_only_my_organizations_page_by_page() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (_, bob) = app.user();
    let mut mine = Vec::new();
    let mut last = 0;
    for name in ["One", "Two", "Three"] {
        let (id, position) = app.create_org(&alice, name).await;
        mine.push(id);
        last = position;
    }
    let (_, bobs) = app.create_org(&bob, "Bob's").await;

    let first = app
        .get(
            &format!("/api/v1/organizations?limit=2&position={last}"),
            &alice,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let ids: Vec<&str> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine[0].as_str(), mine[1].as_str()]);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get(
            &format!("/api/v1/organizations?limit=2&cursor={cursor}"),
            &alice,
        )
        .await;
    let ids: Vec<&str> = second.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine[2].as_str()]);
    assert!(second.body["next_cursor"].is_null());

    let theirs = app
        .get(&format!("/api/v1/organizations?position={bobs}"), &bob)
        .await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 1);
    let peek = app
        .get(&format!("/api/v1/organizations/{}", mine[0]), &bob)
        .await;
    assert_eq!(
        peek.status,
        StatusCode::NOT_FOUND,
        "strangers learn nothing"
    );
    assert_eq!(peek.body["code"], "not_found");

    for bad in ["limit=0", "limit=101", "cursor=nope"] {
        let reply = app
            .get(&format!("/api/v1/organizations?{bad}"), &alice)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn admins_rename_strangers_cannot() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (_, mallory) = app.user();
    let (id, _) = app.create_org(&alice, "Acme").await;
    let path = format!("/api/v1/organizations/{id}");

    let renamed = app
        .patch(&path, &alice, &json!({ "name": "Acme Corp" }))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let position = renamed.body["position"].as_i64().unwrap();
    let org = app
        .get(&format!("{path}?position={position}"), &alice)
        .await;
    assert_eq!(org.body["name"], "Acme Corp");

    let stolen = app.patch(&path, &mallory, &json!({ "name": "Mine" })).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let unknown = app
        .patch(
            "/api/v1/organizations/org-0192f0c1a8b47c3e9d2a51b0c4e6f7a8",
            &alice,
            &json!({ "name": "X" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let garbage = app
        .patch(
            "/api/v1/organizations/not-an-id",
            &alice,
            &json!({ "name": "X" }),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    let org = app.get(&path, &alice).await;
    assert_eq!(
        org.body["name"], "Acme Corp",
        "refused writes changed nothing"
    );
}

#[tokio::test]
async fn invitations_are_recorded_once_per_email() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (_, mallory) = app.user();
    let (id, _) = app.create_org(&alice, "Acme").await;
    let users = format!("/api/v1/organizations/{id}/users");

    let invited = app
        .post(
            &users,
            &alice,
            &json!({ "email": "Ada@Example.com", "role": "admin" }),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    assert_eq!(invited.body["email"], "ada@example.com");
    assert_eq!(invited.body["role"], "admin");
    let position = invited.body["position"].as_i64().unwrap();

    let again = app
        .post(&users, &alice, &json!({ "email": "ada@example.COM" }))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let bad = app
        .post(&users, &alice, &json!({ "email": "not-an-email" }))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "email");

    let bad_role = app
        .post(
            &users,
            &alice,
            &json!({ "email": "bob@example.com", "role": "owner" }),
        )
        .await;
    assert_eq!(
        bad_role.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_role.text
    );

    let stranger = app
        .post(&users, &mallory, &json!({ "email": "eve@example.com" }))
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);

    let org = app
        .get(
            &format!("/api/v1/organizations/{id}?position={position}"),
            &alice,
        )
        .await;
    let invitations = org.body["invitations"].as_array().unwrap();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0]["email"], "ada@example.com");
    assert_eq!(invitations[0]["role"], "admin");
}

#[tokio::test]
async fn the_last_admin_stays_and_unknown_members_are_not_found() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (bob_id, _) = app.user();
    let (id, _) = app.create_org(&alice, "Acme").await;
    let last = app
        .delete(
            &format!("/api/v1/organizations/{id}/users/{alice_id}"),
            &alice,
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.text);
    let unknown = app
        .delete(
            &format!("/api/v1/organizations/{id}/users/{bob_id}"),
            &alice,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type <> 'Keyring'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 1, "only the creation was recorded");
}

#[tokio::test]
async fn auditors_page_through_history_with_actor_and_time() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (_, mallory) = app.user();
    let (id, _) = app.create_org(&alice, "Acme").await;
    app.patch(
        &format!("/api/v1/organizations/{id}"),
        &alice,
        &json!({ "name": "Acme Corp" }),
    )
    .await;
    let invited = app
        .post(
            &format!("/api/v1/organizations/{id}/users"),
            &alice,
            &json!({ "email": "ada@example.com" }),
        )
        .await;
    let position = invited.body["position"].as_i64().unwrap();

    let events = format!("/api/v1/organizations/{id}/events");
    let page = app
        .get(&format!("{events}?limit=2&position={position}"), &alice)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let items = page.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["OrganizationCreated", "OrganizationRenamed"]);
    for item in items {
        assert_eq!(item["actor"], alice_id.as_str());
        assert_eq!(item["aggregate_id"], id.as_str());
        assert!(item["occurred_at"].as_str().is_some());
        assert!(item["request_id"].as_str().is_some());
    }
    assert_eq!(
        items[1]["payload"]["OrganizationRenamed"]["name"],
        "Acme Corp"
    );
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{events}?limit=2&cursor={cursor}"), &alice)
        .await;
    let kinds: Vec<&str> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["UserInvited"]);
    assert!(rest.body["next_cursor"].is_null());

    // Newest first, paged back in time: the same events the other way round.
    let kinds_of = |reply: &hexabase_it::spine::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let latest = app
        .get(&format!("{events}?order=newest&limit=2"), &alice)
        .await;
    assert_eq!(latest.status, StatusCode::OK, "{}", latest.text);
    assert_eq!(kinds_of(&latest), ["UserInvited", "OrganizationRenamed"]);
    let cursor = latest.body["next_cursor"].as_str().unwrap();
    let older = app
        .get(
            &format!("{events}?order=newest&limit=2&cursor={cursor}"),
            &alice,
        )
        .await;
    assert_eq!(kinds_of(&older), ["OrganizationCreated"]);
    assert!(older.body["next_cursor"].is_null());
    let unknown = app.get(&format!("{events}?order=sideways"), &alice).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);

    let filtered = app
        .get(&format!("{events}?aggregate_type=Workspace"), &alice)
        .await;
    assert_eq!(filtered.body["items"], json!([]));
    let future = app
        .get(&format!("{events}?since=2999-01-01T00:00:00Z"), &alice)
        .await;
    assert_eq!(future.body["items"], json!([]));

    let stranger = app.get(&events, &mallory).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_renames_never_lose_an_update() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (id, _) = app.create_org(&alice, "Acme").await;
    let path = format!("/api/v1/organizations/{id}");
    let renames = (0..16).map(|i| {
        let (app, path, alice) = (&app, &path, &alice);
        async move {
            (
                i,
                app.patch(path, alice, &json!({ "name": format!("Name {i}") }))
                    .await,
            )
        }
    });
    let replies = futures::future::join_all(renames).await;
    let mut won = 0;
    for (i, reply) in &replies {
        match reply.status {
            StatusCode::OK => won += 1,
            StatusCode::CONFLICT => assert_eq!(reply.body["code"], "conflict", "{i}"),
            other => panic!("rename {i}: unexpected {other}: {}", reply.text),
        }
    }
    assert!(won >= 1);
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'OrganizationRenamed'->>'name' FROM events \
         WHERE aggregate_id = $1 AND event_type = 'OrganizationRenamed' ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        recorded.len(),
        won,
        "every accepted rename is an event, every refused one is not"
    );
    let position: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let last_now = app
        .get(&format!("{path}?position={position}"), &alice)
        .await;
    assert_eq!(
        last_now.body["name"].as_str().unwrap(),
        recorded.last().unwrap()
    );
}
