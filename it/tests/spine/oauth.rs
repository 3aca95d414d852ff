//! The OpenID provider's authorization code flow (`/oauth/authorize`, `/oauth/token`) as
//! kubectl clients use it: the workspace is the client, the browser signed in to the control
//! plane, PKCE S256, loopback redirects, rotating refresh tokens.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hexabase_identity::secrets::pkce_challenge;
use hexabase_it::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

const VERIFIER: &str = "a-pkce-verifier-of-the-kubectl-client-0123456789";
const REDIRECT: &str = "http://127.0.0.1:18000/callback";

/// A browser signed in as `token`: follows no redirects, so the test sees where it is sent.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Flow<'a> {
    app: &'a TestApp,
    ws: String,
}

impl Flow<'_> {
    fn authorize_url(&self, overrides: &[(&str, &str)]) -> String {
        let challenge = pkce_challenge(VERIFIER);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.ws),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| n != name);
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", self.app.base)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// The browser's visit, allowing on the approval page: (status, the query of where it is
    /// sent back to, the body).
    async fn visit(
        &self,
        session: Option<&str>,
        overrides: &[(&str, &str)],
    ) -> (StatusCode, HashMap<String, String>, String) {
        let (status, query, body) = self.open(session, &self.authorize_url(overrides)).await;
        match (status, session) {
            (StatusCode::OK, Some(token)) => {
                let allow = approval_link(&body, "allow");
                self.open(Some(token), &format!("{}{allow}", self.app.base))
                    .await
            }
            _ => (status, query, body),
        }
    }

    /// One request of the browser: (status, the query of where it is sent to, the body).
    async fn open(
        &self,
        session: Option<&str>,
        url: &str,
    ) -> (StatusCode, HashMap<String, String>, String) {
        let mut request = browser().get(url);
        if let Some(token) = session {
            request = request.header("Cookie", format!("hxb_session={token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        let query = location
            .map(|l| {
                assert!(l.starts_with(REDIRECT), "sent to {l}");
                reqwest::Url::parse(&l)
                    .unwrap()
                    .query_pairs()
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        (status, query, body)
    }

    async fn code_for(&self, session: &str) -> String {
        let (status, query, body) = self.visit(Some(session), &[]).await;
        assert_eq!(status, StatusCode::FOUND, "{body}");
        assert_eq!(query["state"], "st-1");
        query
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code: {query:?}"))
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .post(format!("{}/oauth/token", self.app.base))
            .form(form);
        if let Some(credentials) = basic {
            request = request.header(
                "Authorization",
                format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &self.ws),
            ],
            None,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.ws),
            ],
            None,
        )
        .await
    }
}

/// The `href` of the approval page's Allow or Deny link.
fn approval_link(page: &str, id: &str) -> String {
    hexabase_it::spine::approval_link(page, id)
        .unwrap_or_else(|| panic!("no {id} link on the page: {page}"))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// An organization with a workspace whose creator (`admin`) is a WSAdmin.
async fn setup(app: &TestApp) -> (String, String, String) {
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    (org, ws, admin)
}

#[tokio::test]
async fn a_member_signs_kubectl_in_and_refreshes_with_rotating_tokens() {
    let app = TestApp::spawn().await;
    let (org, ws, admin) = setup(&app).await;
    let flow = Flow {
        app: &app,
        ws: ws.clone(),
    };

    let discovery = app.public_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["authorization_endpoint"],
        format!("{}/oauth/authorize", app.base)
    );
    assert_eq!(
        discovery["token_endpoint"],
        format!("{}/oauth/token", app.base)
    );

    let code = flow.code_for(&admin).await;
    // kubelogin's client library first authenticates with HTTP Basic and an empty secret.
    let (status, set) = flow
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            Some(&format!("{ws}:")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["token_type"], "Bearer");
    let id_token = set["id_token"].as_str().unwrap();
    let claimed = claims(id_token);
    assert_eq!(claimed["aud"], ws.as_str());
    assert_eq!(claimed["nonce"], "n-1");
    assert_eq!(claimed["iss"], app.base.as_str());
    assert_eq!(claimed["groups"], json!(["WSAdmins", "WorkspaceMembers"]));
    let user = app.tokens().verify(&admin).unwrap().user;
    assert_eq!(claimed["sub"], user.as_str());
    let ws_id = hexabase_command::WorkspaceId::parse(&ws).unwrap();
    app.state.issuer.verify(id_token, &ws_id).unwrap();

    // The code was used up.
    let (status, error) = flow.redeem(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");

    // Refreshing rotates the refresh token; the new token set has no nonce.
    let first = set["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = flow.refresh(&first).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(claims(second["id_token"].as_str().unwrap())
        .get("nonce")
        .is_none());
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first);
    // A grant's refresh token is not a control-plane session, nor another workspace's grant.
    let session = app
        .client
        .post(format!("{}/auth/refresh", app.base))
        .json(&json!({ "refresh_token": second_refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::UNAUTHORIZED);
    let other = Flow {
        app: &app,
        ws: hexabase_command::WorkspaceId::generate().to_string(),
    };
    let (status, error) = other.refresh(&second_refresh).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Every token handed out is recorded: the code's and the refresh's.
    app.caught_up().await;
    assert_eq!(app.credentials_recorded(&org, &admin).await, 2);

    // A copied refresh token, presented again even a moment after its rotation (kubectl
    // clients refresh one at a time: no grace as for browser tabs), ends the grant for
    // everyone.
    let (status, third) = flow.refresh(&second_refresh).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let (status, error) = flow.refresh(&second_refresh).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, error) = flow.refresh(third["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{error}"
    );
}

#[tokio::test]
async fn codes_go_only_to_members_and_only_with_pkce_to_loopback_redirects() {
    let app = TestApp::spawn().await;
    let (org, ws, admin) = setup(&app).await;
    let flow = Flow {
        app: &app,
        ws: ws.clone(),
    };

    // Nobody signed in: no code.
    let (status, _, _) = flow.visit(None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A bad client or redirect URI is told to the browser, never sent anywhere.
    for (name, value) in [
        ("redirect_uri", "https://attacker.example/cb"),
        ("redirect_uri", "http://localhost.attacker.example/cb"),
        ("redirect_uri", ""),
        ("client_id", "not-a-workspace"),
    ] {
        let (status, query, body) = flow.visit(Some(&admin), &[(name, value)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}={value}: {body}");
        assert!(query.is_empty());
    }
    // Other mistakes go back to the client with the state.
    for (overrides, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("scope", "email")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let (status, query, body) = flow.visit(Some(&admin), &overrides).await;
        assert_eq!(status, StatusCode::FOUND, "{overrides:?}: {body}");
        assert_eq!(query["error"], error, "{overrides:?}");
        assert_eq!(query["state"], "st-1");
        assert!(!query.contains_key("code"));
    }
    // An organization member in none of the workspace's groups, a stranger, and a workspace that
    // does not exist: access denied alike.
    let (_, member) = app.member_of(&org, &admin, "member").await;
    let (_, stranger) = app.user();
    let nowhere = Flow {
        app: &app,
        ws: hexabase_command::WorkspaceId::generate().to_string(),
    };
    for (flow, token) in [(&flow, &member), (&flow, &stranger), (&nowhere, &admin)] {
        let (status, query, body) = flow.visit(Some(token), &[]).await;
        assert_eq!(status, StatusCode::FOUND, "{body}");
        assert_eq!(query["error"], "access_denied");
    }

    // The code is bound to the verifier, the redirect URI and the client; a failed attempt
    // uses it up.
    for form in [
        vec![(
            "code_verifier",
            "another-verifier-that-is-long-enough-0123456789",
        )],
        vec![("redirect_uri", "http://127.0.0.1:18001/callback")],
        vec![(
            "client_id",
            hexabase_command::WorkspaceId::generate().to_string().leak() as &str,
        )],
    ] {
        let code = flow.code_for(&admin).await;
        let mut request: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &ws),
        ];
        for (name, value) in &form {
            request.retain(|(n, _)| n != name);
            request.push((name, value));
        }
        let (status, error) = flow.token(&request, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(error["error"], "invalid_grant", "{form:?}");
        let (status, _) = flow.redeem(&code).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{form:?}: the code survived a failed try"
        );
    }
    // Clients are public: a secret, or no client at all, is refused.
    let code = flow.code_for(&admin).await;
    let (status, error) = flow
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            Some(&format!("{ws}:secret")),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, error) = flow
        .token(&[("grant_type", "password"), ("client_id", &ws)], None)
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn leaving_the_workspace_ends_the_grant_at_the_next_refresh() {
    let app = TestApp::spawn().await;
    let (org, ws, admin) = setup(&app).await;
    let (dev, dev_token) = app.member_of(&org, &admin, "member").await;
    let members_group = app.group_id(&ws, &admin, "WorkspaceMembers").await;
    app.add_to_group(&ws, &members_group, &admin, dev.as_str())
        .await;
    app.caught_up().await;

    let flow = Flow {
        app: &app,
        ws: ws.clone(),
    };
    let code = flow.code_for(&dev_token).await;
    let (status, set) = flow.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        claims(set["id_token"].as_str().unwrap())["groups"],
        json!(["WorkspaceMembers"])
    );

    let left = app
        .delete(
            &format!("/api/v1/workspaces/{ws}/groups/{members_group}/members/{dev}"),
            &admin,
        )
        .await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.text);
    let (status, error) = flow.refresh(set["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["error_description"]
        .as_str()
        .unwrap()
        .contains("no longer a member"));

    // Someone removed from the organization while still in the workspace's groups: no code, and
    // a grant they held ends at its next refresh.
    let (ops, ops_token) = app.member_of(&org, &admin, "member").await;
    app.add_to_group(&ws, &members_group, &admin, ops.as_str())
        .await;
    app.caught_up().await;
    let code = flow.code_for(&ops_token).await;
    let (status, set) = flow.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let removed = app
        .delete(&format!("/api/v1/organizations/{org}/users/{ops}"), &admin)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    app.caught_up().await;
    let (status, query, body) = flow.visit(Some(&ops_token), &[]).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    assert_eq!(query["error"], "access_denied");
    let (status, error) = flow.refresh(set["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_signed_in_user_approves_each_request_on_a_page_of_ours() {
    let app = TestApp::spawn().await;
    let (_, ws, admin) = setup(&app).await;
    let flow = Flow {
        app: &app,
        ws: ws.clone(),
    };
    let (status, query, page) = flow.open(Some(&admin), &flow.authorize_url(&[])).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        query.is_empty(),
        "nothing is sent to the client before the user decides"
    );
    assert!(
        page.contains("Staging") && page.contains(&ws) && page.contains(REDIRECT),
        "{page}"
    );
    assert!(page.contains("WSAdmins, WorkspaceMembers"), "{page}");
    let allow = format!("{}{}", app.base, approval_link(&page, "allow"));
    let deny = format!("{}{}", app.base, approval_link(&page, "deny"));

    // Somebody else cannot answer for the user, even with the page's secret.
    let (_, stranger) = app.user();
    let (status, _, _) = flow.open(Some(&stranger), &allow).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = flow.open(None, &allow).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Denied: back to the client with access_denied, and the answer cannot change afterwards.
    let (status, query, body) = flow.open(Some(&admin), &deny).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "st-1");
    let (status, _, _) = flow.open(Some(&admin), &allow).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Allowed once: a code; the same answer again is no second code.
    let (_, _, page) = flow.open(Some(&admin), &flow.authorize_url(&[])).await;
    let allow = format!("{}{}", app.base, approval_link(&page, "allow"));
    let (status, query, body) = flow.open(Some(&admin), &allow).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    assert!(query.contains_key("code"));
    let (status, _, _) = flow.open(Some(&admin), &allow).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, set) = flow.redeem(&query["code"]).await;
    assert_eq!(status, StatusCode::OK, "{set}");
}

/// The device flow (RFC 8628) for machines without a browser: the machine gets a short code, a
/// member enters it in their signed-in browser and allows it there, and the machine's next poll
/// gets the tokens. Nobody else can answer for them, and every code works once.
#[tokio::test]
async fn a_device_is_signed_in_with_a_code_its_user_allows_in_a_browser() {
    let app = TestApp::spawn().await;
    let (_, ws, admin) = setup(&app).await;
    let (_, stranger) = app.user();
    let flow = Flow {
        app: &app,
        ws: ws.clone(),
    };
    let start = |form: Vec<(&'static str, String)>| {
        let request = app
            .client
            .post(format!("{}/oauth/device_authorization", app.base))
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let poll = |device_code: String| {
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
            ),
            ("device_code", device_code),
            ("client_id", ws.clone()),
        ];
        let request = app
            .client
            .post(format!("{}/oauth/token", app.base))
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    // The machine's request: a workspace as client, `openid` in the scope.
    let (status, body) = start(vec![
        ("client_id", "ws-01900000000070008000000000000000".into()),
        ("scope", "openid".into()),
    ])
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "no such workspace"
    );
    let (status, body) = start(vec![("scope", "openid".into())]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = start(vec![("client_id", ws.clone()), ("scope", "email".into())]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, started) =
        start(vec![("client_id", ws.clone()), ("scope", "openid".into())]).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(
        started["verification_uri"],
        format!("{}/oauth/device", app.base)
    );
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}/oauth/device?user_code={user_code}", app.base)
    );
    assert_eq!(
        (started["interval"].as_u64(), started["expires_in"].as_u64()),
        (Some(5), Some(600))
    );

    // Nobody has answered; polling faster than the interval is told to slow down.
    let (status, body) = poll(device_code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let (status, body) = poll(device_code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("slow_down"))
    );

    // The member gets the approval page: it names the workspace and the code, and is neither
    // cached nor framed. Someone not in the workspace's groups then gets no page of their own,
    // and does not spoil the member's.
    let typed = format!(
        "{}/oauth/device?user_code={}",
        app.base,
        user_code.to_lowercase()
    );
    let (status, _, page) = flow.open(Some(&admin), &typed).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Staging") && page.contains(&user_code),
        "{page}"
    );
    let (status, _, page_of_stranger) = flow.open(Some(&stranger), &typed).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page_of_stranger}");
    let headers = app
        .client
        .get(format!("{}/oauth/device", app.base))
        .header("Cookie", format!("hxb_session={admin}"))
        .send()
        .await
        .unwrap()
        .headers()
        .clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    let allow = format!("{}{}", app.base, approval_link(&page, "allow"));
    assert!(allow.contains("/oauth/device/approve?"), "{allow}");
    let (status, _, _) = flow.open(Some(&stranger), &allow).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, page) = flow.open(Some(&admin), &allow).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Device allowed"), "{page}");
    let (status, _, _) = flow.open(Some(&admin), &allow).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an answer counts once");

    // The next poll gets the workspace token and a refresh token; the device code is used up.
    let (status, tokens) = poll(device_code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], ws.as_str());
    assert!(
        id["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("WSAdmins")),
        "{id}"
    );
    let (status, refreshed) = flow
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, body) = poll(device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Another device, denied: its poll hears so, once.
    let (_, started) = start(vec![("client_id", ws.clone()), ("scope", "openid".into())]).await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let typed = started["verification_uri_complete"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, page) = flow.open(Some(&admin), &typed).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let deny = format!("{}{}", app.base, approval_link(&page, "deny"));
    let (status, _, page) = flow.open(Some(&admin), &deny).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, body) = poll(device_code.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );
    let (status, body) = poll(device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // A code nobody issued is a 404 page with the form again.
    let (status, _, page) = flow
        .open(
            Some(&admin),
            &format!("{}/oauth/device?user_code=BCDF-GHJK", app.base),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("<form"), "{page}");
}

