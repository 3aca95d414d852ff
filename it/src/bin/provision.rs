//! Provisioning on the `local` driver, measured in one run on one machine: a workspace's
//! `POST …/workspaces` → `Ready` against the floor under it (a bare kube-apiserver started on the
//! same etcd with the driver's flags, to `/readyz`), where the difference goes (the saga log's
//! times), how many workspaces one and two workers provision a minute, and the memory a running
//! workspace holds. Run through `scripts/bench provision`.
//!
//! Prints a short header (`# …`), then one figure per line as `name value unit`; progress goes
//! to stderr. Sizes come from the environment:
//!   BENCH_SAMPLES (5 bare API server starts)  BENCH_WORKSPACES (5, requested one after another)
//!   BENCH_BATCH (10, requested at once, once per worker count)
//!
//! The control plane runs as deployed (its saga and pool settings are the defaults), over HTTPS
//! with a CA of its own, which the workspaces' API servers trust as issuer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase_command::WorkspaceId;
use hexabase_identity::issuer::authentication_configuration;
use hexabase_it::figures::{figure, percentile};
use hexabase_it::peers::pki::{signing_key_pair, Ca};
use hexabase_it::peers::process::{free_port, Peer, TempDir};
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_sagas::driver::local::{etcd_prefix, LocalDriver};
use reqwest::StatusCode;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often a single workspace's status is asked for while it provisions.
const POLL_ONE: Duration = Duration::from_millis(25);
/// How often a batch's statuses are listed (one request for the whole batch).
const POLL_BATCH: Duration = Duration::from_millis(100);
/// How often a bare API server's `/readyz` is asked.
const POLL_READYZ: Duration = Duration::from_millis(20);
/// Longer than this for one workspace or one batch, and the run fails.
const PATIENCE: Duration = Duration::from_secs(600);

struct Args {
    samples: usize,
    workspaces: usize,
    batch: usize,
}

fn args() -> Args {
    let get = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    Args {
        samples: get("BENCH_SAMPLES", 5),
        workspaces: get("BENCH_WORKSPACES", 5),
        batch: get("BENCH_BATCH", 10),
    }
}

/// Progress on stderr, so stdout stays the header and the figures.
fn progress(what: &str) {
    eprintln!("provision: {what}");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn between_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1e3
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The control plane over HTTPS as its issuer URL (as `it/tests/peers/common.rs` runs it for
/// the tests), one worker in-process, with the saga, pool and limiter settings as deployed
/// except the limiter (one client polls from one address). Returns the app and the directory
/// holding its TLS files.
async fn control_plane() -> (TestApp, TempDir) {
    hexabase_it::init_crypto();
    let ca = Ca::new("hexabase-bench-control-plane-ca");
    let serving = ca.server(&[]);
    let tls = TempDir::new("hxb-bench-tls");
    let (cert, key, ca_file) = (
        tls.path().join("tls.crt"),
        tls.path().join("tls.key"),
        tls.path().join("ca.crt"),
    );
    for (path, pem) in [
        (&cert, &serving.cert_pem),
        (&key, &serving.key_pem),
        (&ca_file, &ca.cert_pem),
    ] {
        std::fs::write(path, pem).expect("write the control plane's TLS files");
    }
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("https://127.0.0.1:{}", server.addr.port());
    let server = server.with_tls(hexabase::tls::server_config(&cert, &key).expect("TLS config"));
    let deployed = Settings::load(None).expect("default settings");
    let options = TestAppOptions {
        worker: true,
        max_connections: deployed.database.max_connections,
    };
    let public = issuer.clone();
    let mut app = TestApp::spawn_on(server, options, move |settings| {
        settings.http.public_url = public;
        settings.provisioning.issuer_ca_file = Some(ca_file);
        settings.rate_limit.api_per_window = 0;
        // TestApp makes the sagas impatient for the tests; measure them as they ship.
        settings.sagas.recovery_secs = deployed.sagas.recovery_secs;
        settings.sagas.backoff = deployed.sagas.backoff;
        settings.provisioning.ready_timeout_secs = deployed.provisioning.ready_timeout_secs;
    })
    .await;
    app.base = issuer;
    app.client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("the CA's PEM"),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    (app, tls)
}

/// A workspace's status as its organization's admin reads it (`None` once it is gone).
async fn status(app: &TestApp, token: &str, org: &str, ws: &str) -> Option<(String, String)> {
    let view = app
        .get(
            &format!("/api/v1/organizations/{org}/workspaces/{ws}"),
            token,
        )
        .await;
    if view.status == StatusCode::NOT_FOUND {
        return None;
    }
    assert!(view.status.is_success(), "GET {ws}: {}", view.text);
    let field = |name: &str| view.body[name].as_str().unwrap_or_default().to_owned();
    Some((field("status"), field("status_reason")))
}

/// Poll until the workspace is `Ready`; the instant it was first seen so.
async fn until_ready(app: &TestApp, token: &str, org: &str, ws: &str) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (now, reason) = status(app, token, org, ws).await.unwrap_or_default();
        match now.as_str() {
            "Ready" => return Instant::now(),
            "Failed" => panic!("workspace {ws} failed: {reason}"),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{ws} still {now} after {PATIENCE:?}"
        );
        tokio::time::sleep(POLL_ONE).await;
    }
}

