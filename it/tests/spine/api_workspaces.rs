use hexabase::server::HttpServer;
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_projector::{organization, replay, workspace};
use reqwest::StatusCode;
use serde_json::json;

async fn create(app: &TestApp, org: &str, token: &str, name: &str) -> hexabase_it::spine::Reply {
    app.post(
        &format!("/api/v1/organizations/{org}/workspaces"),
        token,
        &json!({ "name": name, "plan": "starter" }),
    )
    .await
}

#[tokio::test]
async fn an_org_admin_requests_a_workspace_and_follows_its_status() {
    let app = TestApp::spawn().await;
    let (alice, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let reply = create(&app, &org, &admin, "  Staging ").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let ws = reply.body["id"].as_str().unwrap().to_owned();
    assert!(ws.starts_with("ws-"), "{ws}");
    assert_eq!(reply.body["status"], "Requested");
    assert_eq!(reply.body["name"], "Staging");
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    assert_eq!(reply.headers["location"], link.as_str());
    assert_eq!(reply.body["links"]["self"], link.as_str());
    let position = reply.body["position"].as_i64().unwrap();

    let view = app
        .get(&format!("{link}?position={position}"), &admin)
        .await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    let status = view.body["status"].as_str().unwrap().to_owned();
    assert!(
        ["Requested", "Provisioning", "Failed"].contains(&status.as_str()),
        "{status}"
    );
    assert_eq!(view.body["plan"], "starter");
    assert_eq!(view.body["created_by"], alice.as_str());

    // The preset groups exist, WSAdmins below WorkspaceMembers, with the creator in WSAdmins.
    let groups: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT g.name, g.parent_id IS NOT NULL, \
         EXISTS (SELECT 1 FROM rm_workspace_group_members m WHERE m.group_id = g.id AND m.user_id = $2) \
         FROM rm_workspace_groups g WHERE g.ws_id = $1 ORDER BY g.name",
    )
    .bind(&ws)
    .bind(alice.as_str())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        groups,
        [
            ("WSAdmins".to_owned(), true, true),
            ("WorkspaceMembers".to_owned(), false, false)
        ]
    );

    let list = app
        .get(&format!("/api/v1/organizations/{org}/workspaces"), &admin)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"][0]["id"], ws.as_str());

    // Auditors see the workspace's events in the organization's history, later ones included.
    let renamed = app.patch(&link, &admin, &json!({ "name": "Prod" })).await;
    let position = renamed.body["position"].as_i64().unwrap();
    app.caught_up().await;
    let history = app
        .get(
            &format!(
                "/api/v1/organizations/{org}/events?aggregate_type=Workspace&position={position}"
            ),
            &admin,
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .filter(|t| ["WorkspaceRequested", "WorkspaceRenamed"].contains(t))
        .collect();
    assert_eq!(types, ["WorkspaceRequested", "WorkspaceRenamed"]);

    // This control plane's issuer is plain http, which no API server trusts: provisioning
    // fails for good, says why, and the history has the step that failed.
    app.eventually("provisioning to fail", || async {
        app.get(&link, &admin).await.body["status"] == "Failed"
    })
    .await;
    let failed = app.get(&link, &admin).await;
    let reason = failed.body["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("https"), "{}", failed.text);
    app.caught_up().await;
    let history = app
        .get(
            &format!("/api/v1/organizations/{org}/events?aggregate_type=Workspace"),
            &admin,
        )
        .await;
    let failure = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "WorkspaceStepFailed")
        .unwrap_or_else(|| panic!("no failed step in {}", history.text));
    assert_eq!(
        failure["payload"]["WorkspaceStepFailed"]["step"],
        "create-cluster"
    );
    assert_eq!(failure["actor"], "system");
}

