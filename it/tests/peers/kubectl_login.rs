//! Signing kubectl in through the control plane's authorization code flow, against a real
//! kube-apiserver: `hexabase login` (loopback + PKCE) feeding the `hexabase kubectl-credential`
//! plugin, and the independent `kubectl oidc-login` plugin (kubelogin, which checks discovery,
//! the JWKS and every ID token with the go-oidc library) with issuer = the control plane and
//! client id = the workspace id.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hexabase_command::WorkspaceId;
use hexabase_it::peers::KubeCluster;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use super::common::{hexabase_binary, https_app_without_clusters, trusting_cluster};

use hexabase_it::browser::SignedInBrowser as Browser;

use hexabase_it::binary::url_on_stderr;

/// A HOME whose kubeconfig runs `hexabase kubectl-credential` for `ws` against `cluster`.
fn plugin_home(server: &str, ws: &str, cluster: &KubeCluster, ca_pem: &str) -> PathBuf {
    let plugin = json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "hexabase",
        "args": ["kubectl-credential", "--server", server, "--workspace", ws],
        "interactiveMode": "Never",
    });
    home_dir(ca_pem, &kubeconfig(cluster, plugin))
}

/// `hexabase login` for `ws` with `home` as HOME (its grant goes there), in `mode`
/// (`--no-browser` or `--device`); its stderr is piped.
fn hexabase_login(server: &str, ws: &str, home: &Path, mode: &str) -> Child {
    Command::new(hexabase_binary())
        .args([
            "login",
            "--server",
            server,
            "--workspace",
            ws,
            mode,
            "--timeout",
            "60",
        ])
        .env("HOME", home)
        .env("HEXABASE_CA_FILE", home.join("ca.crt"))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn kubeconfig(cluster: &KubeCluster, exec: Value) -> Value {
    use base64::Engine;
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "ws", "cluster": {
            "server": cluster.server_url(),
            "certificate-authority-data":
                base64::engine::general_purpose::STANDARD.encode(cluster.ca_pem.as_bytes()),
        }}],
        "users": [{ "name": "user", "user": { "exec": exec } }],
        "contexts": [{ "name": "ws", "context": { "cluster": "ws", "user": "user" } }],
        "current-context": "ws",
    })
}