/// Every workspace of `org` with its status, following the list's cursors.
async fn statuses(app: &TestApp, token: &str, org: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/organizations/{org}/workspaces?limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, token).await;
        assert!(page.status.is_success(), "GET {path}: {}", page.text);
        for item in page.body["items"].as_array().into_iter().flatten() {
            if let (Some(id), Some(status)) = (item["id"].as_str(), item["status"].as_str()) {
                all.insert(id.to_owned(), status.to_owned());
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// Delete the workspaces and wait until each is `Deleted` and its API server has exited, so the
/// next phase starts on a machine as empty as this one was.
async fn delete_all(app: &TestApp, token: &str, org: &str, workspaces: &[String]) {
    for ws in workspaces {
        let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
        let deleted = app.delete(&link, token).await;
        assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    }
    let deadline = Instant::now() + PATIENCE;
    for ws in workspaces {
        loop {
            match status(app, token, org, ws).await {
                None => break,
                Some((now, _)) if now == "Deleted" => break,
                Some((now, reason)) => {
                    assert!(now != "Failed", "deleting {ws} failed: {reason}");
                    assert!(Instant::now() < deadline, "{ws} still {now}");
                }
            }
            tokio::time::sleep(POLL_BATCH).await;
        }
        let prefix = apiserver_flag(ws);
        while !pids_with_arg(&prefix).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the API server of {ws} still runs"
            );
            tokio::time::sleep(POLL_BATCH).await;
        }
    }
}

/// `--etcd-prefix=…` of a workspace's API server: what tells its process from the others.
fn apiserver_flag(ws: &str) -> String {
    let ws = WorkspaceId::parse(ws).expect("workspace id");
    format!("--etcd-prefix={}", etcd_prefix(&ws))
}

/// A process's arguments, from `/proc`.
fn command_line(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The processes one of whose arguments is exactly `arg`.
fn pids_with_arg(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| command_line(pid).is_some_and(|args| args.iter().any(|a| a == arg)))
        .collect()
}

/// Resident memory (`VmRSS`) of a process, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user and system) a process has used so far, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, from the third (`state`): utime and stime are the
    // 14th and 15th.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}

/// How the driver starts a workspace's API server, read off one it runs, so the bare API server
/// gets the same program and the same flags (`sagas/src/driver/local/workspace.rs`), with its own
/// directory, port and key prefix in place of the workspace's.
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    /// `<state_dir>/<ws>/`: where the workspace's files are named in the flags.
    files: String,
    state_dir: String,
}

impl Launch {
    fn of(driver: &LocalDriver, ws: &str) -> Self {
        let pids = pids_with_arg(&apiserver_flag(ws));
        assert_eq!(pids.len(), 1, "one API server of {ws}: {pids:?}");
        let mut argv = command_line(pids[0]).expect("the API server's command line");
        let program = PathBuf::from(argv.remove(0));
        let manifest = hexabase_it::peers::binary("kube-apiserver");
        assert_eq!(
            program, manifest,
            "the driver runs the manifest's kube-apiserver"
        );
        let etcd = format!("--etcd-servers={}", driver.etcd_url());
        assert!(
            argv.contains(&etcd),
            "{ws}'s API server is on {etcd}: {argv:?}"
        );
        let state_dir = driver.state_dir().display().to_string();
        Self {
            program,
            args: argv,
            files: format!("{state_dir}/{ws}/"),
            state_dir,
        }
    }