/// A read that passes its write's position never answers 404 because another projection it
/// depends on (the organization's member list) is behind: it waits, then says to retry.
#[tokio::test]
async fn reading_a_new_workspace_waits_for_the_organization_behind_it() {
    let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn_on(server, options, |s| s.http.read_wait_ms = 300).await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let reply = create(&app, &org, &admin, "Staging").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let ws = reply.body["id"].as_str().unwrap();
    let position = reply.body["position"].as_i64().unwrap();
    let read = format!("/api/v1/organizations/{org}/workspaces/{ws}?position={position}");

    // Only the workspace projection has applied its events.
    replay(&app.pool, &workspace::WorkspacesProjection)
        .await
        .unwrap();
    let view = app.get(&read, &admin).await;
    assert_eq!(
        view.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        view.text
    );
    assert_eq!(view.body["code"], "not_caught_up");
    assert_eq!(view.headers["retry-after"], "1");

    replay(&app.pool, &organization::OrganizationsProjection)
        .await
        .unwrap();
    let view = app.get(&read, &admin).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    assert_eq!(view.body["name"], "Staging");
}

#[tokio::test]
async fn bad_requests_record_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let url = format!("/api/v1/organizations/{org}/workspaces");
    for (body, status) in [
        (
            json!({ "name": "X", "plan": "platinum" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": "", "plan": "starter" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "name": "X" }), StatusCode::BAD_REQUEST),
        (
            json!({ "name": "X", "plan": "starter", "size": 3 }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = app.post(&url, &admin, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert!(reply.body["code"].is_string(), "{}", reply.text);
    }
    let workspaces: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Workspace' \
         OR event_type = 'WorkspaceAttached'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(workspaces, 0);
    let missing = app
        .get(
            &format!("{url}/ws-0192f0c1a8b47c3e9d2a51b0c4e6f7a8"),
            &admin,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nonsense = app.get(&format!("{url}/nonsense"), &admin).await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn members_outsiders_and_strangers_get_what_the_policy_says() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let (_, member) = app.member_of(&org, &admin, "member").await;
    let (_, stranger) = app.user();
    let reply = create(&app, &org, &admin, "Staging").await;
    let ws = reply.body["id"].as_str().unwrap().to_owned();
    app.caught_up().await;
    let url = format!("/api/v1/organizations/{org}/workspaces/{ws}");

    // An org member who is in no group of the workspace does not see it.
    assert_eq!(app.get(&url, &member).await.status, StatusCode::NOT_FOUND);
    let list = app
        .get(&format!("/api/v1/organizations/{org}/workspaces"), &member)
        .await;
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(
        create(&app, &org, &member, "Mine").await.status,
        StatusCode::FORBIDDEN
    );
    for token in [&member, &stranger] {
        let patch = app.patch(&url, token, &json!({ "name": "Taken" })).await;
        assert_eq!(patch.status, StatusCode::NOT_FOUND, "{}", patch.text);
        assert_eq!(app.delete(&url, token).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get(&url, &stranger).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        create(&app, &org, &stranger, "Mine").await.status,
        StatusCode::NOT_FOUND
    );
    let anonymous = app.request(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admins_rename_change_plan_and_delete_and_the_org_keeps_its_workspaces() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let reply = create(&app, &org, &admin, "Staging").await;
    let ws = reply.body["id"].as_str().unwrap().to_owned();
    let url = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    app.caught_up().await;

    let patched = app
        .patch(
            &url,
            &admin,
            &json!({ "name": "Production", "plan": "team" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let position = patched.body["position"].as_i64().unwrap();
    let view = app.get(&format!("{url}?position={position}"), &admin).await;
    assert_eq!(view.body["name"], "Production");
    assert_eq!(view.body["plan"], "team");
    let empty = app.patch(&url, &admin, &json!({})).await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.text
    );
    let bad_plan = app.patch(&url, &admin, &json!({ "plan": "nope" })).await;
    assert_eq!(bad_plan.status, StatusCode::NOT_FOUND, "{}", bad_plan.text);

    // No API server yet, so no kubeconfig (a broken one would help nobody).
    let kubeconfig = app.get(&format!("{url}/kubeconfig"), &admin).await;
    assert_eq!(
        kubeconfig.status,
        StatusCode::CONFLICT,
        "{}",
        kubeconfig.text
    );
    assert!(
        kubeconfig.text.contains("no API server yet"),
        "{}",
        kubeconfig.text
    );

    // The organization cannot go while it has the workspace.
    let org_delete = app
        .delete(&format!("/api/v1/organizations/{org}"), &admin)
        .await;
    assert_eq!(
        org_delete.status,
        StatusCode::CONFLICT,
        "{}",
        org_delete.text
    );
    assert!(org_delete.text.contains(&ws));

    let deleted = app.delete(&url, &admin).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    assert_eq!(deleted.body["status"], "Deleting");
    let position = deleted.body["position"].as_i64().unwrap();
    let view = app.get(&format!("{url}?position={position}"), &admin).await;
    let status = view.body["status"].as_str().unwrap_or_default().to_owned();
    assert!(
        ["Deleting", "Deleted"].contains(&status.as_str()),
        "{status}"
    );
    // Torn down (it never had a cluster), it is gone, and so is the organization's hold on it.
    app.eventually("the workspace to be deleted", || async {
        app.get(&url, &admin).await.body["status"] == "Deleted"
    })
    .await;
    let again = app.delete(&url, &admin).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    let rename = app.patch(&url, &admin, &json!({ "name": "Late" })).await;
    assert_eq!(rename.status, StatusCode::NOT_FOUND, "{}", rename.text);
    app.eventually("the organization to let go of the workspace", || async {
        let org_delete = app
            .delete(&format!("/api/v1/organizations/{org}"), &admin)
            .await;
        org_delete.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn suspending_is_for_org_admins_and_running_workspaces_and_a_refusal_records_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    // A member of the organization who administers the workspace, one who only uses it, and
    // somebody from elsewhere.
    let (ws_admin_id, ws_admin) = app.member_of(&org, &admin, "member").await;
    let (member_id, member) = app.member_of(&org, &admin, "member").await;
    let admins = app.group_id(&ws, &admin, "WSAdmins").await;
    let members = app.group_id(&ws, &admin, "WorkspaceMembers").await;
    app.add_to_group(&ws, &admins, &admin, ws_admin_id.as_str())
        .await;
    app.add_to_group(&ws, &members, &admin, member_id.as_str())
        .await;
    let (_, outsider) = app.user();
    app.caught_up().await;
    let history = format!("/api/v1/organizations/{org}/events?aggregate_type=Workspace&limit=100");
    let recorded = || async {
        app.get(&history, &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = recorded().await;

    for (who, token, status) in [
        ("a WSAdmin", &ws_admin, StatusCode::FORBIDDEN),
        ("a member", &member, StatusCode::FORBIDDEN),
        ("an outsider", &outsider, StatusCode::NOT_FOUND),
    ] {
        for action in ["suspend", "resume"] {
            let reply = app
                .post(&format!("{link}/{action}"), token, &json!({}))
                .await;
            assert_eq!(reply.status, status, "{who} {action}: {}", reply.text);
        }
    }
    // Bad bodies: an unknown field, an empty reason.
    for body in [
        json!({ "why": "x" }),
        json!({ "reason": " " }),
        json!({ "reason": "" }),
    ] {
        let reply = app.post(&format!("{link}/suspend"), &admin, &body).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.text);
        assert_ne!(reply.status, StatusCode::CONFLICT, "{body}: {}", reply.text);
    }
    // This workspace never became Ready (no https issuer here): nothing to suspend or resume.
    for action in ["suspend", "resume"] {
        let reply = app
            .post(
                &format!("{link}/{action}"),
                &admin,
                &json!({ "reason": "unpaid" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{action}: {}",
            reply.text
        );
        assert_eq!(reply.body["code"], "conflict", "{}", reply.text);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("only a Ready workspace"),
            "{}",
            reply.text
        );
    }
    app.caught_up().await;
    assert_eq!(recorded().await, before, "refusals recorded nothing");
}
