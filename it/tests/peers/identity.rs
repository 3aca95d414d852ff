use std::process::Command;

use hexabase_it::peers::{binary, IdentityProvider, IdpUser, JwtAuthenticator, KubeCluster};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};

#[tokio::test]
async fn the_identity_providers_discovery_and_jwks_verify_its_id_tokens() {
    let ada = IdpUser::new("ada");
    let idp =
        IdentityProvider::start(std::slice::from_ref(&ada), "http://127.0.0.1:1/callback").await;
    let http = idp.http_client();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let discovery: Value = serde_json::from_str(
        &get(format!("{}/.well-known/openid-configuration", idp.issuer)).await,
    )
    .unwrap();
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    let jwks: JwkSet =
        serde_json::from_str(&get(discovery["jwks_uri"].as_str().unwrap().to_owned()).await)
            .unwrap();

    let tokens = idp.password_grant(&ada).await;
    let header = decode_header(&tokens.id_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("token signed by a published key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&idp.client_id]);
    validation.set_issuer(&[&idp.issuer]);
    let claims = decode::<Value>(
        &tokens.id_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("ID token verifies against the JWKS")
    .claims;
    assert_eq!(claims["email"], ada.email.as_str());
    assert_eq!(claims["email_verified"], true);

    let mut wrong = ada.clone();
    wrong.password = "not-the-password".into();
    let refused = http
        .post(format!("{}/token", idp.issuer))
        .basic_auth(&idp.client_id, Some(&idp.client_secret))
        .form(&[
            ("grant_type", "password"),
            ("username", wrong.email.as_str()),
            ("password", "nope"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        refused.status().is_client_error(),
        "wrong passwords are refused"
    );
}

fn can_i(
    cluster: &KubeCluster,
    token: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> String {
    let ca = cluster.dir().join("ca.crt");
    let output = Command::new(binary("kubectl"))
        .args(["auth", "can-i", verb, resource, "-n", namespace])
        .arg(format!("--server={}", cluster.server_url()))
        .arg(format!("--certificate-authority={}", ca.display()))
        .arg(format!("--token={token}"))
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("run kubectl");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn an_idp_user_gets_exactly_what_a_rolebinding_grants() {
    let ada = IdpUser::new("ada");
    let idp =
        IdentityProvider::start(std::slice::from_ref(&ada), "http://127.0.0.1:1/callback").await;
    let cluster = KubeCluster::start().await;
    cluster
        .restart_with_authentication(&JwtAuthenticator {
            issuer: idp.issuer.clone(),
            audiences: vec![idp.client_id.clone()],
            certificate_authority: idp.ca_pem.clone(),
            username_claim: "email".into(),
            username_prefix: "idp:".into(),
            groups_claim: "groups".into(),
            groups_prefix: "idp:".into(),
        })
        .await;
    eprintln!(
        "kube-apiserver restarted in {:.1} s",
        cluster.startup.lock().unwrap().as_secs_f64()
    );

    let admin = cluster.client().await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in ["team-a", "team-b"] {
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    // A plain Role: the aggregated `view` ClusterRole gets its rules from controller-manager,
    // which this cluster does not run.
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "configmap-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"] }],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "ada-reads-configmaps" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("idp:{}", ada.email) }],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin, "team-a")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    let token = idp.password_grant(&ada).await.id_token;
    let as_ada = cluster.client_with_token(&token).await;
    let in_a: Api<ConfigMap> = Api::namespaced(as_ada.clone(), "team-a");
    // The authorizer sees new bindings through an informer: allow it a moment.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = in_a.list(&ListParams::default()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binding never let ada list in team-a: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let write = in_a
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "x" } })).unwrap(),
        )
        .await;
    assert!(
        matches!(write, Err(kube::Error::Api(ref e)) if e.code == 403),
        "reading does not let ada write: {write:?}"
    );
    let in_b: Api<ConfigMap> = Api::namespaced(as_ada, "team-b");
    let other = in_b.list(&ListParams::default()).await;
    assert!(
        matches!(other, Err(kube::Error::Api(ref e)) if e.code == 403),
        "nothing granted in team-b: {other:?}"
    );

    assert_eq!(
        can_i(&cluster, &token, "list", "configmaps", "team-a"),
        "yes"
    );
    assert_eq!(
        can_i(&cluster, &token, "create", "configmaps", "team-a"),
        "no"
    );
    assert_eq!(
        can_i(&cluster, &token, "list", "configmaps", "team-b"),
        "no"
    );

    // Flip one character in the middle of the signature.
    let cut = token.rfind('.').unwrap() + 10;
    let flipped = if &token[cut..=cut] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..cut], &token[cut + 1..]);
    let rejected = cluster.client_with_token(&forged).await;
    let unauthorized = Api::<ConfigMap>::namespaced(rejected, "team-a")
        .list(&ListParams::default())
        .await;
    assert!(
        matches!(unauthorized, Err(kube::Error::Api(ref e)) if e.code == 401),
        "{unauthorized:?}"
    );
}
