use hexabase_it::browser::{dex_login, follow_to_callback, start_login, visit, Started};
use hexabase_it::github::GithubAccount;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::world;

async fn github_login(w: &crate::World, account: &GithubAccount) -> hexabase_it::spine::Reply {
    w.github.sign_in_as(account);
    let started = start_login(&w.app, "github").await;
    let callback = follow_to_callback(&w.app, &started.url).await;
    visit(&w.app, &callback, Some(&started.binder)).await
}

#[tokio::test]
async fn a_github_user_signs_in_with_their_verified_primary_email() {
    let w = world().await;
    let octo = GithubAccount::new("octocat", "octo@example.com", true);
    let reply = github_login(&w, &octo).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = reply.body["access_token"].as_str().unwrap();
    let me = w.app.get("/auth/me", token).await;
    assert_eq!(me.body["email"], "octo@example.com");
    assert_eq!(me.body["display_name"], "octocat (GitHub)");
    assert_eq!(me.body["identities"][0]["provider"], "github");
    assert_eq!(me.body["identities"][0]["subject"], octo.id.to_string());
}

#[tokio::test]
async fn a_login_without_a_verified_email_is_refused_and_records_nothing() {
    let w = world().await;
    let unverified = GithubAccount::new("sneaky", "ceo@example.com", false);
    let reply = github_login(&w, &unverified).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'User'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn the_same_email_at_another_provider_is_another_account_until_linked() {
    let w = world().await;
    let ada_dex = dex_login(&w.app, &w.dex, &w.ada).await;
    let ada_id = ada_dex.body["user_id"].as_str().unwrap().to_owned();
    let ada_token = ada_dex.body["access_token"].as_str().unwrap().to_owned();

    // Whoever controls a GitHub account with Ada's email does not get Ada's account.
    let lookalike = GithubAccount::new("ada-gh", &w.ada.email, true);
    let other = github_login(&w, &lookalike).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);
    assert_ne!(other.body["user_id"], ada_id.as_str());

    // Ada links her own GitHub account explicitly, while signed in.
    let ada_github = GithubAccount::new("ada-real", &w.ada.email, true);
    w.github.sign_in_as(&ada_github);
    let started = Started::from_reply(
        &w.app
            .request(Method::POST, "/auth/link/github", Some(&ada_token), None)
            .await,
    );
    let callback = follow_to_callback(&w.app, &started.url).await;
    // Someone who lured Ada into their link flow would need her browser's login cookie.
    let lured = visit(&w.app, &callback, None).await;
    assert_eq!(lured.status, StatusCode::BAD_REQUEST, "{}", lured.text);
    let linked = visit(&w.app, &callback, Some(&started.binder)).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    assert_eq!(linked.body["user_id"], ada_id.as_str());
    let position = linked.body["position"].as_i64().unwrap();
    let me = w
        .app
        .get(&format!("/auth/me?position={position}"), &ada_token)
        .await;
    let providers: Vec<_> = me.body["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(providers, ["dex", "github"]);
    // From now on the GitHub login is Ada.
    let again = github_login(&w, &ada_github).await;
    assert_eq!(again.body["user_id"], ada_id.as_str());

    // An identity that belongs to someone else cannot be linked.
    w.github.sign_in_as(&lookalike);
    let started = Started::from_reply(
        &w.app
            .request(Method::POST, "/auth/link/github", Some(&ada_token), None)
            .await,
    );
    let callback = follow_to_callback(&w.app, &started.url).await;
    let taken = visit(&w.app, &callback, Some(&started.binder)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    // Linking needs a signed-in user.
    let anonymous = w
        .app
        .request(Method::POST, "/auth/link/github", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invited_email_sees_the_invitation_and_only_its_owner_can_accept() {
    let w = world().await;
    let (_, admin) = w.app.user();
    let (org, _) = w.app.create_org(&admin, "Acme").await;
    let invite = w
        .app
        .post(
            &format!("/api/v1/organizations/{org}/users"),
            &admin,
            &json!({ "email": w.ada.email.to_uppercase(), "role": "admin" }),
        )
        .await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.text);
    w.app.caught_up().await;

    // Someone else, even with a verified email of their own, cannot take Ada's invitation.
    let octo = github_login(&w, &GithubAccount::new("octocat", "octo@example.com", true)).await;
    let octo_token = octo.body["access_token"].as_str().unwrap();
    let stolen = w
        .app
        .post(
            &format!("/api/v1/organizations/{org}/invitations/accept"),
            octo_token,
            &json!({}),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.text);

    let ada = dex_login(&w.app, &w.dex, &w.ada).await;
    let token = ada.body["access_token"].as_str().unwrap();
    let me = w.app.get("/auth/me", token).await;
    assert_eq!(me.body["invitations"][0]["org_id"], org.as_str());
    assert_eq!(me.body["invitations"][0]["org_name"], "Acme");
    assert_eq!(me.body["invitations"][0]["role"], "admin");

    let accepted = w
        .app
        .post(
            &format!("/api/v1/organizations/{org}/invitations/accept"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let position = accepted.body["position"].as_i64().unwrap();
    let org_view = w
        .app
        .get(
            &format!("/api/v1/organizations/{org}?position={position}"),
            token,
        )
        .await;
    assert_eq!(org_view.status, StatusCode::OK, "{}", org_view.text);
    assert_eq!(org_view.body["role"], "admin");
    let me = w.app.get("/auth/me", token).await;
    assert_eq!(me.body["invitations"], json!([]));
    assert_eq!(me.body["organizations"][0]["id"], org.as_str());
    // Used once.
    let again = w
        .app
        .post(
            &format!("/api/v1/organizations/{org}/invitations/accept"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
}