    fn command(&self, dir: &Path, port: u16, prefix: &str) -> Command {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|arg| {
                if arg.starts_with("--secure-port=") {
                    format!("--secure-port={port}")
                } else if arg.starts_with("--etcd-prefix=") {
                    format!("--etcd-prefix={prefix}")
                } else {
                    arg.replace(&self.files, &format!("{}/", dir.display()))
                }
            })
            .collect();
        if let Some(arg) = args.iter().find(|a| a.contains(&self.state_dir)) {
            panic!("the bare API server would use the driver's {arg}");
        }
        let mut command = Command::new(&self.program);
        command.args(args);
        command
    }
}

/// What one bare API server took to become ready.
struct BareStart {
    ms: f64,
    rss_mib: f64,
    cpu_seconds: f64,
}

/// One bare API server, started and stopped again: its spawn-to-`/readyz` time, and its
/// resident memory and the CPU time it had used then. Its files are those `Launch` names, made here the way the driver
/// makes a workspace's: its own CA, serving and admin certificates, service-account keys, and an
/// authentication configuration trusting the control plane for a workspace that does not exist.
async fn bare_apiserver(app: &TestApp, launch: &Launch, driver: &LocalDriver) -> BareStart {
    let dir = TempDir::new("hxb-bench-apiserver");
    let ca = Ca::new("hexabase bench API server CA");
    let serving = ca.server(&[]);
    let admin = ca.client("hexabase-control-plane", "system:masters");
    let (sa_key, sa_pub) = signing_key_pair();
    let issuer_ca = std::fs::read_to_string(
        app.settings
            .provisioning
            .issuer_ca_file
            .as_ref()
            .expect("the issuer's CA file"),
    )
    .expect("read the issuer's CA");
    let authentication =
        authentication_configuration(&app.base, &WorkspaceId::generate(), Some(&issuer_ca));
    let authentication = serde_json::to_string_pretty(&authentication).expect("JSON");
    std::fs::create_dir_all(dir.path().join("certs")).expect("certs directory");
    for (name, contents) in [
        ("ca.crt", &ca.cert_pem),
        ("apiserver.crt", &serving.cert_pem),
        ("apiserver.key", &serving.key_pem),
        ("sa.key", &sa_key),
        ("sa.pub", &sa_pub),
        ("authentication-config.yaml", &authentication),
    ] {
        std::fs::write(dir.path().join(name), contents).expect("write the API server's files");
    }
    let probe = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("CA"))
        .identity(
            reqwest::Identity::from_pem(format!("{}{}", admin.cert_pem, admin.key_pem).as_bytes())
                .expect("admin identity"),
        )
        .timeout(Duration::from_secs(2))
        .build()
        .expect("probe client");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}/readyz");
    let prefix = format!("/hexabase-bench/{}", uuid::Uuid::new_v4().simple());
    let command = launch.command(dir.path(), port, &prefix);

    let started = Instant::now();
    let mut peer = Peer::spawn(
        "bare kube-apiserver",
        command,
        &dir.path().join("apiserver.log"),
    );
    loop {
        if let Err(e) = peer.check_alive() {
            panic!("{e}");
        }
        let ready = match probe.get(&url).send().await {
            Ok(reply) if reply.status().is_success() => {
                reply.text().await.is_ok_and(|body| body.trim() == "ok")
            }
            _ => false,
        };
        if ready {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the bare API server is not ready"
        );
        tokio::time::sleep(POLL_READYZ).await;
    }
    let elapsed = ms(started.elapsed());
    let pids = pids_with_arg(&format!("--etcd-prefix={prefix}"));
    let start = BareStart {
        ms: elapsed,
        rss_mib: pids.iter().filter_map(|&pid| rss_mib(pid)).sum(),
        cpu_seconds: pids.iter().filter_map(|&pid| cpu_seconds(pid)).sum(),
    };
    drop(peer);
    delete_keys(driver, &format!("{prefix}/")).await;
    start
}

/// Remove what the bare API server wrote, through etcd's JSON gateway.
async fn delete_keys(driver: &LocalDriver, prefix: &str) {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let deleted = reqwest::Client::new()
        .post(format!("{}/v3/kv/deleterange", driver.etcd_url()))
        .json(&json!({ "key": BASE64.encode(prefix), "range_end": BASE64.encode(&end) }))
        .send()
        .await
        .expect("ask etcd to delete the bare API server's keys");
    assert!(deleted.status().is_success(), "etcd: {}", deleted.status());
    let left = driver.keys_under(prefix).await.expect("count keys");
    assert_eq!(left, 0, "the bare API server's keys are gone");
}

