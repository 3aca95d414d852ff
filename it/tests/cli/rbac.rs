//! `hexabase project`, `group`, `role` and `clusterrole`: a workspace's projects, groups,
//! roles and assignments, named by id or by name.

use hexabase_it::TestApp;
use serde_json::Value;

use super::common::Cli;

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn projects_groups_roles_and_assignments() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();
    let ws = cli
        .json(&["workspace", "create", org, "Staging", "--plan", "team"])
        .await;
    let ws = ws["id"].as_str().unwrap();

    // Projects.
    let web = cli.json(&["project", "create", ws, "web"]).await;
    let web_id = web["id"].as_str().unwrap();
    assert!(web_id.starts_with("prj-"), "{web}");
    let api = cli
        .json(&["project", "create", ws, "api", "--parent", "web"])
        .await;
    assert_eq!(api["parent_id"], web_id);
    let projects = cli.json(&["project", "list", ws]).await;
    assert_eq!(names(&projects), ["web", "api"]);
    // The workspace named as ORG/WS, by names or ids.
    for named in ["Acme/Staging", &format!("{org}/Staging")] {
        let projects = cli.json(&["project", "list", named]).await;
        assert_eq!(names(&projects), ["web", "api"], "{named}");
    }
    cli.run(&["project", "list", "Acme/Production"])
        .await
        .refused(4, "no workspace named `Production`");
    cli.run(&["project", "list", "Staging"])
        .await
        .refused(2, "name it as ORG/WS");
    let ran = cli.run(&["project", "list", ws]).await;
    assert!(
        ran.stdout.lines().nth(2).unwrap().contains(web_id),
        "{ran:?}"
    );
    // Refused before sending: the document's pattern for a project name.
    cli.run(&["project", "create", ws, "Not_A_Label"])
        .await
        .refused(7, "name: doesn't match pattern");
    cli.run(&["project", "delete", ws, "web"])
        .await
        .refused(6, "error: ");

    // Groups.
    let devs = cli.json(&["group", "create", ws, "devs"]).await;
    let devs_id = devs["id"].as_str().unwrap();
    let leads = cli
        .json(&["group", "create", ws, "leads", "--parent", "devs"])
        .await;
    assert_eq!(leads["parent_id"], devs_id);
    let groups = cli.json(&["group", "list", ws]).await;
    assert_eq!(
        names(&groups),
        ["WorkspaceMembers", "WSAdmins", "devs", "leads"]
    );
    assert_eq!(groups[0]["preset"], true);
    let ran = cli.run(&["group", "list", ws]).await;
    assert!(ran.stdout.contains("PRESET"), "{ran:?}");
    cli.run(&["group", "create", ws, "devs"])
        .await
        .refused(6, "error: ");

    let (member, _) = app.member_of(org, &admin, "member").await;
    let ran = cli
        .run(&["group", "add-member", ws, "devs", member.as_str()])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.contains(&format!("Added {member} to {devs_id}")),
        "{ran:?}"
    );
    let (stranger, _) = app.user();
    cli.run(&["group", "add-member", ws, devs_id, stranger.as_str()])
        .await
        .refused(7, "error: ");

    // Roles.
    let readers = cli
        .json(&[
            "role",
            "create",
            web_id,
            "readers",
            "--rule",
            "resources=pods,services;verbs=get,list",
            "--rule",
            "apiGroups=apps;resources=deployments;verbs=get",
        ])
        .await;
    let readers_id = readers["id"].as_str().unwrap();
    assert!(readers_id.starts_with("role-"), "{readers}");
    let roles = cli.json(&["role", "list", web_id]).await;
    assert_eq!(names(&roles), ["admin", "edit", "view", "readers"]);
    assert_eq!(roles[3]["rules"][1]["api_groups"][0], "apps");
    let ran = cli.run(&["role", "list", "web", "--workspace", ws]).await;
    assert!(
        ran.stdout
            .contains("apiGroups=;resources=pods,services;verbs=get,list | apiGroups=apps;resources=deployments;verbs=get"),
        "{ran:?}"
    );
    cli.run(&[
        "role",
        "create",
        web_id,
        "admin",
        "--rule",
        "resources=pods;verbs=get",
    ])
    .await
    .refused(6, "a role named admin already exists");
    cli.run(&[
        "role",
        "create",
        web_id,
        "odd",
        "--rule",
        "resources=pods;verbs=fly",
    ])
    .await
    .refused(7, "error: ");

    let assigned = cli
        .json(&[
            "role",
            "assign",
            "web",
            "devs",
            "readers",
            "--workspace",
            ws,
        ])
        .await;
    assert!(
        assigned["id"].as_str().unwrap().starts_with("ra-"),
        "{assigned}"
    );
    cli.run(&["role", "assign", web_id, devs_id, readers_id])
        .await
        .refused(6, "error: ");
    let ran = cli.run(&["role", "assign", web_id, devs_id, "view"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.starts_with("ID:"), "{ran:?}");

    // Cluster roles.
    let cluster = cli
        .json(&["clusterrole", "assign", ws, "leads", "view"])
        .await;
    assert!(
        cluster["id"].as_str().unwrap().starts_with("cra-"),
        "{cluster}"
    );
    cli.run(&["clusterrole", "assign", ws, "leads", "superuser"])
        .await
        .refused(7, "error: ");

    // A project goes once it has no children.
    let ran = cli.run(&["project", "delete", ws, "api"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.starts_with("Deleted project prj-"), "{ran:?}");
    assert_eq!(names(&cli.json(&["project", "list", ws]).await), ["web"]);
}
