//! `hexabase org` and `hexabase member`: tables for people, JSON for scripts, names for ids,
//! and every page of a list.

use hexabase_it::TestApp;
use serde_json::json;

use super::common::{register, Cli};

#[tokio::test]
async fn organizations_are_created_listed_read_and_deleted() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);

    let ran = cli.run(&["org", "create", "Acme"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.starts_with("ID:"), "{ran:?}");
    assert!(
        ran.stdout.contains("Acme") && ran.stdout.contains("admin"),
        "{ran:?}"
    );
    let other = cli.json(&["org", "create", "Other Corp"]).await;
    assert_eq!(other["role"], "admin");

    let ran = cli.run(&["org", "list"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{ran:?}");
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("  NAME  "),
        "{ran:?}"
    );
    assert!(lines[2].contains("Other Corp"), "{ran:?}");
    // Columns line up: NAME starts at the same place on every line.
    let at = lines[0].find("NAME").unwrap();
    assert!(lines[1][at..].starts_with("Acme"), "{ran:?}");

    // By name or by id.
    let acme = cli.json(&["org", "get", "Acme"]).await;
    assert_eq!(acme["members"][0]["user_id"], admin_id.as_str());
    let by_id = cli
        .json(&["org", "get", acme["id"].as_str().unwrap()])
        .await;
    assert_eq!(by_id["name"], "Acme");
    let ran = cli.run(&["org", "get", "Acme"]).await;
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.starts_with("MEMBER:") && l.contains(&format!(" {admin_id} admin since "))),
        "{ran:?}"
    );

    let deleted = cli.json(&["org", "delete", "Other Corp"]).await;
    assert!(deleted["position"].is_i64(), "{deleted}");
    cli.run(&["org", "get", other["id"].as_str().unwrap()])
        .await
        .refused(4, "error: ");
    let ran = cli.run(&["org", "delete", "Acme"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.starts_with("Deleted organization org-"),
        "{ran:?}"
    );
    assert_eq!(cli.json(&["org", "list"]).await, json!([]));
}

#[tokio::test]
async fn lists_go_through_every_page() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    for n in 0..105 {
        app.create_org(&admin, &format!("Org {n:03}")).await;
    }
    app.caught_up().await;
    let cli = Cli::with_token(&app, &admin);
    let orgs = cli.json(&["org", "list"]).await;
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 105);
    assert_eq!(names[0], "Org 000");
    assert_eq!(names[104], "Org 104");
    let ran = cli.run(&["org", "list"]).await;
    assert_eq!(
        ran.stdout.lines().count(),
        106,
        "a header and every organization"
    );
}

#[tokio::test]
async fn members_are_invited_listed_and_removed_by_id_or_email() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();

    let invited = cli
        .json(&[
            "member",
            "invite",
            org,
            "bob@example.com",
            "--role",
            "admin",
        ])
        .await;
    assert_eq!(
        invited,
        json!({ "email": "bob@example.com", "role": "admin", "position": invited["position"] })
    );
    let ran = cli.run(&["org", "get", org]).await;
    assert!(
        ran.stdout.contains("INVITED:  bob@example.com as admin"),
        "{ran:?}"
    );
    let ran = cli
        .run(&["member", "invite", org, "carol@example.com"])
        .await;
    assert!(ran.stdout.contains("carol@example.com") && ran.stdout.contains("member"));

    let (dev, _) = app.member_of(org, &admin, "member").await;
    let (ops, _) = app.member_of(org, &admin, "member").await;
    register(&app, &ops, "ops@example.com").await;
    app.caught_up().await;
    let members = cli.json(&["member", "list", org]).await;
    assert_eq!(members.as_array().unwrap().len(), 3, "{members}");
    let ran = cli.run(&["member", "list", org]).await;
    assert!(
        ran.stdout.lines().next().unwrap().starts_with("USER"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("ops@example.com"), "{ran:?}");

    let ran = cli.run(&["member", "remove", org, dev.as_str()]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains(&format!("Removed {dev}")), "{ran:?}");
    let removed = cli
        .json(&["member", "remove", org, "OPS@example.com"])
        .await;
    assert!(removed["position"].is_i64());
    let members = cli.json(&["member", "list", org]).await;
    assert_eq!(members[0]["user_id"], admin_id.as_str());
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");

    // Never the last admin.
    cli.run(&["member", "remove", org, admin_id.as_str()])
        .await
        .refused(6, "error: ");
    cli.run(&["member", "remove", org, "nobody@example.com"])
        .await
        .refused(4, "no member named `nobody@example.com`");
}