/// Where one workspace's `POST` → `Ready` went, from the saga log (ms, in order): the request
/// until the saga is recorded, the saga until its first step, each step, the time between
/// steps, and the last step until `Ready` was seen. Also the steps' retries.
async fn phases(
    app: &TestApp,
    ws: &str,
    requested: DateTime<Utc>,
    ready: DateTime<Utc>,
) -> (Vec<(String, f64)>, i64) {
    type Row = (
        DateTime<Utc>,
        String,
        i32,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.created_at, st.name, st.attempts, st.started_at, st.finished_at \
         FROM sagas s JOIN saga_steps st ON st.saga_id = s.id \
         WHERE s.kind = 'workspace.provision' AND s.aggregate_id = $1 ORDER BY st.step",
    )
    .bind(ws)
    .fetch_all(&app.pool)
    .await
    .expect("read the saga log");
    let Some((created, ..)) = rows.first() else {
        panic!("no provisioning saga of {ws}");
    };
    let mut out = vec![
        (
            "request_to_saga".to_owned(),
            between_ms(requested, *created),
        ),
        (
            "saga_to_first_step".to_owned(),
            rows[0].3.map_or(f64::NAN, |s| between_ms(*created, s)),
        ),
    ];
    let (mut between, mut retries, mut last) = (0.0, 0, None::<DateTime<Utc>>);
    for (_, name, attempts, started, finished) in &rows {
        let (Some(started), Some(finished)) = (started, finished) else {
            panic!("step {name} of {ws} did not finish");
        };
        if let Some(previous) = last {
            between += between_ms(previous, *started);
        }
        out.push((
            format!("step_{}", name.replace('-', "_")),
            between_ms(*started, *finished),
        ));
        retries += i64::from(*attempts - 1);
        last = Some(*finished);
    }
    out.push(("between_steps".to_owned(), between));
    out.push((
        "last_step_to_ready".to_owned(),
        last.map_or(f64::NAN, |l| between_ms(l, ready)),
    ));
    (out, retries)
}

