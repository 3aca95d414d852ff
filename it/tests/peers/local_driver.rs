//! The `local` cluster driver against the real programs: kube-apiserver per workspace on one
//! shared etcd, supervised, shared by two drivers as two workers would share it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hexabase_command::{OrganizationId, WorkspaceId};
use hexabase_identity::issuer::authentication_configuration;
use hexabase_it::peers::pki::Ca;
use hexabase_it::peers::process::TempDir;
use hexabase_sagas::driver::local::{etcd_prefix, LocalDriver, LocalDriverSettings};
use hexabase_sagas::driver::{ClusterDriver, ClusterSpec, DriverError};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const READY: Duration = Duration::from_secs(90);

/// A spec trusting an issuer that is down (the API server starts anyway and retries discovery).
fn spec(workspace: &WorkspaceId) -> ClusterSpec {
    let ca = Ca::new("hexabase-test-issuer-ca");
    ClusterSpec {
        workspace: workspace.clone(),
        organization: OrganizationId::generate(),
        authentication: authentication_configuration(
            "https://127.0.0.1:1",
            workspace,
            Some(&ca.cert_pem),
        ),
        quota: hexabase_it::peers::test_quota(),
        dedicated: false,
    }
}

fn driver(dir: &TempDir) -> Arc<LocalDriver> {
    hexabase_it::init_crypto();
    Arc::new(LocalDriver::new(LocalDriverSettings::in_dir(dir.path())).unwrap())
}

/// A worker's supervision: the token stops it, the handle says when it has.
fn supervise(driver: &Arc<LocalDriver>) -> (CancellationToken, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (driver, shutdown) = (driver.clone(), shutdown.clone());
        async move { driver.supervise(shutdown).await }
    });
    (shutdown, task)
}

async fn namespaces(driver: &LocalDriver, workspace: &WorkspaceId) -> Vec<String> {
    let api: Api<Namespace> = Api::all(driver.admin_client(workspace).await.unwrap());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

async fn config_maps(driver: &LocalDriver, workspace: &WorkspaceId) -> Api<ConfigMap> {
    Api::namespaced(driver.admin_client(workspace).await.unwrap(), "default")
}

async fn put_config_map(driver: &LocalDriver, workspace: &WorkspaceId, name: &str) {
    let map: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": name },
        "data": { "kept": "yes" },
    }))
    .unwrap();
    config_maps(driver, workspace)
        .await
        .create(&PostParams::default(), &map)
        .await
        .unwrap();
}

/// The live processes with `arg` among their arguments (what really runs, whoever started it).
fn processes_with(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .count()
}

/// Whether `pid` has a file named `name` open (a lock a child must not inherit).
fn has_open(pid: u32, name: &str) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.file_name().is_some_and(|n| n == name))
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

fn port_of(server: &str) -> u16 {
    server.rsplit(':').next().unwrap().parse().unwrap()
}

