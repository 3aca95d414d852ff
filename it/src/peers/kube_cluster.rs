//! `KubeCluster`: etcd and a real kube-apiserver (RBAC, its own CA, service-account keys, an
//! admin client certificate), optionally with kube-controller-manager, kube-scheduler and KWOK
//! managing N fake Nodes, so workloads become Ready without containers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use super::binary;
use super::pki::{signing_key_pair, Ca};
use super::process::{answers, free_port, wait_ready, Peer, TempDir};

#[derive(Debug, Clone, Default)]
pub struct KubeClusterOptions {
    /// Also run controller-manager, scheduler and KWOK with this many fake Nodes (0: apiserver
    /// and etcd only).
    pub nodes: usize,
}

/// Who the apiserver trusts for JWT bearer tokens (structured authentication configuration).
#[derive(Debug, Clone)]
pub struct JwtAuthenticator {
    /// `https` issuer URL; must serve `/.well-known/openid-configuration`.
    pub issuer: String,
    pub audiences: Vec<String>,
    /// PEM of the CA that signed the issuer's serving certificate.
    pub certificate_authority: String,
    pub username_claim: String,
    pub username_prefix: String,
    pub groups_claim: String,
    pub groups_prefix: String,
}

pub struct KubeCluster {
    dir: TempDir,
    pub port: u16,
    pub ca_pem: String,
    kubeconfig: PathBuf,
    apiserver_args: Vec<String>,
    apiserver: Mutex<Option<Peer>>,
    _etcd: Peer,
    _helpers: Vec<Peer>,
    /// How long the last (re)start took until `/readyz` answered.
    pub startup: Mutex<Duration>,
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl KubeCluster {
    pub async fn start() -> Self {
        Self::start_with(KubeClusterOptions::default()).await
    }

    pub async fn start_with(options: KubeClusterOptions) -> Self {
        crate::init_crypto();
        let dir = TempDir::new("hxb-kube");
        let d = dir.path().to_owned();

        let (etcd_port, etcd_peer_port) = (free_port(), free_port());
        let mut etcd_cmd = Command::new(binary("etcd"));
        etcd_cmd.args([
            "--name=default".into(),
            format!("--data-dir={}", d.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}"),
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ]);
        let mut etcd = Peer::spawn("etcd", etcd_cmd, &d.join("etcd.log"));
        let (http, health) = (
            reqwest::Client::new(),
            format!("http://127.0.0.1:{etcd_port}/health"),
        );
        wait_ready(&mut etcd, Duration::from_secs(30), || {
            answers(&http, &health)
        })
        .await;

        let ca = Ca::new("hexabase-test-kube-ca");
        let serving = ca.server(&["kubernetes", "kubernetes.default", "kubernetes.default.svc"]);
        let admin = ca.client("hexabase-admin", "system:masters");
        let (sa_key, sa_pub) = signing_key_pair();
        for (name, pem) in [
            ("ca.crt", &ca.cert_pem),
            ("apiserver.crt", &serving.cert_pem),
            ("apiserver.key", &serving.key_pem),
            ("admin.crt", &admin.cert_pem),
            ("admin.key", &admin.key_pem),
            ("sa.key", &sa_key),
            ("sa.pub", &sa_pub),
        ] {
            write(&d.join(name), pem);
        }
        let port = free_port();
        let kubeconfig = d.join("admin.kubeconfig");
        write(
            &kubeconfig,
            &json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{ "name": "test", "cluster": {
                    "server": format!("https://127.0.0.1:{port}"),
                    "certificate-authority": d.join("ca.crt"),
                }}],
                "users": [{ "name": "admin", "user": {
                    "client-certificate": d.join("admin.crt"),
                    "client-key": d.join("admin.key"),
                }}],
                "contexts": [{ "name": "admin", "context": { "cluster": "test", "user": "admin" } }],
                "current-context": "admin",
            })
            .to_string(),
        );

        let p = |name: &str| d.join(name).display().to_string();
        let mut apiserver_args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--endpoint-reconciler-type=none".into(),
            "--allow-privileged=true".into(),
            format!("--cert-dir={}", p("certs")),
        ];
        if options.nodes == 0 {
            // Without controller-manager no token controller fills service-account secrets.
            apiserver_args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        let cluster = Self {
            port,
            ca_pem: ca.cert_pem.clone(),
            kubeconfig,
            apiserver_args,
            apiserver: Mutex::new(None),
            _etcd: etcd,
            _helpers: Vec::new(),
            startup: Mutex::new(Duration::ZERO),
            dir,
        };
        cluster.start_apiserver(None).await;
        if options.nodes == 0 {
            return cluster;
        }
        cluster
            .with_nodes(options.nodes, &p("sa.key"), &p("ca.crt"))
            .await
    }

    async fn with_nodes(mut self, nodes: usize, sa_key: &str, ca: &str) -> Self {
        let d = self.dir.path().to_owned();
        let kubeconfig = self.kubeconfig.display().to_string();
        // What controller-manager and scheduler share: the admin identity, no leader election,
        // their own serving port on loopback.
        let component = [
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
        ];
        let mut cm = Command::new(binary("kube-controller-manager"));
        cm.args(&component)
            .arg(format!("--secure-port={}", free_port()));
        cm.args([
            format!("--service-account-private-key-file={sa_key}"),
            format!("--root-ca-file={ca}"),
            "--use-service-account-credentials=false".into(),
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service".into(),
        ]);
        self._helpers.push(Peer::spawn(
            "kube-controller-manager",
            cm,
            &d.join("controller-manager.log"),
        ));
        let mut scheduler = Command::new(binary("kube-scheduler"));
        scheduler
            .args(&component)
            .arg(format!("--secure-port={}", free_port()));
        self._helpers.push(Peer::spawn(
            "kube-scheduler",
            scheduler,
            &d.join("scheduler.log"),
        ));
        // KWOK's "fast" stages: Nodes become Ready with heartbeats, Pods Running and Ready.
        let stages = binary("kwok-stages");
        let config: Vec<String> = [
            "node/fast/node-initialize.yaml",
            "node/heartbeat/node-heartbeat.yaml",
            "pod/fast/pod-ready.yaml",
            "pod/fast/pod-complete.yaml",
            "pod/fast/pod-delete.yaml",
        ]
        .iter()
        .map(|stage| {
            std::fs::read_to_string(stages.join(stage))
                .unwrap_or_else(|e| panic!("KWOK stage {stage}: {e}"))
        })
        .collect();
        let kwok_config = d.join("kwok.yaml");
        write(&kwok_config, &config.join("\n---\n"));
        let mut kwok = Command::new(binary("kwok"));
        kwok.args([
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", kwok_config.display()),
            "--manage-all-nodes=true".into(),
            format!("--server-address=127.0.0.1:{}", free_port()),
            "--node-ip=127.0.0.1".into(),
        ]);
        self._helpers
            .push(Peer::spawn("kwok", kwok, &d.join("kwok.log")));

        let client = self.client().await;
        let api: Api<Node> = Api::all(client);
        for i in 0..nodes {
            let node: Node = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": format!("kwok-node-{i}"),
                    "labels": { "type": "kwok", "kubernetes.io/hostname": format!("kwok-node-{i}") },
                    "annotations": { "kwok.x-k8s.io/node": "fake" },
                },
                "spec": { "taints": [] },
                "status": {
                    "allocatable": { "cpu": "32", "memory": "256Gi", "ephemeral-storage": "500Gi", "pods": "110" },
                    "capacity": { "cpu": "32", "memory": "256Gi", "ephemeral-storage": "500Gi", "pods": "110" },
                },
            }))
            .expect("node manifest");
            api.create(&PostParams::default(), &node)
                .await
                .expect("create fake node");
        }
        self
    }

    async fn start_apiserver(&self, authentication_config: Option<&Path>) {
        let mut command = Command::new(binary("kube-apiserver"));
        command.args(&self.apiserver_args);
        if let Some(config) = authentication_config {
            command.arg(format!("--authentication-config={}", config.display()));
        }
        let started = Instant::now();
        let mut apiserver = Peer::spawn(
            "kube-apiserver",
            command,
            &self.dir.path().join("apiserver.log"),
        );
        let client = self.client().await;
        wait_ready(&mut apiserver, Duration::from_secs(90), || async {
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("request");
            client
                .request_text(request)
                .await
                .is_ok_and(|body| body.trim() == "ok")
        })
        .await;
        *self.startup.lock().expect("lock") = started.elapsed();
        *self.apiserver.lock().expect("lock") = Some(apiserver);
    }

    /// Restart the apiserver trusting `jwt` for bearer tokens (`--authentication-config`).
    pub async fn restart_with_authentication(&self, jwt: &JwtAuthenticator) {
        let config = json!({
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthenticationConfiguration",
            "jwt": [{
                "issuer": {
                    "url": jwt.issuer,
                    "audiences": jwt.audiences,
                    "audienceMatchPolicy": "MatchAny",
                    "certificateAuthority": jwt.certificate_authority,
                },
                "claimMappings": {
                    "username": { "claim": jwt.username_claim, "prefix": jwt.username_prefix },
                    "groups": { "claim": jwt.groups_claim, "prefix": jwt.groups_prefix },
                },
            }],
        });
        self.restart_with_authentication_config(&config).await;
    }

    /// Restart the apiserver with this `AuthenticationConfiguration` (JSON is YAML).
    pub async fn restart_with_authentication_config(&self, config: &serde_json::Value) {
        let path = self.dir.path().join("authentication-config.yaml");
        write(&path, &config.to_string());
        if let Some(mut old) = self.apiserver.lock().expect("lock").take() {
            old.stop();
        }
        self.start_apiserver(Some(&path)).await;
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A fresh admin client (clients are bound to the runtime that made them).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kube config");
        kube::Client::try_from(config).expect("kube client")
    }

    /// A client that authenticates with a bearer token only (no client certificate).
    pub async fn client_with_token(&self, token: &str) -> kube::Client {
        let mut config = kube::Config::new(self.server_url().parse().expect("url"));
        config.root_cert = Some(vec![pem_to_der(&self.ca_pem)]);
        config.auth_info.token = Some(token.to_owned().into());
        kube::Client::try_from(config).expect("kube client")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of every peer's log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for name in [
            "apiserver",
            "controller-manager",
            "scheduler",
            "kwok",
            "etcd",
        ] {
            let tail = super::process::log_tail(&self.dir.path().join(format!("{name}.log")), 15);
            if !tail.is_empty() {
                out.push_str(&format!("--- {name}.log\n{tail}\n"));
            }
        }
        out
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}
