//! The OpenAPI document tells the truth: schemathesis (from PyPI; `scripts/test` installs it)
//! generates requests for every operation from the document and checks every answer against it
//! — no server error, every status documented, bodies and headers as documented, what the schema
//! refuses refused — signed in as a user with data of their own, beside another organization's.

use std::process::Command;

use hexabase::server::HttpServer;
use hexabase_it::{TestApp, TestAppOptions};

#[tokio::test]
async fn schemathesis_finds_no_contract_failure_on_any_operation() {
    let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_on(server, TestAppOptions::default(), |settings| {
        settings.rate_limit.api_per_window = 0;
        settings.rate_limit.auth_per_window = 0;
    })
    .await;
    let (_, token) = app.user();
    let (org, _) = app.create_org(&token, "Mine").await;
    app.create_workspace(&token, &org, "Staging").await;
    let (_, other) = app.user();
    let (theirs, _) = app.create_org(&other, "Theirs").await;
    app.create_workspace(&other, &theirs, "Theirs").await;
    app.caught_up().await;
    let base = app.base.clone();
    let examples = std::env::var("HEXABASE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("st")
            .env(
                "SCHEMATHESIS_HOOKS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spine/contract_hooks.py"),
            )
            .args([
                "run",
                &format!("{base}/openapi.json"),
                "--url",
                &base,
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--checks",
                "all",
                "--max-examples",
                &examples,
                // One worker: hypothesis parses sources with `ast.parse`, which is not safe in
                // several threads at once on CPython 3.11 ("AST constructor recursion depth
                // mismatch").
                "--workers",
                "1",
                "--seed",
                "7",
                "--warnings",
                "off",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect(
        "schemathesis (`st`) runs: install it with `pip install schemathesis` (scripts/test does)",
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "schemathesis:\n{said}");
}
