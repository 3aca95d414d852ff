//! Organization members: listing, role changes, and deleting the organization.

use hexabase_command::organization::OrganizationCommand;
use hexabase_command::values::Email;
use hexabase_command::{CommandMetadata, UserId, WorkspaceId};
use hexabase_it::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Invite `email` through the API and have `user` accept, as the accept endpoint would after
/// checking their verified email. Returns the position of the acceptance.
async fn join(app: &TestApp, org: &str, admin: &str, user: &UserId, email: &str) -> i64 {
    let invited = app
        .post(
            &format!("/api/v1/organizations/{org}/users"),
            admin,
            &json!({ "email": email }),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    let command = OrganizationCommand::AcceptInvitation {
        verified_email: Email::parse("email", email).unwrap(),
        actor: user.clone(),
    };
    execute(app, org, user, command).await
}

/// Run an organization command directly; returns the aggregate's latest position.
async fn execute(app: &TestApp, org: &str, actor: &UserId, command: OrganizationCommand) -> i64 {
    let metadata = CommandMetadata::for_request(actor.clone(), "it".into());
    app.state
        .organizations
        .execute_with_metadata(org, command, metadata.into_map())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT max(position) FROM events WHERE aggregate_id = $1")
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn user_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {page}"))
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn role_changes(app: &TestApp, org: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'MemberRoleChanged'",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn members_page_by_user_id_with_what_their_sign_in_told() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (bob_id, bob) = app.user();
    let (carol_id, _) = app.user();
    let (_, mallory) = app.user();
    let (org, _) = app.create_org(&alice, "Acme").await;
    app.register(&bob_id, "bob@example.com", "Bob").await;
    join(&app, &org, &alice, &bob_id, "bob@example.com").await;
    join(&app, &org, &alice, &carol_id, "carol@example.com").await;
    app.caught_up().await;

    let users = format!("/api/v1/organizations/{org}/users");
    let mut expected = vec![
        alice_id.to_string(),
        bob_id.to_string(),
        carol_id.to_string(),
    ];
    expected.sort();

    let first = app.get(&format!("{users}?limit=2"), &alice).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(user_ids(&first.body), expected[..2]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app
        .get(&format!("{users}?limit=2&cursor={cursor}"), &alice)
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(user_ids(&second.body), expected[2..]);
    assert!(second.body["next_cursor"].is_null());

    // Any member may list; the default page holds everyone.
    let all = app.get(&users, &bob).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(user_ids(&all.body), expected);
    let items = all.body["items"].as_array().unwrap();
    let member = |id: &UserId| {
        items
            .iter()
            .find(|m| m["user_id"] == id.as_str())
            .unwrap()
            .clone()
    };
    let bobs = member(&bob_id);
    assert_eq!(bobs["role"], "member");
    assert_eq!(bobs["email"], "bob@example.com");
    assert_eq!(bobs["display_name"], "Bob");
    assert!(bobs["since"].as_str().is_some());
    let carols = member(&carol_id);
    assert!(
        carols["email"].is_null() && carols["display_name"].is_null(),
        "never signed in: {carols}"
    );
    assert_eq!(member(&alice_id)["role"], "admin");

    let stranger = app.get(&users, &mallory).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.text);
    assert_eq!(stranger.body["code"], "not_found");
    for bad in ["limit=0", "limit=101", "cursor=nope", "cursor=org-1"] {
        let reply = app.get(&format!("{users}?{bad}"), &alice).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        let field = if bad.starts_with("cursor") {
            "cursor"
        } else {
            "limit"
        };
        assert_eq!(reply.body["field"], field, "{bad}");
    }
}

#[tokio::test]
async fn admins_change_roles_but_never_demote_the_last_admin() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (bob_id, bob) = app.user();
    let (_, mallory) = app.user();
    let (org, _) = app.create_org(&alice, "Acme").await;
    join(&app, &org, &alice, &bob_id, "bob@example.com").await;
    let member = |id: &UserId| format!("/api/v1/organizations/{org}/users/{id}");
    let to = |role: &str| json!({ "role": role });

    let last = app.patch(&member(&alice_id), &alice, &to("member")).await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.text);
    assert_eq!(last.body["code"], "conflict");
    let by_member = app.patch(&member(&bob_id), &bob, &to("admin")).await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.text
    );
    let by_stranger = app.patch(&member(&bob_id), &mallory, &to("admin")).await;
    assert_eq!(
        by_stranger.status,
        StatusCode::NOT_FOUND,
        "{}",
        by_stranger.text
    );
    let (unknown, _) = app.user();
    let not_a_member = app.patch(&member(&unknown), &alice, &to("admin")).await;
    assert_eq!(
        not_a_member.status,
        StatusCode::NOT_FOUND,
        "{}",
        not_a_member.text
    );
    let garbage = app
        .patch(
            &format!("/api/v1/organizations/{org}/users/not-an-id"),
            &alice,
            &to("admin"),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND, "{}", garbage.text);
    for body in [
        json!({ "role": "owner" }),
        json!({ "role": "admin", "extra": true }),
        json!({}),
    ] {
        let bad = app.patch(&member(&bob_id), &alice, &body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{body}: {}", bad.text);
        assert!(bad.body["code"].is_string(), "{body}: {}", bad.text);
    }
    assert_eq!(role_changes(&app, &org).await, 0, "refusals record nothing");

    let promoted = app.patch(&member(&bob_id), &alice, &to("admin")).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(promoted.body["user_id"], bob_id.as_str());
    assert_eq!(promoted.body["role"], "admin");
    let position = promoted.body["position"].as_i64().unwrap();
    let listed = app
        .get(
            &format!("/api/v1/organizations/{org}/users?position={position}"),
            &alice,
        )
        .await;
    let bobs = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == bob_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bobs["role"], "admin");

    let again = app.patch(&member(&bob_id), &alice, &to("admin")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["position"], position, "nothing new recorded");
    assert_eq!(role_changes(&app, &org).await, 1);

    // With two admins either may step down, but not both.
    let stepped_down = app.patch(&member(&alice_id), &alice, &to("member")).await;
    assert_eq!(stepped_down.status, StatusCode::OK, "{}", stepped_down.text);
    let alone = app.patch(&member(&bob_id), &bob, &to("member")).await;
    assert_eq!(alone.status, StatusCode::CONFLICT, "{}", alone.text);
    let now_member = app.patch(&member(&bob_id), &alice, &to("member")).await;
    assert_eq!(
        now_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        now_member.text
    );
    assert_eq!(role_changes(&app, &org).await, 2);
}

