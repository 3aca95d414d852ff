//! How the CLI fails: in the control plane's words (`error: <message> (field <field>)`), with
//! the exit code documented for each kind of refusal.

use hexabase_it::TestApp;
use serde_json::json;

use super::common::Cli;

#[tokio::test]
async fn without_a_session_every_api_command_says_to_sign_in() {
    let app = TestApp::spawn_with(hexabase_it::TestAppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let cli = Cli::new(&app);
    for args in [
        &["org", "list"][..],
        &["auth", "whoami"],
        &["workspace", "list", "Acme"],
        &["events", "Acme"],
    ] {
        let ran = cli.run(args).await;
        ran.refused(3, "not signed in: run `hexabase auth login --server URL`");
        assert!(ran.stdout.is_empty(), "{ran:?}");
    }

    // A session whose token the control plane refuses, with nothing to renew it with.
    let cli = Cli::with_token(&app, "not-a-token");
    let ran = cli.run(&["org", "list"]).await;
    ran.refused(3, "has ended");
    assert!(ran
        .stderr
        .contains(&format!("hexabase auth login --server {}", app.base)));

    // A control plane that is not there.
    let cli = Cli::with_token(&app, "not-a-token");
    let mut session = cli.session();
    session["server"] = json!("http://127.0.0.1:9");
    cli.write_session(&session);
    cli.run(&["org", "list"])
        .await
        .refused(8, "cannot reach the control plane");
}

#[tokio::test]
async fn a_command_line_that_cannot_be_understood_exits_with_2() {
    let app = TestApp::spawn_with(hexabase_it::TestAppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    let (_, token) = app.user();
    let cli = Cli::with_token(&app, &token);
    assert_eq!(cli.run(&["org", "create"]).await.code, 2);
    assert_eq!(cli.run(&["org", "list", "-o", "yaml"]).await.code, 2);
    assert_eq!(
        cli.run(&["workspace", "create", "org-x", "Staging"])
            .await
            .code,
        2,
        "--plan is required"
    );
    cli.run(&[
        "role",
        "create",
        "prj-00000000000000000000000000000000",
        "readers",
        "--rule",
        "resources=pods",
    ])
    .await
    .refused(2, "no verbs=");
    cli.run(&["role", "list", "web"])
        .await
        .refused(2, "give --workspace");
}

#[tokio::test]
async fn refusals_carry_the_api_message_and_their_exit_code() {
    // Plan `team` withdrawn: it stays in the catalogue, and new workspaces may not choose it.
    let server = hexabase::server::HttpServer::bind("127.0.0.1:0")
        .await
        .unwrap();
    let app = TestApp::spawn_on(server, hexabase_it::TestAppOptions::default(), |settings| {
        if let Some(team) = settings.plans.get_mut("team") {
            team.available = false;
        }
    })
    .await;
    let (_, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();

    // 404: an organization the caller does not belong to (or that does not exist).
    let (_, stranger) = app.user();
    let theirs = Cli::with_token(&app, &stranger)
        .json(&["org", "create", "Theirs"])
        .await;
    cli.run(&["org", "get", theirs["id"].as_str().unwrap()])
        .await
        .refused(4, "error: ");
    // A name that names nothing the caller can see.
    cli.run(&["org", "get", "Theirs"])
        .await
        .refused(4, "no organization named `Theirs`");

    // 403: a member may read the organization but not invite.
    let (_, member) = app.member_of(org, &admin, "member").await;
    let member = Cli::with_token(&app, &member);
    let ran = member
        .run(&["member", "invite", org, "bob@example.com"])
        .await;
    assert_eq!(ran.code, 5, "{ran:?}");
    let body = app
        .post(
            &format!("/api/v1/organizations/{org}/users"),
            &member_token(&member),
            &json!({ "email": "bob@example.com" }),
        )
        .await;
    assert_eq!(body.status, reqwest::StatusCode::FORBIDDEN);
    let mut said = format!("error: {}", body.body["message"].as_str().unwrap());
    if let Some(field) = body.body["field"].as_str() {
        said.push_str(&format!(" (field {field})"));
    }
    assert_eq!(ran.stderr.trim(), said);

    // 409: an organization that still has a workspace is not deleted; the API names it.
    let ws = cli
        .json(&["workspace", "create", org, "Staging", "--plan", "starter"])
        .await;
    let ran = cli.run(&["org", "delete", org]).await;
    ran.refused(6, ws["id"].as_str().unwrap());

    // 404: an unknown plan; 422 (with its field): a plan no longer offered.
    let create = |plan: &'static str| {
        let cli = &cli;
        async move {
            cli.run(&["workspace", "create", org, "Other", "--plan", plan])
                .await
        }
    };
    create("no-such-plan")
        .await
        .refused(4, "there is no plan `no-such-plan`");
    create("team").await.refused(7, "(field plan)");
    // Input the generated client refuses before sending it.
    let long = "x".repeat(300);
    cli.run(&["org", "create", &long])
        .await
        .refused(7, "name: longer than 100 characters");
}

fn member_token(cli: &Cli) -> String {
    cli.session()["access_token"].as_str().unwrap().to_owned()
}