/// The `p`-quantile of phase `name` over the workspaces.
fn phase_percentile(all: &[Vec<(String, f64)>], name: &str, p: f64) -> f64 {
    let values = all
        .iter()
        .filter_map(|phases| phases.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
        .collect();
    percentile(&sorted(values), p)
}

/// The p50 of each phase over the workspaces, in the phases' order.
fn phase_medians(all: &[Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let Some(first) = all.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(name, _)| (name.clone(), phase_percentile(all, name, 0.50)))
        .collect()
}

/// A workspace requested and followed until `Ready`: its id, the time it took (ms), its phases.
async fn provision_one(
    app: &TestApp,
    token: &str,
    org: &str,
    name: &str,
) -> (String, f64, Vec<(String, f64)>, i64) {
    let (requested, started) = (Utc::now(), Instant::now());
    let ws = app.create_workspace(token, org, name).await;
    let took = until_ready(app, token, org, &ws).await - started;
    let ready = requested + chrono::Duration::from_std(took).unwrap_or_default();
    let (phases, retries) = phases(app, &ws, requested, ready).await;
    (ws, ms(took), phases, retries)
}

/// What a batch gave: how long until all were `Ready`, each one's time and phases.
struct Batch {
    workspaces: Vec<String>,
    seconds: f64,
    latencies: Vec<f64>,
    phases: Vec<Vec<(String, f64)>>,
}

/// `count` workspaces requested back to back in a new organization (returned too), followed
/// until all are `Ready`.
async fn batch(app: &TestApp, token: &str, count: usize, label: &str) -> (Batch, String) {
    let (org, _) = app.create_org(token, &format!("Batch {label}")).await;
    let started = Instant::now();
    let mut requested = BTreeMap::new();
    for n in 0..count {
        let at = (Utc::now(), Instant::now());
        let ws = app
            .create_workspace(token, &org, &format!("Batch {label} {n}"))
            .await;
        requested.insert(ws, at);
    }
    let mut ready: BTreeMap<String, Instant> = BTreeMap::new();
    while ready.len() < count {
        let seen = statuses(app, token, &org).await;
        let now = Instant::now();
        for ws in requested.keys() {
            match seen.get(ws).map(String::as_str) {
                Some("Ready") => {
                    ready.entry(ws.clone()).or_insert(now);
                }
                Some("Failed") => {
                    let reason = status(app, token, &org, ws).await.unwrap_or_default().1;
                    panic!("workspace {ws} failed: {reason}");
                }
                _ => {}
            }
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{label}: {} of {count} Ready",
            ready.len()
        );
        if ready.len() < count {
            tokio::time::sleep(POLL_BATCH).await;
        }
    }
    let seconds = ready
        .values()
        .map(|at| (*at - started).as_secs_f64())
        .fold(0.0, f64::max);
    let mut latencies = Vec::new();
    let mut all_phases = Vec::new();
    for (ws, (requested_at, requested_instant)) in &requested {
        let took = ready[ws] - *requested_instant;
        latencies.push(ms(took));
        let ready_at = *requested_at + chrono::Duration::from_std(took).unwrap_or_default();
        all_phases.push(phases(app, ws, *requested_at, ready_at).await.0);
    }
    let batch = Batch {
        workspaces: requested.into_keys().collect(),
        seconds,
        latencies: sorted(latencies),
        phases: all_phases,
    };
    (batch, org)
}

fn report_batch(label: &str, batch: &Batch) {
    figure(&format!("batch_{label}_all_ready"), batch.seconds, "s");
    figure(
        &format!("provisioned_per_minute_{label}"),
        batch.workspaces.len() as f64 * 60.0 / batch.seconds,
        "ws/min",
    );
    figure(
        &format!("batch_{label}_ready_p50"),
        percentile(&batch.latencies, 0.50),
        "ms",
    );
    figure(
        &format!("batch_{label}_request_to_saga_max"),
        phase_percentile(&batch.phases, "request_to_saga", 1.0),
        "ms",
    );
    // A saga is recorded once a worker has a free slot for its message (`sagas.concurrency`).
    let waited = batch
        .phases
        .iter()
        .flatten()
        .filter(|(name, value)| name == "request_to_saga" && *value > 1_000.0)
        .count();
    figure(
        &format!("batch_{label}_sagas_recorded_after_1s"),
        waited as f64,
        "count",
    );
    figure(
        &format!("batch_{label}_step_endpoint_p50"),
        phase_percentile(&batch.phases, "step_endpoint", 0.50),
        "ms",
    );
}

/// Resident memory of the API servers of `workspaces` (those found), and how many were found.
fn apiservers_rss(workspaces: &[String]) -> (f64, usize) {
    let pids: Vec<u32> = workspaces
        .iter()
        .flat_map(|ws| pids_with_arg(&apiserver_flag(ws)))
        .collect();
    (
        pids.iter().filter_map(|&pid| rss_mib(pid)).sum(),
        pids.len(),
    )
}

/// `name version` of a peer in `scripts/peers`' manifest.
fn peer_version(name: &str) -> String {
    let manifest = hexabase_it::peers::peers_dir().join("manifest.txt");
    std::fs::read_to_string(manifest)
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some(name)).then(|| parts.next().map(str::to_owned))?
        })
        .unwrap_or_else(|| "unknown".into())
}

fn header(args: &Args) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "# provisioning on the local driver: {cores} cores, {memory_gib:.1} GiB; kube-apiserver {}, etcd {}",
        peer_version("kube-apiserver"),
        peer_version("etcd")
    );
    println!(
        "# BENCH_SAMPLES={} BENCH_WORKSPACES={} BENCH_BATCH={}; load average at start {}",
        args.samples,
        args.workspaces,
        args.batch,
        load.join(" ")
    );
    println!("# p99 of 50 samples or fewer is their maximum");
}