/// Poll `probe` for up to `timeout`.
async fn eventually(timeout: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !probe() {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn clusters_are_created_once_survive_a_crash_and_are_deleted_with_their_data() {
    let dir = TempDir::new("hxb-local-driver");
    let driver = driver(&dir);
    let (shutdown, supervisor) = supervise(&driver);
    let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
    assert_eq!(
        driver.wait_ready(&a, READY).await,
        Err(DriverError::NotFound(a.to_string()))
    );

    let started = Instant::now();
    driver.create(&spec(&a)).await.unwrap();
    driver.wait_ready(&a, READY).await.unwrap();
    eprintln!(
        "local driver: create → ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let names = namespaces(&driver, &a).await;
    assert!(names.iter().any(|n| n == "default"), "{names:?}");

    // Creating again changes nothing: same port, same CA, same process.
    let endpoint = driver.endpoint(&a).await.unwrap();
    let pid = driver.apiserver_pid(&a).unwrap();
    driver.create(&spec(&a)).await.unwrap();
    assert_eq!(driver.endpoint(&a).await.unwrap(), endpoint);
    assert_eq!(driver.apiserver_pid(&a), Some(pid));
    eprintln!("local driver: kube-apiserver VmRSS {:.0} MiB", rss_mib(pid));

    driver.create(&spec(&b)).await.unwrap();
    let (ready_a, ready_b) =
        tokio::join!(driver.wait_ready(&a, READY), driver.wait_ready(&b, READY));
    ready_a.unwrap();
    ready_b.unwrap();
    let endpoint_b = driver.endpoint(&b).await.unwrap();
    assert_ne!(port_of(&endpoint_b.server), port_of(&endpoint.server));
    assert_ne!(endpoint_b.ca_pem, endpoint.ca_pem);

    // A crash: the supervisor restarts the API server on its port, on its data.
    put_config_map(&driver, &a, "survivor").await;
    // SAFETY: signalling a child this test's driver started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    eventually(
        Duration::from_secs(10),
        "restarted by the supervisor",
        || driver.apiserver_pid(&a).is_some_and(|p| p != pid),
    )
    .await;
    driver.wait_ready(&a, READY).await.unwrap();
    eprintln!(
        "local driver: SIGKILL → ready again in {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(driver.endpoint(&a).await.unwrap(), endpoint);
    let map = config_maps(&driver, &a)
        .await
        .get("survivor")
        .await
        .unwrap();
    assert_eq!(map.data.unwrap()["kept"], "yes");

    // Delete: process, port, keys and directory gone; twice is fine; the neighbour is untouched.
    let prefix = format!("{}/", etcd_prefix(&a));
    assert!(driver.keys_under(&prefix).await.unwrap() > 0);
    driver.delete(&a).await.unwrap();
    driver.delete(&a).await.unwrap();
    assert_eq!(
        driver.wait_ready(&a, READY).await,
        Err(DriverError::NotFound(a.to_string()))
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port_of(&endpoint.server))).is_err(),
        "the deleted cluster's port still answers"
    );
    assert_eq!(driver.keys_under(&prefix).await.unwrap(), 0);
    assert!(!driver.state_dir().join(a.as_str()).exists());
    assert!(
        driver
            .keys_under(&format!("{}/", etcd_prefix(&b)))
            .await
            .unwrap()
            > 0
    );
    assert!(namespaces(&driver, &b).await.iter().any(|n| n == "default"));
    // A supervision tick later nothing came back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!driver.state_dir().join(a.as_str()).exists());
    assert_eq!(
        processes_with(&format!("--etcd-prefix={}", etcd_prefix(&a))),
        0
    );

    shutdown.cancel();
    supervisor.await.unwrap();
    assert_eq!(
        processes_with(&format!("--etcd-prefix={}", etcd_prefix(&b))),
        0
    );
}

#[tokio::test]
async fn two_workers_on_one_state_dir_run_each_cluster_once_and_take_over_from_each_other() {
    let dir = TempDir::new("hxb-local-driver");
    let first = driver(&dir);
    let second = driver(&dir);
    let (first_shutdown, first_supervisor) = supervise(&first);
    let (second_shutdown, second_supervisor) = supervise(&second);
    let ws = WorkspaceId::generate();
    let apiserver_arg = format!("--etcd-prefix={}", etcd_prefix(&ws));
    let etcd_arg = format!("--data-dir={}", first.state_dir().join("etcd").display());

    first.create(&spec(&ws)).await.unwrap();
    first.wait_ready(&ws, READY).await.unwrap();
    // The other worker reaches it too, without starting its own.
    second.wait_ready(&ws, READY).await.unwrap();
    put_config_map(&second, &ws, "shared").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(first.apiserver_pid(&ws).is_some() && first.etcd_pid().is_some());
    assert!(second.apiserver_pid(&ws).is_none() && second.etcd_pid().is_none());
    assert_eq!(processes_with(&apiserver_arg), 1);
    assert_eq!(processes_with(&etcd_arg), 1);
    let (apiserver, etcd) = (first.apiserver_pid(&ws).unwrap(), first.etcd_pid().unwrap());
    assert!(!has_open(apiserver, "lock") && !has_open(etcd, "etcd.lock"));

    // The first worker stops: the second one's supervisor brings etcd and the cluster back.
    let endpoint = first.endpoint(&ws).await.unwrap();
    first_shutdown.cancel();
    first_supervisor.await.unwrap();
    drop(first);
    let stopped = Instant::now();
    eventually(Duration::from_secs(10), "taken over", || {
        second.apiserver_pid(&ws).is_some() && second.etcd_pid().is_some()
    })
    .await;
    second.wait_ready(&ws, READY).await.unwrap();
    eprintln!(
        "local driver: takeover (etcd and API server) ready in {:.1} s",
        stopped.elapsed().as_secs_f64()
    );
    assert_eq!(second.endpoint(&ws).await.unwrap(), endpoint);
    assert!(config_maps(&second, &ws).await.get("shared").await.is_ok());
    assert_eq!(processes_with(&apiserver_arg), 1);
    assert_eq!(processes_with(&etcd_arg), 1);

    second.delete(&ws).await.unwrap();
    second_shutdown.cancel();
    second_supervisor.await.unwrap();
    assert_eq!(processes_with(&etcd_arg), 0);
}

#[tokio::test]
async fn an_api_server_that_refuses_its_configuration_fails_for_good() {
    let dir = TempDir::new("hxb-local-driver");
    let driver = driver(&dir);
    let ws = WorkspaceId::generate();
    let mut spec = spec(&ws);
    // kube-apiserver accepts https issuers only.
    spec.authentication = authentication_configuration("http://127.0.0.1:1", &ws, None);
    driver.create(&spec).await.unwrap();
    let started = Instant::now();
    let error = driver
        .wait_ready(&ws, Duration::from_secs(120))
        .await
        .unwrap_err();
    eprintln!(
        "local driver: crash loop recognised in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let DriverError::Permanent(message) = error else {
        panic!("expected a permanent error, got {error:?}");
    };
    assert!(message.contains("https"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(60));
    driver.delete(&ws).await.unwrap();
    driver.shut_down();
}

#[tokio::test]
async fn a_suspended_cluster_stops_its_api_server_and_resumes_with_its_data_and_endpoint() {
    let dir = TempDir::new("hxb-local-driver");
    let driver = driver(&dir);
    let (shutdown, supervisor) = supervise(&driver);
    let ws = WorkspaceId::generate();
    driver.create(&spec(&ws)).await.unwrap();
    driver.wait_ready(&ws, READY).await.unwrap();
    let endpoint = driver.endpoint(&ws).await.unwrap();
    put_config_map(&driver, &ws, "kept-while-suspended").await;
    let pid = driver.apiserver_pid(&ws).unwrap();

    driver.suspend(&ws).await.unwrap();
    assert_eq!(driver.apiserver_pid(&ws), None);
    let port = port_of(&endpoint.server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the suspended API server's port"
    );
    // Supervision does not bring it back, and suspending again changes nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(driver.apiserver_pid(&ws), None);
    assert_eq!(processes_with(&format!("--secure-port={port}")), 0);
    driver.suspend(&ws).await.unwrap();
    assert!(matches!(
        driver.wait_ready(&ws, READY).await,
        Err(DriverError::Transient(m)) if m.contains("suspended")
    ));

    driver.resume(&ws).await.unwrap();
    driver.resume(&ws).await.unwrap();
    driver.wait_ready(&ws, READY).await.unwrap();
    assert_ne!(driver.apiserver_pid(&ws), Some(pid), "a new API server");
    assert_eq!(driver.endpoint(&ws).await.unwrap(), endpoint);
    config_maps(&driver, &ws)
        .await
        .get("kept-while-suspended")
        .await
        .expect("the data is kept");

    driver.delete(&ws).await.unwrap();
    shutdown.cancel();
    supervisor.await.unwrap();
}
