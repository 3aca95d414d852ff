//! `hexabase workspace`: requesting one, reading it, following its provisioning to the end
//! (here it fails: the test control plane's issuer is plain http), its kubeconfig, deletion.

use hexabase_it::TestApp;

use super::common::Cli;

#[tokio::test]
async fn a_workspace_is_requested_followed_until_it_fails_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();

    let ws = cli
        .json(&["workspace", "create", org, "Staging", "--plan", "starter"])
        .await;
    assert_eq!(ws["status"], "Requested");
    assert_eq!(ws["plan"], "starter");
    let id = ws["id"].as_str().unwrap();
    assert!(id.starts_with("ws-"), "{ws}");
    let ran = cli
        .run(&[
            "workspace",
            "create",
            "Acme",
            "Production",
            "--plan",
            "team",
        ])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.contains("STATUS:") && ran.stdout.contains("Production"),
        "{ran:?}"
    );

    let listed = cli.json(&["workspace", "list", org]).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Staging", "Production"]);
    let ran = cli.run(&["workspace", "list", "Acme"]).await;
    assert!(ran.stdout.starts_with("ID "), "{ran:?}");
    assert_eq!(ran.stdout.lines().count(), 3, "{ran:?}");

    // By name within the organization, or by id.
    let got = cli.json(&["workspace", "get", "Acme", "Staging"]).await;
    assert_eq!(got["id"], id);
    let got = cli.json(&["workspace", "get", org, id]).await;
    assert_eq!(got["name"], "Staging");

    // Provisioning fails here (an http issuer): `wait` says why and exits with 9.
    let ran = cli
        .run(&["workspace", "wait", org, id, "--timeout", "120"])
        .await;
    ran.refused(9, "failed: ");
    assert!(ran.stderr.contains("not https"), "{ran:?}");
    assert!(
        ran.stderr.contains(&format!("{id}: ")),
        "a line of progress: {ran:?}"
    );
    let failed = cli.json(&["workspace", "get", org, id]).await;
    assert_eq!(failed["status"], "Failed");
    let ran = cli.run(&["workspace", "get", org, id]).await;
    assert!(ran.stdout.contains("REASON:"), "{ran:?}");

    // No API server, so no kubeconfig yet.
    cli.run(&["workspace", "kubeconfig", org, id])
        .await
        .refused(6, "error: ");

    let deleting = cli.json(&["workspace", "delete", org, id]).await;
    assert_eq!(deleting["status"], "Deleting");
    cli.run(&["workspace", "get", org, "Nonexistent"])
        .await
        .refused(4, "no workspace named `Nonexistent`");
    // A workspace being deleted will not become ready (and once deleted and let go of by its
    // organization, it is not found).
    let ran = cli.run(&["workspace", "wait", org, id]).await;
    assert!([9, 4].contains(&ran.code), "{ran:?}");
}
