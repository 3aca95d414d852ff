//! `hexabase auth`: signing in for real through the browser and with a device code, the
//! private session file, the access token renewed without the user noticing (before it
//! expires, after a refusal, by concurrent runs taking turns), its end, signing out, and
//! kubectl's credential plugin on the same session.

use std::time::Duration;

use hexabase_command::WorkspaceId;
use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::common::{claims, finished, mode, register, url_on_stderr, Browser, Cli};

/// Sign `cli` in through the browser of `session` (the code flow on a loopback listener).
async fn browser_login(app: &TestApp, cli: &Cli, session: &str) {
    let mut login = cli.login("--no-browser");
    let (url, rest) = url_on_stderr(&mut login).await;
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", app.base)) && url.contains("hexabase-cli"),
        "{url}"
    );
    let (status, page) = Browser::new(app, session).visit(&url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    let (code, said) = finished(&mut login, rest).await;
    assert_eq!(code, 0, "hexabase auth login: {said}");
    assert!(said.contains("Signed in to"), "{said}");
}

/// Rewrite the session file's `field`.
fn edit_session(cli: &Cli, field: &str, value: Value) {
    let mut session = cli.session();
    session[field] = value;
    cli.write_session(&session);
}

#[tokio::test]
async fn signing_in_through_the_browser_keeps_a_private_session_that_renews_itself() {
    let app = TestApp::spawn().await;
    let (alice, alice_browser) = app.user();
    let cli = Cli::new(&app);
    browser_login(&app, &cli, &alice_browser).await;

    // The session: readable by the user only, a session of alice's with a refresh token.
    assert_eq!(mode(&cli.session_file()), 0o600);
    let first = cli.session();
    assert_eq!(first["server"], app.base.as_str());
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["sub"], alice.as_str());
    assert!(claims(access)["sid"].is_string(), "{first}");
    assert!(first["refresh_token"].is_string(), "{first}");

    // A write, and a read right after it that sees it (the read waits for the write's
    // position, kept in the session).
    let org = cli.json(&["org", "create", "Acme"]).await;
    assert_eq!(org["name"], "Acme");
    let listed = cli.json(&["org", "list"]).await;
    assert_eq!(listed[0]["id"], org["id"], "{listed}");
    assert!(cli.session()["position"].is_i64());

    // About to expire: renewed before use, the refresh token rotated and saved.
    edit_session(
        &cli,
        "expires_at",
        json!(chrono::Utc::now() - chrono::Duration::minutes(1)),
    );
    let listed = cli.json(&["org", "list"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let renewed = cli.session();
    assert_ne!(renewed["refresh_token"], first["refresh_token"]);
    assert_ne!(renewed["access_token"], first["access_token"]);
    let expiry = |session: &Value| {
        chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap()).unwrap()
    };
    assert!(expiry(&renewed) > expiry(&first));
    assert_eq!(mode(&cli.session_file()), 0o600);

    // An access token that expired although the file says otherwise: refused (401), renewed
    // once, and the request made again.
    let mut expired = app.tokens().claims_for(&alice, Duration::from_secs(0));
    expired.exp -= 300;
    expired.sid = claims(renewed["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .map(str::to_owned);
    let expired = app.tokens().sign(&expired).unwrap();
    assert_eq!(
        app.get("/api/v1/organizations", &expired).await.status,
        StatusCode::UNAUTHORIZED
    );
    edit_session(&cli, "access_token", json!(expired));
    let got = cli.json(&["org", "get", "Acme"]).await;
    assert_eq!(got["id"], org["id"]);
    assert_ne!(cli.session()["refresh_token"], renewed["refresh_token"]);

    // Runs at once with a token about to expire: one renews, the others use what it saved
    // (two renewing with one refresh token would end the session).
    edit_session(
        &cli,
        "expires_at",
        json!(chrono::Utc::now() - chrono::Duration::minutes(1)),
    );
    let runs: Vec<_> = (0..4)
        .map(|_| cli.run(&["org", "list", "-o", "json"]))
        .collect();
    for ran in futures::future::join_all(runs).await {
        assert_eq!(ran.json().as_array().unwrap().len(), 1);
    }
    assert_eq!(cli.run(&["org", "list"]).await.code, 0);

    // The first refresh token, replayed elsewhere, ends the session (someone copied it): the
    // CLI says to sign in again, and has forgotten it.
    let replay = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", "hexabase-cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let ran = cli.run(&["org", "list"]).await;
    ran.refused(3, "has ended");
    assert!(
        ran.stderr
            .contains(&format!("hexabase auth login --server {}", app.base)),
        "{ran:?}"
    );
    assert!(!cli.session_file().exists());
    cli.run(&["org", "list"]).await.refused(3, "not signed in");
}

#[tokio::test]
async fn signing_in_with_a_device_code_then_signing_out() {
    let app = TestApp::spawn().await;
    let (alice, alice_browser) = app.user();
    register(&app, &alice, "alice@example.com").await;
    let cli = Cli::new(&app);
    let mut login = cli.login("--device");
    let (url, rest) = url_on_stderr(&mut login).await;
    assert!(
        url.starts_with(&format!("{}/oauth/device?user_code=", app.base)),
        "{url}"
    );
    let (status, page) = Browser::new(&app, &alice_browser).visit(&url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Device allowed"), "{page}");
    let (code, said) = finished(&mut login, rest).await;
    assert_eq!(code, 0, "hexabase auth login --device: {said}");
    assert_eq!(mode(&cli.session_file()), 0o600);

    // Who is signed in.
    app.caught_up().await;
    let me = cli.json(&["auth", "whoami"]).await;
    assert_eq!(me["id"], alice.as_str());
    let ran = cli.run(&["auth", "whoami"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("alice@example.com"), "{ran:?}");
    assert!(ran.stdout.contains(&app.base), "{ran:?}");

    // kubectl's credential plugin takes the session's token when there is no workspace grant.
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();
    let ws = cli
        .json(&["workspace", "create", org, "Staging", "--plan", "starter"])
        .await;
    let ws = ws["id"].as_str().unwrap();
    app.caught_up().await;
    let ran = cli
        .run(&[
            "kubectl-credential",
            "--server",
            &app.base,
            "--workspace",
            ws,
        ])
        .await;
    let credential = ran.json();
    assert_eq!(credential["kind"], "ExecCredential");
    let token = credential["status"]["token"].as_str().unwrap();
    let workspace_claims = app
        .state
        .issuer
        .verify(token, &WorkspaceId::parse(ws).unwrap())
        .unwrap();
    assert_eq!(workspace_claims.sub, alice.as_str());

    // Signing out ends the session at the control plane, and forgets it here.
    let access = cli.session()["access_token"].as_str().unwrap().to_owned();
    let ran = cli.run(&["auth", "logout"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.contains("Signed out"), "{ran:?}");
    assert!(!cli.session_file().exists());
    assert_eq!(
        app.get("/api/v1/organizations", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let ran = cli.run(&["org", "list"]).await;
    ran.refused(3, "not signed in");
    assert!(
        ran.stderr.contains("hexabase auth login --server"),
        "{ran:?}"
    );
    cli.run(&["auth", "logout"])
        .await
        .refused(3, "not signed in");
}