fn kubectl(home: &Path, args: &[&str]) -> Command {
    let hexabase = hexabase_binary();
    let path = format!(
        "{}:{}",
        hexabase.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(hexabase_it::peers::binary("kubectl"));
    command
        .args(args)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("HEXABASE_TOKEN")
        .env("HEXABASE_CA_FILE", home.join("ca.crt"))
        .kill_on_drop(true);
    command
}

async fn run(mut command: Command) -> (bool, String) {
    let output = command.output().await.unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn home_dir(ca_pem: &str, kubeconfig: &Value) -> PathBuf {
    let home = std::env::temp_dir().join(format!("hxb-login-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("ca.crt"), ca_pem).unwrap();
    std::fs::write(home.join("kubeconfig"), kubeconfig.to_string()).unwrap();
    home
}

#[tokio::test]
async fn kubectl_signs_in_with_hexabase_login_and_with_kubelogin() {
    let (app, ca_pem) = https_app_without_clusters().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    let (dev, dev_token) = app.member_of(&org, &admin, "member").await;
    let members_group = app.group_id(&ws, &admin, "WorkspaceMembers").await;
    app.add_to_group(&ws, &members_group, &admin, dev.as_str())
        .await;
    app.caught_up().await;

    let cluster = trusting_cluster(&app, &ws, &ca_pem).await;
    let ws_id = WorkspaceId::parse(&ws).unwrap();
    let browser = |session: &str| Browser {
        client: app.client.clone(),
        control_plane: app.base.clone(),
        session: session.to_owned(),
    };

    // `hexabase login`: the URL it prints, opened in the admin's signed-in browser, comes back
    // to its loopback listener; the grant it keeps lets the plugin get tokens on its own.
    let home = plugin_home(&app.base, &ws, &cluster, &ca_pem);
    let mut login = hexabase_login(&app.base, &ws, &home, "--no-browser");
    let (url, rest) = url_on_stderr(&mut login).await;
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", app.base)),
        "{url}"
    );
    let (status, page) = browser(&admin).visit(&url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait())
        .await
        .unwrap()
        .unwrap();
    let said = rest.await.unwrap();
    assert!(status.success(), "hexabase login: {said}");
    assert!(said.contains("WSAdmins"), "{said}");
    let grant_file = home.join(".hexabase/grants").join(format!("{ws}.json"));
    let grant = std::fs::read_to_string(&grant_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&grant_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the grant is readable by others: {mode:o}");
    }

    let (ok, out) = run(kubectl(&home, &["create", "namespace", "signed-in"])).await;
    assert!(ok, "kubectl as WSAdmin: {out}\n{}", cluster.diagnostics());
    // Once the cached token is gone, the plugin refreshes the grant (rotating its token).
    std::fs::remove_file(home.join(".hexabase/cache").join(format!("{ws}.json"))).unwrap();
    let (ok, out) = run(kubectl(
        &home,
        &["get", "namespace", "signed-in", "-o", "name"],
    ))
    .await;
    assert!(ok, "kubectl after a refresh: {out}");
    let rotated = std::fs::read_to_string(&grant_file).unwrap();
    assert_ne!(grant, rotated, "the refresh token was rotated");
    std::fs::remove_file(home.join(".hexabase/cache").join(format!("{ws}.json"))).unwrap();
    let (ok, out) = run(kubectl(
        &home,
        &["get", "namespace", "signed-in", "-o", "name"],
    ))
    .await;
    assert!(ok, "kubectl after a second refresh: {out}");
    // The first refresh token, replayed elsewhere after its successors were used, is refused
    // and ends the grant; the plugin then says to sign in again.
    let old: Value = serde_json::from_str(&grant).unwrap();
    let replay = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old["refresh_token"].as_str().unwrap()),
            ("client_id", ws.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    std::fs::remove_file(home.join(".hexabase/cache").join(format!("{ws}.json"))).unwrap();
    let (ok, out) = run(kubectl(&home, &["get", "namespaces"])).await;
    assert!(!ok);
    assert!(out.contains("hexabase login"), "{out}");

    // kubelogin, with the workspace member's browser: discovery, the authorization code flow
    // with PKCE, and the ID token are checked by go-oidc, not by our code.
    let kubelogin = hexabase_it::peers::binary("kubelogin");
    let cache_dir =
        std::env::temp_dir().join(format!("hxb-kubelogin-{}", uuid::Uuid::new_v4().simple()));
    let get_token = |extra: &[&str]| {
        let mut args = vec![
            "get-token".to_owned(),
            format!("--oidc-issuer-url={}", app.base),
            format!("--oidc-client-id={ws}"),
            "--skip-open-browser".to_owned(),
            "--listen-address=127.0.0.1:0".to_owned(),
            format!("--token-cache-dir={}", cache_dir.display()),
            "--authentication-timeout-sec=60".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let kubelogin_home = home_dir(&ca_pem, &json!({}));
    // kubelogin trusts the control plane's CA instead of the system roots.
    let ca_flag = format!(
        "--certificate-authority={}",
        kubelogin_home.join("ca.crt").display()
    );
    let config = kubeconfig(
        &cluster,
        json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": kubelogin,
            "args": get_token(&[&ca_flag]),
            "interactiveMode": "Never",
        }),
    );
    std::fs::write(kubelogin_home.join("kubeconfig"), config.to_string()).unwrap();
    let mut listing = kubectl(&kubelogin_home, &["get", "namespaces", "-o", "name"]);
    listing.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut listing = listing.spawn().unwrap();
    let (url, rest) = url_on_stderr(&mut listing).await;
    assert!(url.starts_with("http://localhost:"), "{url}");
    let (status, page) = browser(&dev_token).visit(&url).await;
    assert!(status.is_success(), "{status}: {page}");
    let output = tokio::time::timeout(Duration::from_secs(60), listing.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = rest.await.unwrap();
    assert!(
        output.status.success(),
        "kubectl with kubelogin: {said}\n{}",
        cluster.diagnostics()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("namespace/signed-in"));
    // A WorkspaceMembers-only user lists but cannot create.
    let (ok, out) = run(kubectl(
        &kubelogin_home,
        &["create", "namespace", "not-allowed"],
    ))
    .await;
    assert!(!ok && out.contains("forbidden"), "{out}");

    // kubelogin's refresh: a new ID token from the refresh token, no browser involved.
    let mut refresh = Command::new(&kubelogin);
    refresh
        .args(get_token(&[
            "--force-refresh",
            &ca_flag,
            "--authentication-timeout-sec=5",
        ]))
        .env(
            "KUBERNETES_EXEC_INFO",
            json!({
                "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "spec": { "interactive": false },
            })
            .to_string(),
        )
        .kill_on_drop(true);
    let refreshed = refresh.output().await.unwrap();
    assert!(
        refreshed.status.success(),
        "kubelogin --force-refresh: {}",
        String::from_utf8_lossy(&refreshed.stderr)
    );
    let credential: Value = serde_json::from_slice(&refreshed.stdout).unwrap();
    let token = credential["status"]["token"].as_str().unwrap();
    let claims = app.state.issuer.verify(token, &ws_id).unwrap();
    assert_eq!(claims.sub, dev.as_str());
    assert_eq!(claims.groups, ["WorkspaceMembers"]);

    // Every token went on record: the admin's three (sign-in, two refreshes), the member's two.
    app.caught_up().await;
    assert_eq!(app.credentials_recorded(&org, &admin).await, 5);
}

/// `hexabase login --device` on a machine without a browser: it shows a code; the user allows
/// it from a browser elsewhere; the grant it keeps signs kubectl in.
#[tokio::test]
async fn kubectl_signs_in_on_a_machine_without_a_browser_with_a_device_code() {
    let (app, ca_pem) = https_app_without_clusters().await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;
    let cluster = trusting_cluster(&app, &ws, &ca_pem).await;
    let home = plugin_home(&app.base, &ws, &cluster, &ca_pem);
    let mut login = hexabase_login(&app.base, &ws, &home, "--device");
    let (url, rest) = url_on_stderr(&mut login).await;
    assert!(
        url.starts_with(&format!("{}/oauth/device?user_code=", app.base)),
        "{url}"
    );
    // The admin, in a browser somewhere else, allows the code.
    let browser = Browser {
        client: app.client.clone(),
        control_plane: app.base.clone(),
        session: admin.clone(),
    };
    let (status, page) = browser.visit(&url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Device allowed"), "{page}");
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait())
        .await
        .unwrap()
        .unwrap();
    let said = rest.await.unwrap();
    assert!(status.success(), "hexabase login --device: {said}");
    assert!(said.contains("WSAdmins"), "{said}");
    let (ok, out) = run(kubectl(&home, &["create", "namespace", "from-a-device"])).await;
    assert!(
        ok,
        "kubectl after a device login: {out}\n{}",
        cluster.diagnostics()
    );

    // kubelogin's device-code grant (its own RFC 8628 client; go-oidc checks the ID token).
    let cache_dir =
        std::env::temp_dir().join(format!("hxb-kubelogin-{}", uuid::Uuid::new_v4().simple()));
    let mut kubelogin = Command::new(hexabase_it::peers::binary("kubelogin"));
    kubelogin
        .args([
            "get-token".to_owned(),
            format!("--oidc-issuer-url={}", app.base),
            format!("--oidc-client-id={ws}"),
            "--grant-type=device-code".to_owned(),
            "--skip-open-browser".to_owned(),
            format!("--token-cache-dir={}", cache_dir.display()),
            format!("--certificate-authority={}", home.join("ca.crt").display()),
            "--authentication-timeout-sec=60".to_owned(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut kubelogin = kubelogin.spawn().unwrap();
    let (url, rest) = url_on_stderr(&mut kubelogin).await;
    assert!(
        url.starts_with(&format!("{}/oauth/device?user_code=", app.base)),
        "{url}"
    );
    let (status, page) = browser.visit(&url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let output = tokio::time::timeout(Duration::from_secs(60), kubelogin.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = rest.await.unwrap();
    assert!(output.status.success(), "kubelogin device-code: {said}");
    let credential: Value = serde_json::from_slice(&output.stdout).unwrap();
    let token = credential["status"]["token"].as_str().unwrap();
    let claims = app
        .state
        .issuer
        .verify(token, &WorkspaceId::parse(&ws).unwrap())
        .unwrap();
    assert!(claims.groups.contains(&"WSAdmins".to_owned()), "{claims:?}");
}