#[tokio::main]
async fn main() {
    let args = args();
    header(&args);
    let (mut app, _tls) = control_plane().await;
    let (_, token) = app.user();

    // Warm-up (not counted): starts etcd, the task consumer and the caches, and gives the
    // running API server whose command line the bare one copies.
    progress("warm-up workspace");
    let (warm_org, _) = app.create_org(&token, "Warm-up").await;
    let warm = app.create_workspace(&token, &warm_org, "Warm-up").await;
    until_ready(&app, &token, &warm_org, &warm).await;
    let driver = LocalDriver::new(app.settings.provisioning.local.clone()).expect("observer");
    let launch = Launch::of(&driver, &warm);
    delete_all(&app, &token, &warm_org, std::slice::from_ref(&warm)).await;

    // Bare API servers and workspaces one after another, taking turns (which goes first
    // alternates), so that what else the machine does falls on both alike. The workspaces stay
    // up until the phase ends.
    let (org, _) = app.create_org(&token, "Sequential").await;
    let (mut bare, mut bare_rss, mut bare_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut provisioned, mut workspaces, mut all_phases, mut retries) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..args.samples.max(args.workspaces) {
        for turn in 0..2 {
            if (turn == 0) == (round % 2 == 0) {
                if round < args.samples {
                    let start = bare_apiserver(&app, &launch, &driver).await;
                    progress(&format!(
                        "bare API server {round}: ready in {:.0} ms",
                        start.ms
                    ));
                    bare.push(start.ms);
                    bare_rss.push(start.rss_mib);
                    bare_cpu.push(start.cpu_seconds);
                }
            } else if round < args.workspaces {
                let (ws, took, phases, tried) =
                    provision_one(&app, &token, &org, &format!("Sequential {round}")).await;
                progress(&format!("workspace {round} ({ws}): Ready in {took:.0} ms"));
                provisioned.push(took);
                workspaces.push(ws);
                all_phases.push(phases);
                retries += tried;
            }
        }
    }
    let (bare, provisioned) = (sorted(bare), sorted(provisioned));
    figure("bare_apiserver_samples", bare.len() as f64, "count");
    figure("bare_apiserver_ready_p50", percentile(&bare, 0.50), "ms");
    figure("bare_apiserver_ready_p99", percentile(&bare, 0.99), "ms");
    figure(
        "bare_apiserver_rss_at_ready_p50",
        percentile(&sorted(bare_rss), 0.50),
        "MiB",
    );
    figure(
        "bare_apiserver_cpu_at_ready_p50",
        percentile(&sorted(bare_cpu), 0.50),
        "s",
    );
    figure("provision_workspaces", provisioned.len() as f64, "count");
    figure("provision_ready_p50", percentile(&provisioned, 0.50), "ms");
    figure("provision_ready_p99", percentile(&provisioned, 0.99), "ms");
    figure(
        "provision_to_bare_p50_ratio",
        percentile(&provisioned, 0.50) / percentile(&bare, 0.50),
        "ratio",
    );
    figure(
        "provision_to_bare_p99_ratio",
        percentile(&provisioned, 0.99) / percentile(&bare, 0.99),
        "ratio",
    );
    for (name, value) in phase_medians(&all_phases) {
        figure(&format!("provision_{name}_p50"), value, "ms");
    }
    figure("provision_step_retries", retries as f64, "count");
    progress("deleting the sequential workspaces");
    delete_all(&app, &token, &org, &workspaces).await;

    // Throughput: a batch requested at once, with the one worker, then with a second.
    figure("batch_size", args.batch as f64, "count");
    progress(&format!("batch of {} with one worker", args.batch));
    let (one, org) = batch(&app, &token, args.batch, "1_worker").await;
    report_batch("1_worker", &one);
    delete_all(&app, &token, &org, &one.workspaces).await;

    app.start_worker_apart();
    progress(&format!("batch of {} with two workers", args.batch));
    let (two, org) = batch(&app, &token, args.batch, "2_workers").await;
    report_batch("2_workers", &two);
    figure(
        "provisioned_per_minute_2_to_1_workers_ratio",
        one.seconds / two.seconds,
        "ratio",
    );

    // Memory of the batch's API servers, once their start-up has settled.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss, counted) = apiservers_rss(&two.workspaces);
    figure("apiserver_rss_counted", counted as f64, "count");
    figure(
        "apiserver_rss_per_workspace",
        rss / counted.max(1) as f64,
        "MiB",
    );
    let etcd_flag = format!("--data-dir={}", driver.state_dir().join("etcd").display());
    let etcd_rss: f64 = pids_with_arg(&etcd_flag)
        .into_iter()
        .filter_map(rss_mib)
        .sum();
    figure("etcd_rss", etcd_rss, "MiB");
    delete_all(&app, &token, &org, &two.workspaces).await;

    // The workers take their etcd with them; then the state directory and the database go.
    let state_dir = driver.state_dir().to_owned();
    drop(driver);
    app.kill_workers().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(state_dir);
    app.db.remove().await;
}