#[tokio::test]
async fn a_deleted_organization_is_gone_for_everyone() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (bob_id, bob) = app.user();
    let (_, mallory) = app.user();
    let (org, _) = app.create_org(&alice, "Acme").await;
    let (other, _) = app.create_org(&alice, "Other").await;
    join(&app, &org, &alice, &bob_id, "bob@example.com").await;
    app.post(
        &format!("/api/v1/organizations/{org}/users"),
        &alice,
        &json!({ "email": "ada@example.com" }),
    )
    .await;
    let path = format!("/api/v1/organizations/{org}");

    let by_member = app.delete(&path, &bob).await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.text
    );
    let by_stranger = app.delete(&path, &mallory).await;
    assert_eq!(
        by_stranger.status,
        StatusCode::NOT_FOUND,
        "{}",
        by_stranger.text
    );

    let deleted = app.delete(&path, &alice).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let position = deleted.body["position"].as_i64().unwrap();
    for (who, token) in [("admin", &alice), ("member", &bob)] {
        let gone = app.get(&format!("{path}?position={position}"), token).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{who}: {}", gone.text);
        let users = app.get(&format!("{path}/users"), token).await;
        assert_eq!(users.status, StatusCode::NOT_FOUND, "{who}: {}", users.text);
    }
    let mine = app.get("/api/v1/organizations", &alice).await;
    let ids: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other.as_str()]);
    let again = app.delete(&path, &alice).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    let renamed = app.patch(&path, &alice, &json!({ "name": "Back" })).await;
    assert_eq!(renamed.status, StatusCode::NOT_FOUND, "{}", renamed.text);
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM rm_organization_members WHERE org_id = $1) \
              + (SELECT count(*) FROM rm_organization_invitations WHERE org_id = $1)",
    )
    .bind(&org)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0, "members and invitations left the read model");
}

#[tokio::test]
async fn an_organization_with_workspaces_is_not_deleted() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (org, _) = app.create_org(&alice, "Acme").await;
    let workspace = WorkspaceId::generate();
    let attached = execute(
        &app,
        &org,
        &alice_id,
        OrganizationCommand::AttachWorkspace {
            workspace_id: workspace.clone(),
            actor: alice_id.clone(),
        },
    )
    .await;
    let path = format!("/api/v1/organizations/{org}");

    let refused = app.delete(&path, &alice).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["code"], "conflict");
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains(workspace.as_str()), "{message}");
    let still = app
        .get(&format!("{path}?position={attached}"), &alice)
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.text);

    execute(
        &app,
        &org,
        &alice_id,
        OrganizationCommand::DetachWorkspace {
            workspace_id: workspace,
        },
    )
    .await;
    let deleted = app.delete(&path, &alice).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
}

#[tokio::test]
async fn member_management_needs_a_session() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user();
    let (org, created) = app.create_org(&alice, "Acme").await;
    let calls = [
        (
            Method::GET,
            format!("/api/v1/organizations/{org}/users"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/organizations/{org}/users/{alice_id}"),
            Some(json!({ "role": "member" })),
        ),
        (Method::DELETE, format!("/api/v1/organizations/{org}"), None),
    ];
    for (method, path, body) in &calls {
        let anonymous = app.request(method.clone(), path, None, body.as_ref()).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            anonymous.text
        );
        assert_eq!(anonymous.body["code"], "unauthorized");
    }
    let still = app
        .get(
            &format!("/api/v1/organizations/{org}?position={created}"),
            &alice,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.text);
}
