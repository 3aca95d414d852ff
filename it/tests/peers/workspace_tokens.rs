//! The control plane as the OIDC issuer a real kube-apiserver trusts: served over TLS with its
//! own CA, the apiserver configured by `hexabase_identity::issuer::authentication_configuration`, workspace
//! tokens from `POST /api/v1/workspaces/{wsId}/token`, RBAC by the tokens' groups.

use hexabase_command::WorkspaceId;
use hexabase_it::TestApp;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use reqwest::StatusCode;
use serde_json::json;

use super::common::{hexabase_binary, https_app_without_clusters, namespace, trusting_cluster};

async fn workspace_token(app: &TestApp, ws: &str, token: &str) -> hexabase_it::spine::Reply {
    app.post(&format!("/api/v1/workspaces/{ws}/token"), token, &json!({}))
        .await
}

#[tokio::test]
async fn a_real_apiserver_trusts_workspace_tokens_and_applies_rbac_by_their_groups() {
    let (app, ca_pem) = https_app_without_clusters().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    let other_ws = app.create_workspace(&admin, &org, "Production").await;
    let (dev, dev_token) = app.member_of(&org, &admin, "member").await;
    let ops = app
        .post(
            &format!("/api/v1/workspaces/{ws}/groups"),
            &admin,
            &json!({ "name": "ops" }),
        )
        .await;
    let ops = ops.body["id"].as_str().unwrap().to_owned();
    app.add_to_group(&ws, &ops, &admin, dev.as_str()).await;
    app.caught_up().await;

    // Discovery over HTTPS names this issuer.
    let discovery = app.public_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], app.base.as_str());

    let cluster = trusting_cluster(&app, &ws, &ca_pem).await;
    let ws_id = WorkspaceId::parse(&ws).unwrap();

    // The creator, a WSAdmin, creates a namespace.
    let admin_token = workspace_token(&app, &ws, &admin).await;
    assert_eq!(admin_token.status, StatusCode::OK, "{}", admin_token.text);
    assert!(admin_token.body["groups"]
        .as_array()
        .unwrap()
        .contains(&json!("WSAdmins")));
    let as_admin: Api<Namespace> = Api::all(
        cluster
            .client_with_token(admin_token.body["token"].as_str().unwrap())
            .await,
    );
    as_admin
        .create(&PostParams::default(), &namespace("team-a"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.diagnostics()));

    // A member of `ops` (below WorkspaceMembers) lists but cannot create.
    let dev_ws_token = workspace_token(&app, &ws, &dev_token).await;
    assert_eq!(dev_ws_token.status, StatusCode::OK, "{}", dev_ws_token.text);
    assert_eq!(
        dev_ws_token.body["groups"],
        json!(["WorkspaceMembers", "ops"])
    );
    let as_dev: Api<Namespace> = Api::all(
        cluster
            .client_with_token(dev_ws_token.body["token"].as_str().unwrap())
            .await,
    );
    let listed = as_dev.list(&ListParams::default()).await.unwrap();
    assert!(listed
        .items
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some("team-a")));
    match as_dev
        .create(&PostParams::default(), &namespace("team-b"))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }

    // A token for another workspace is refused by this workspace's API server.
    let other = workspace_token(&app, &other_ws, &admin).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);
    let wrong_audience: Api<Namespace> = Api::all(
        cluster
            .client_with_token(other.body["token"].as_str().unwrap())
            .await,
    );
    match wrong_audience.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // Forged and stale tokens are refused by the API server and by our own verifier alike.
    let genuine = admin_token.body["token"].as_str().unwrap().to_owned();
    let oidc = &app.state.issuer;
    let mut expired = oidc.claims(&alice_of(&app, &admin), &ws_id, vec!["WSAdmins".into()]);
    expired.exp = expired.iat - 3600;
    expired.nbf = expired.iat - 7200;
    let expired = oidc.sign(&expired).unwrap();
    let tampered = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["groups"] = json!(["WSAdmins", "system:masters"]);
        let payload = engine.encode(claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let alg_none = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = genuine.split('.').nth(1).unwrap();
        format!(
            "{}.{payload}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#)
        )
    };
    let unknown_key = {
        let stranger = hexabase_identity::token::SigningKey::from_pkcs8(
            &hexabase_identity::token::SigningKey::generate_pkcs8().unwrap(),
        )
        .unwrap();
        let tokens = hexabase_identity::token::Tokens::new(stranger, &app.settings.auth);
        let claims = oidc.claims(&alice_of(&app, &admin), &ws_id, vec!["WSAdmins".into()]);
        let mut claims = serde_json::to_value(&claims).unwrap();
        claims["iss"] = json!(app.base);
        tokens.sign_claims(&claims).unwrap()
    };
    for (what, token) in [
        ("expired", &expired),
        ("tampered groups", &tampered),
        ("alg none", &alg_none),
        ("unknown key", &unknown_key),
    ] {
        assert!(
            oidc.verify(token, &ws_id).is_err(),
            "{what} passed our verifier"
        );
        let api: Api<Namespace> = Api::all(cluster.client_with_token(token).await);
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{what}"),
            other => panic!("{what}: expected 401, got {other:?}"),
        }
    }
    assert!(oidc.verify(&genuine, &ws_id).is_ok());

    // Someone outside the workspace or the organization gets no token at all.
    let (_, outsider) = app.member_of(&org, &admin, "member").await;
    assert_eq!(
        workspace_token(&app, &ws, &outsider).await.status,
        StatusCode::NOT_FOUND
    );
    let (_, stranger) = app.user();
    assert_eq!(
        workspace_token(&app, &ws, &stranger).await.status,
        StatusCode::NOT_FOUND
    );

    // kubectl itself, with the kubeconfig the control plane hands out. Until the workspace has
    // an API server there is no kubeconfig to give.
    let kubeconfig_url = format!("/api/v1/organizations/{org}/workspaces/{ws}/kubeconfig");
    let early = app.get(&kubeconfig_url, &admin).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    // Provisioning records the endpoint; here the KubeCluster stands in for the vCluster.
    let assign = hexabase_command::workspace::WorkspaceCommand::AssignEndpoint {
        server: cluster.server_url(),
        ca_pem: cluster.ca_pem.clone(),
    };
    let metadata = hexabase_command::CommandMetadata::for_system("provisioning");
    app.state
        .workspaces
        .execute_with_metadata(&ws, assign, metadata)
        .await
        .unwrap();
    app.caught_up().await;
    let kubeconfig = app.get(&kubeconfig_url, &admin).await;
    assert_eq!(kubeconfig.status, StatusCode::OK, "{}", kubeconfig.text);
    assert!(
        !kubeconfig.text.contains("client-certificate"),
        "no static credentials"
    );
    let home = std::env::temp_dir().join(format!("hxb-kubectl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("kubeconfig"), &kubeconfig.text).unwrap();
    std::fs::write(home.join("ca.crt"), &ca_pem).unwrap();
    let hexabase = hexabase_binary();
    let path = format!(
        "{}:{}",
        hexabase.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Asynchronously: the control plane answering the plugin runs on this test's runtime.
    let kubectl = |args: &[&str]| {
        tokio::process::Command::new(hexabase_it::peers::binary("kubectl"))
            .args(args)
            .env("KUBECONFIG", home.join("kubeconfig"))
            .env("HOME", &home)
            .env("PATH", &path)
            .env("HEXABASE_TOKEN", &admin)
            .env("HEXABASE_CA_FILE", home.join("ca.crt"))
            .output()
    };
    let created = kubectl(&["create", "namespace", "team-c"]).await.unwrap();
    assert!(
        created.status.success(),
        "kubectl: {}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = kubectl(&["get", "namespaces", "-o", "name"]).await.unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("namespace/team-c"));
    // The token was cached: the second kubectl call did not ask for another one.
    assert!(home
        .join(".hexabase/cache")
        .join(format!("{ws}.json"))
        .exists());

    // Removed from a group, the next token lacks it and the API server refuses accordingly.
    let wsadmins = app.group_id(&ws, &admin, "WSAdmins").await;
    app.add_to_group(&ws, &wsadmins, &admin, dev.as_str()).await;
    let as_admin_dev = workspace_token(&app, &ws, &dev_token).await;
    assert!(as_admin_dev.body["groups"]
        .as_array()
        .unwrap()
        .contains(&json!("WSAdmins")));
    let api: Api<Namespace> = Api::all(
        cluster
            .client_with_token(as_admin_dev.body["token"].as_str().unwrap())
            .await,
    );
    api.create(&PostParams::default(), &namespace("team-d"))
        .await
        .unwrap();
    let demoted = app
        .delete(
            &format!("/api/v1/workspaces/{ws}/groups/{wsadmins}/members/{dev}"),
            &admin,
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let after = workspace_token(&app, &ws, &dev_token).await;
    assert_eq!(after.body["groups"], json!(["WorkspaceMembers", "ops"]));
    let api: Api<Namespace> = Api::all(
        cluster
            .client_with_token(after.body["token"].as_str().unwrap())
            .await,
    );
    match api
        .create(&PostParams::default(), &namespace("team-e"))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected 403 after leaving WSAdmins, got {other:?}"),
    }

    // Key rotation: new tokens carry the new key, tokens of the previous one keep working until
    // they expire, and the API server accepts both (it fetches the JWKS again for the new kid).
    let old_kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let due =
        chrono::Utc::now() + chrono::Duration::seconds(app.settings.auth.key_rotation_secs as i64);
    oidc.keys.sync(&oidc.tokens, due).await.unwrap();
    oidc.keys
        .sync(&oidc.tokens, due + chrono::Duration::minutes(5))
        .await
        .unwrap();
    let rotated = workspace_token(&app, &ws, &admin).await;
    let rotated = rotated.body["token"].as_str().unwrap().to_owned();
    let new_kid = jsonwebtoken::decode_header(&rotated).unwrap().kid.unwrap();
    assert_ne!(new_kid, old_kid, "new tokens use the new key");
    let jwks = app.public_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    for token in [&genuine, &rotated] {
        let api: Api<Namespace> = Api::all(cluster.client_with_token(token).await);
        api.list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.diagnostics()));
    }

    // Every token handed out is in the organization's history.
    app.caught_up().await;
    let history = app
        .get(
            &format!("/api/v1/organizations/{org}/events?aggregate_type=Credential&limit=100"),
            &admin,
        )
        .await;
    let issued = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "WorkspaceTokenIssued")
        .count();
    // Both workspaces' tokens: admin, dev, the other workspace's, kubectl's (cached for its
    // second call), dev as WSAdmin, dev after, and the one after the rotation.
    assert_eq!(issued, 7);
}

/// The user a test token names.
fn alice_of(app: &TestApp, token: &str) -> hexabase_command::UserId {
    app.tokens().verify(token).unwrap().user
}
