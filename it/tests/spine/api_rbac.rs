use hexabase_it::spine::Reply;
use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Scene {
    admin: String,
    org: String,
    ws: String,
    project: String,
}

async fn scene(app: &TestApp) -> Scene {
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    let project = app
        .post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            &admin,
            &json!({ "name": "web" }),
        )
        .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    let project = project.body["id"].as_str().unwrap().to_owned();
    app.caught_up().await;
    Scene {
        admin,
        org,
        ws,
        project,
    }
}

fn rule(verbs: &[&str]) -> Value {
    json!({ "api_groups": [""], "resources": ["pods", "pods/log"], "verbs": verbs })
}

async fn group(app: &TestApp, s: &Scene, name: &str) -> String {
    let reply = app
        .post(
            &format!("/api/v1/workspaces/{}/groups", s.ws),
            &s.admin,
            &json!({ "name": name }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

fn created(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn custom_roles_are_validated_and_assignments_keep_what_they_use() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let roles = format!("/api/v1/projects/{}/roles", s.project);
    let reader = created(
        &app.post(
            &roles,
            &s.admin,
            &json!({ "name": "pod-reader", "rules": [rule(&["get", "list", "watch"])] }),
        )
        .await,
    );
    // Organization admins may grant `*`.
    created(
        &app.post(
            &roles,
            &s.admin,
            &json!({ "name": "pod-everything", "rules": [rule(&["*"])] }),
        )
        .await,
    );
    for (body, status) in [
        (
            json!({ "name": "steal", "rules": [rule(&["steal"])] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "empty", "rules": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "admin", "rules": [rule(&["get"])] }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "name": "pod-reader", "rules": [rule(&["get"])] }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "name": "Bad_Name", "rules": [rule(&["get"])] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "x", "rules": [{ "verbs": ["get"] }] }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = app.post(&roles, &s.admin, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
    }
    app.caught_up().await;
    let list = app.get(&roles, &s.admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let presets: Vec<&str> = list.body["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(presets, ["admin", "edit", "view"]);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let view = app.get(&format!("{roles}/view"), &s.admin).await;
    assert_eq!(view.body["preset"], true);
    let one = app.get(&format!("{roles}/{reader}"), &s.admin).await;
    assert_eq!(
        one.body["rules"][0]["verbs"],
        json!(["get", "list", "watch"])
    );

    // A group gets the role; the role and the group then stay until the assignment goes.
    let ops = group(&app, &s, "ops").await;
    let assignments = format!("/api/v1/projects/{}/roleassignments", s.project);
    let assignment = created(
        &app.post(
            &assignments,
            &s.admin,
            &json!({ "group_id": ops, "role": reader }),
        )
        .await,
    );
    let twice = app
        .post(
            &assignments,
            &s.admin,
            &json!({ "group_id": ops, "role": reader }),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.text);
    let unknown_role = app
        .post(
            &assignments,
            &s.admin,
            &json!({ "group_id": ops, "role": "root" }),
        )
        .await;
    assert_eq!(unknown_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let role_in_use = app.delete(&format!("{roles}/{reader}"), &s.admin).await;
    assert_eq!(
        role_in_use.status,
        StatusCode::CONFLICT,
        "{}",
        role_in_use.text
    );
    assert!(
        role_in_use.text.contains(&assignment),
        "{}",
        role_in_use.text
    );
    let group_in_use = app
        .delete(
            &format!("/api/v1/workspaces/{}/groups/{ops}", s.ws),
            &s.admin,
        )
        .await;
    assert_eq!(
        group_in_use.status,
        StatusCode::CONFLICT,
        "{}",
        group_in_use.text
    );
    assert!(
        group_in_use.text.contains(&assignment),
        "{}",
        group_in_use.text
    );

    let patched = app
        .patch(
            &format!("{roles}/{reader}"),
            &s.admin,
            &json!({ "rules": [rule(&["get"])] }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let gone = app
        .delete(&format!("{assignments}/{assignment}"), &s.admin)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(
        app.delete(&format!("{roles}/{reader}"), &s.admin)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/workspaces/{}/groups/{ops}", s.ws),
            &s.admin
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn project_admins_manage_their_project_without_wildcards_members_only_read() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let (lead, lead_token) = app.member_of(&s.org, &s.admin, "member").await;
    let (dev, dev_token) = app.member_of(&s.org, &s.admin, "member").await;
    let leads = group(&app, &s, "leads").await;
    let devs = group(&app, &s, "devs").await;
    for (g, user) in [(&leads, &lead), (&devs, &dev)] {
        app.add_to_group(&s.ws, g, &s.admin, user.as_str()).await;
    }
    let assignments = format!("/api/v1/projects/{}/roleassignments", s.project);
    created(
        &app.post(
            &assignments,
            &s.admin,
            &json!({ "group_id": leads, "role": "admin" }),
        )
        .await,
    );
    app.caught_up().await;
    let roles = format!("/api/v1/projects/{}/roles", s.project);

    // The project admin creates roles, but no wildcard.
    created(
        &app.post(
            &roles,
            &lead_token,
            &json!({ "name": "log-reader", "rules": [rule(&["get"])] }),
        )
        .await,
    );
    let wild = app
        .post(
            &roles,
            &lead_token,
            &json!({ "name": "all-pods", "rules": [rule(&["*"])] }),
        )
        .await;
    assert_eq!(
        wild.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wild.text
    );
    assert_eq!(wild.body["field"], "rules");
    created(
        &app.post(
            &assignments,
            &lead_token,
            &json!({ "group_id": devs, "role": "view" }),
        )
        .await,
    );
    // …but not the workspace's cluster roles.
    let cluster = format!("/api/v1/workspaces/{}/clusterroleassignments", s.ws);
    let refused = app
        .post(
            &cluster,
            &lead_token,
            &json!({ "group_id": devs, "cluster_role": "view" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);

    // A plain workspace member reads and changes nothing.
    app.caught_up().await;
    assert_eq!(app.get(&roles, &dev_token).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&assignments, &dev_token).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get(&cluster, &dev_token).await.status, StatusCode::OK);
    let denied = app
        .post(
            &roles,
            &dev_token,
            &json!({ "name": "mine", "rules": [rule(&["get"])] }),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text);
    // Someone outside the workspace does not see the project at all.
    let (_, outsider) = app.member_of(&s.org, &s.admin, "member").await;
    assert_eq!(
        app.get(&roles, &outsider).await.status,
        StatusCode::NOT_FOUND
    );
    let (_, stranger) = app.user();
    assert_eq!(
        app.get(&roles, &stranger).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cluster_role_assignments_give_groups_preset_cluster_roles() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let ops = group(&app, &s, "ops").await;
    let url = format!("/api/v1/workspaces/{}/clusterroleassignments", s.ws);
    let id = created(
        &app.post(
            &url,
            &s.admin,
            &json!({ "group_id": ops, "cluster_role": "edit" }),
        )
        .await,
    );
    for (body, status) in [
        (
            json!({ "group_id": ops, "cluster_role": "edit" }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "group_id": ops, "cluster_role": "root" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "group_id": "grp-0192f0c1a8b47c3e9d2a51b0c4e6f7a8", "cluster_role": "view" }),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let reply = app.post(&url, &s.admin, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
    }
    app.caught_up().await;
    let one = app.get(&format!("{url}/{id}"), &s.admin).await;
    assert_eq!(one.body["role"], "edit");
    assert_eq!(one.body["group_id"], ops.as_str());
    let list = app.get(&url, &s.admin).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(&format!("{url}/{id}"), &s.admin).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(&format!("{url}/{id}"), &s.admin).await.status,
        StatusCode::NOT_FOUND
    );
}