/// The `hexabase` CLI signs in the same way, as client `hexabase-cli`: approved in the signed-in
/// browser, its code (or a device code) becomes a control-plane session whose access token works
/// on the API and whose refresh token rotates; nothing about it names a workspace.
#[tokio::test]
async fn the_cli_gets_a_control_plane_session_through_the_code_and_device_flows() {
    let app = TestApp::spawn().await;
    let (alice, session) = app.user();
    let flow = Flow {
        app: &app,
        ws: "hexabase-cli".into(),
    };
    let (status, _, page) = flow.open(Some(&session), &flow.authorize_url(&[])).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("hexabase CLI"), "{page}");
    let code = flow.code_for(&session).await;
    let (status, tokens) = flow.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.get("/auth/me", access).await;
    // A token of a session: it names the user (who has not signed in through a provider here,
    // so /auth/me has no profile for them), and the API takes it.
    assert_ne!(me.status, StatusCode::UNAUTHORIZED, "{}", me.text);
    let orgs = app.get("/api/v1/organizations", access).await;
    assert_eq!(orgs.status, StatusCode::OK, "{}", orgs.text);
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["aud"], app.settings.auth.audience.as_str());

    // Refreshing rotates; the old refresh token is then refused.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, renewed) = flow
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "hexabase-cli"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"]);
    let renewed_access = renewed["access_token"].as_str().unwrap();
    let orgs = app.get("/api/v1/organizations", renewed_access).await;
    assert_eq!(orgs.status, StatusCode::OK, "{}", orgs.text);

    // The device flow: a code the user enters in their browser, then the session.
    let started = app
        .client
        .post(format!("{}/oauth/device_authorization", app.base))
        .form(&[("client_id", "hexabase-cli"), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    let status = started.status();
    let started: Value = started.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{started}");
    let entered = format!(
        "{}/oauth/device?user_code={}",
        app.base,
        started["user_code"].as_str().unwrap()
    );
    let (status, _, page) = flow.open(Some(&session), &entered).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("hexabase CLI"), "{page}");
    let allow = approval_link(&page, "allow");
    let (status, _, _) = flow
        .open(Some(&session), &format!("{}{allow}", app.base))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, tokens) = flow
        .token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", started["device_code"].as_str().unwrap()),
                ("client_id", "hexabase-cli"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let orgs = app
        .get(
            "/api/v1/organizations",
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(orgs.status, StatusCode::OK, "{}", orgs.text);
}
