//! `hexabase events`: an organization's history, filtered, and followed as it grows.

use std::process::Stdio;
use std::time::Duration;

use hexabase_it::TestApp;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use super::common::Cli;

fn types(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap_or_else(|| panic!("a list: {events}"))
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect()
}

/// The next event `--follow -o json` prints (one a line).
async fn next_event(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("an event within 30 s")
        .unwrap()
        .expect("--follow goes on");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn the_history_is_listed_filtered_and_followed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user();
    let cli = Cli::with_token(&app, &admin);
    let org = cli.json(&["org", "create", "Acme"]).await;
    let org = org["id"].as_str().unwrap();
    cli.json(&["member", "invite", org, "bob@example.com"])
        .await;
    cli.json(&["workspace", "create", org, "Staging", "--plan", "starter"])
        .await;

    let events = cli.json(&["events", org]).await;
    let seen = types(&events);
    assert_eq!(
        seen[..2],
        ["OrganizationCreated", "UserInvited"],
        "{events}"
    );
    assert!(seen.contains(&"WorkspaceRequested"), "{events}");
    let positions: Vec<i64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");

    let only = cli
        .json(&["events", "Acme", "--aggregate-type", "Organization"])
        .await;
    assert!(only
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["aggregate_type"] == "Organization"));
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    assert_eq!(
        cli.json(&["events", org, "--since", &future]).await,
        json!([])
    );

    let ran = cli.run(&["events", org]).await;
    assert!(ran.stdout.starts_with("POSITION"), "{ran:?}");
    assert!(ran.stdout.contains("OrganizationCreated"), "{ran:?}");

    // Following: what is there, then what comes.
    let mut follow = cli.command(&[
        "events",
        org,
        "--follow",
        "--aggregate-type",
        "Organization",
        "--interval",
        "1",
        "-o",
        "json",
    ]);
    follow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut follow = follow.spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let count = only.as_array().unwrap().len();
    for n in 0..count {
        assert_eq!(
            next_event(&mut lines).await["position"],
            only[n]["position"]
        );
    }
    cli.json(&["member", "invite", org, "carol@example.com"])
        .await;
    let new = next_event(&mut lines).await;
    assert_eq!(new["event_type"], "UserInvited");
    assert!(
        new["payload"].to_string().contains("carol@example.com"),
        "{new}"
    );
    follow.kill().await.unwrap();
}
