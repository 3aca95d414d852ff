//! Crash: two real `hexabase worker` processes provision 20 workspaces on one machine (one
//! shared state directory, one shared etcd) while they are killed with SIGKILL at random
//! moments — one of them, and at least once both — and started again. Afterwards every
//! workspace is `Ready`; each was provisioned by one saga that recorded each of its events once;
//! no saga is left running, unwinding or failed; each workspace runs exactly one API server,
//! which answers `/readyz` and holds its managed ClusterRoleBindings once; and once the workers
//! are gone, so are their children.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hexabase::config::Settings;
use hexabase_command::WorkspaceId;
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_sagas::driver::local::{etcd_prefix, LocalDriver};
use hexabase_sagas::driver::ClusterDriver;
use hexabase_sagas::workspace::objects::{selector, ADMINS_BINDING, MEMBERS_BINDING};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, ListParams};
use secrecy::ExposeSecret;

use super::common::{hexabase_binary, https_app_with_options, pids_with_argument};

const WORKSPACES: usize = 20;
/// From the first request to every workspace `Ready` (2 cores, 20 API servers, the kills).
const ALL_READY: Duration = Duration::from_secs(360);

/// A number in `range` from a fresh v4 UUID's random bits (no seedable generator among this
/// crate's dependencies; the schedule each run drew is printed instead).
fn random(range: std::ops::Range<u64>) -> u64 {
    let span = u128::from(range.end - range.start);
    range.start + (uuid::Uuid::new_v4().as_u128() % span) as u64
}

/// The settings a `hexabase worker` process of `settings`' control plane is started with, as
/// `HEXABASE_…` variables.
fn worker_env(settings: &Settings) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    let sagas = &settings.sagas;
    let mut env: Vec<(&str, String)> = vec![
        (
            "DATABASE__URL",
            settings.database.url.expose_secret().to_owned(),
        ),
        ("DATABASE__MAX_CONNECTIONS", "12".into()),
        ("NATS__URL", settings.nats.url.clone()),
        ("NATS__STREAM", settings.nats.stream.clone()),
        ("NATS__SUBJECT_PREFIX", settings.nats.subject_prefix.clone()),
        ("REDIS__URL", settings.redis.url.expose_secret().to_owned()),
        ("REDIS__KEY_PREFIX", settings.redis.key_prefix.clone()),
        ("HTTP__PUBLIC_URL", settings.http.public_url.clone()),
        (
            "PROVISIONING__LOCAL__STATE_DIR",
            path(&settings.provisioning.local.state_dir),
        ),
        ("SAGAS__STREAM", sagas.stream.clone()),
        ("SAGAS__SUBJECT_PREFIX", sagas.subject_prefix.clone()),
        ("SAGAS__RECOVERY_SECS", sagas.recovery_secs.to_string()),
        ("SAGAS__ACK_WAIT_SECS", sagas.ack_wait_secs.to_string()),
        (
            "SAGAS__MAINTENANCE_SECS",
            sagas.maintenance_secs.to_string(),
        ),
        ("SAGAS__BACKOFF__BASE_MS", sagas.backoff.base_ms.to_string()),
        ("SAGAS__BACKOFF__MAX_MS", sagas.backoff.max_ms.to_string()),
        (
            "SAGAS__BACKOFF__MAX_ATTEMPTS",
            sagas.backoff.max_attempts.to_string(),
        ),
        ("LOG__FORMAT", "text".into()),
        ("LOG__FILTER", "warn".into()),
        ("RUNTIME__THREADS", "1".into()),
    ];
    if let Some(kek) = &settings.auth.key_encryption_key {
        env.push(("AUTH__KEY_ENCRYPTION_KEY", kek.expose_secret().to_owned()));
    }
    if let Some(ca) = &settings.provisioning.issuer_ca_file {
        env.push(("PROVISIONING__ISSUER_CA_FILE", path(ca)));
    }
    let local = &settings.provisioning.local;
    if let Some(program) = &local.kube_apiserver {
        env.push(("PROVISIONING__LOCAL__KUBE_APISERVER", path(program)));
    }
    if let Some(program) = &local.etcd {
        env.push(("PROVISIONING__LOCAL__ETCD", path(program)));
    }
    env.into_iter()
        .map(|(key, value)| (format!("HEXABASE_{key}"), value))
        .collect()
}

/// The test's `hexabase worker` processes. Dropped — however the test ends — it SIGKILLs them,
/// waits for their children (which die with them) and removes its directories; after a
/// failure it keeps the workers' and API servers' logs and says where.
struct Workers {
    binary: PathBuf,
    env: Vec<(String, String)>,
    /// The workers' logs (stdout and stderr, every start appended).
    logs: PathBuf,
    /// The clusters' state directory, canonical (as the children's arguments name it).
    state_dir: PathBuf,
    children: Vec<Option<Child>>,
    started: Instant,
}

impl Workers {
    fn new(settings: &Settings, count: usize) -> Self {
        let logs = std::env::temp_dir().join(format!(
            "hxb-crash-workers-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&logs).unwrap();
        let state_dir = &settings.provisioning.local.state_dir;
        std::fs::create_dir_all(state_dir).unwrap();
        Self {
            binary: hexabase_binary(),
            env: worker_env(settings),
            logs,
            state_dir: state_dir.canonicalize().unwrap(),
            children: (0..count).map(|_| None).collect(),
            started: Instant::now(),
        }
    }

    fn log_path(&self, worker: usize) -> PathBuf {
        self.logs.join(format!("worker-{worker}.log"))
    }

    fn start(&mut self, worker: usize) {
        assert!(self.children[worker].is_none(), "worker {worker} runs");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(worker))
            .unwrap();
        writeln!(
            log,
            "--- test: worker {worker} starting at {:.1} s",
            self.started.elapsed().as_secs_f64()
        )
        .unwrap();
        let mut command = Command::new(&self.binary);
        command.arg("worker");
        // Only the settings given here (a developer's own HEXABASE_… would change them); where
        // the peers are built stays as the environment says.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("HEXABASE_") && key != "HEXABASE_PEERS_DIR" {
                command.env_remove(&*key);
            }
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. A test process killed from outside (a harness
        // timeout) takes its workers with it; they take their children.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.children[worker] = Some(command.spawn().expect("start a hexabase worker"));
    }

    /// SIGKILL, and reap.
    fn kill(&mut self, worker: usize) {
        if let Some(mut child) = self.children[worker].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_all(&mut self) {
        for worker in 0..self.children.len() {
            self.kill(worker);
        }
    }

    /// Workers that exited by themselves (a crash of their own, a refused configuration).
    fn exited(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .enumerate()
            .filter_map(|(i, child)| {
                let status = child.as_mut()?.try_wait().ok()??;
                Some(format!("worker {i} exited by itself: {status}"))
            })
            .collect()
    }

    /// Processes one of whose arguments names the state directory (etcd, the API servers).
    fn children_alive(&self) -> Vec<u32> {
        let dir = self.state_dir.display().to_string();
        pids_with_argument(|arg| arg.contains(&dir))
    }

    /// The end of each worker's log and of each given workspace's API server log.
    fn logs(&self, workspaces: &[String]) -> String {
        let mut out = String::new();
        for worker in 0..self.children.len() {
            out.push_str(&format!("\n--- worker {worker} (last lines):\n"));
            out.push_str(&tail(&self.log_path(worker), 40));
        }
        for ws in workspaces.iter().take(3) {
            let log = self.state_dir.join(ws).join("apiserver.log");
            out.push_str(&format!("\n--- {} (last lines):\n", log.display()));
            out.push_str(&tail(&log, 15));
        }
        out
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.children_alive().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if std::thread::panicking() {
            eprintln!(
                "crash: logs kept in {} (workers) and {} (clusters)",
                self.logs.display(),
                self.state_dir.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.logs);
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Who is killed at one moment of the schedule.
#[derive(Debug, Clone, Copy)]
enum Victims {
    One(usize),
    Both,
}

/// 3 or 4 moments, each killing one worker or (once at least) both.
fn schedule() -> Vec<Victims> {
    let moments = random(3..5) as usize;
    let both_at = random(0..moments as u64) as usize;
    (0..moments)
        .map(|i| {
            if i == both_at {
                Victims::Both
            } else {
                Victims::One(random(0..2) as usize)
            }
        })
        .collect()
}

/// How many provisioning sagas are done, and a line saying where they all stand.
async fn provisioning_progress(app: &TestApp) -> (usize, String) {
    let rows: Vec<(String, i32)> =
        sqlx::query_as("SELECT state, step FROM sagas WHERE kind = 'workspace.provision'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for (state, step) in &rows {
        let key = if state == "running" {
            format!("at step {step}")
        } else {
            state.clone()
        };
        *by.entry(key).or_default() += 1;
    }
    let done = rows.iter().filter(|(s, _)| s == "done").count();
    (done, format!("{} sagas: {by:?}", rows.len()))
}

/// The sagas not done, with where they stand and why, for failure messages.
async fn unfinished_sagas(app: &TestApp) -> String {
    type Row = (
        String,
        String,
        String,
        String,
        i32,
        i32,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = match sqlx::query_as(
        "SELECT id, kind, aggregate_id, state, step, attempts, last_error, failure FROM sagas \
         WHERE state <> 'done' ORDER BY created_at",
    )
    .fetch_all(&app.pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) => return format!("(cannot read the sagas: {e})"),
    };
    rows.iter()
        .map(
            |(id, kind, aggregate, state, step, attempts, error, failure)| {
                format!(
                    "{id} {kind} {aggregate}: {state} at step {step} (attempts {attempts}), \
                 last error {error:?}, failure {failure:?}"
                )
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

async fn evidence(app: &TestApp, workers: &Workers, workspaces: &[String]) -> String {
    format!(
        "\n--- sagas not done:\n{}{}",
        unfinished_sagas(app).await,
        workers.logs(workspaces)
    )
}

/// How many of each of `types` the event store holds per workspace.
async fn event_counts(
    app: &TestApp,
    workspaces: &[String],
    types: &[&str],
) -> BTreeMap<(String, String), i64> {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, count(*) FROM events \
         WHERE aggregate_type = 'Workspace' AND aggregate_id = ANY($1) AND event_type = ANY($2) \
         GROUP BY 1, 2",
    )
    .bind(workspaces)
    .bind(&types)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(ws, event, count)| ((ws, event), count))
        .collect()
}

#[tokio::test]
async fn workers_killed_at_random_while_twenty_workspaces_provision_leave_each_provisioned_once() {
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    let (app, _) = https_app_with_options(options, |settings| {
        // The test polls 20 workspaces; the API's per-user limit is not what it is about.
        settings.rate_limit.api_per_window = 0;
    })
    .await;
    let mut workers = Workers::new(&app.settings, 2);
    workers.start(0);
    workers.start(1);

    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let first_request = Instant::now();
    let mut workspaces = Vec::new();
    for i in 0..WORKSPACES {
        workspaces.push(app.create_workspace(&admin, &org, &format!("ws {i}")).await);
    }

    // The kills start once provisioning has: a saga past its first step.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let started: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sagas WHERE kind = 'workspace.provision' AND step >= 1",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if started > 0 {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "no provisioning saga got past its first step{}",
                evidence(&app, &workers, &[]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let plan = schedule();
    let (mut processes_killed, mut kills_mid_provisioning) = (0, 0);
    for victims in &plan {
        tokio::time::sleep(Duration::from_millis(random(500..4000))).await;
        let (done, progress) = provisioning_progress(&app).await;
        let killed: Vec<usize> = match *victims {
            Victims::One(worker) => vec![worker],
            Victims::Both => vec![0, 1],
        };
        for &worker in &killed {
            workers.kill(worker);
        }
        processes_killed += killed.len();
        if done < WORKSPACES {
            kills_mid_provisioning += 1;
        }
        let pause = Duration::from_millis(random(300..1500));
        eprintln!(
            "crash: at {:.1} s SIGKILL worker(s) {killed:?} ({progress}); restarted after {} ms",
            first_request.elapsed().as_secs_f64(),
            pause.as_millis()
        );
        tokio::time::sleep(pause).await;
        for &worker in &killed {
            workers.start(worker);
        }
    }
    assert!(
        kills_mid_provisioning > 0,
        "every kill came after provisioning had ended: the test proved nothing"
    );

    // Every workspace Ready (a Failed one, or a worker ending by itself, stops the wait).
    let link = |ws: &str| format!("/api/v1/organizations/{org}/workspaces/{ws}");
    let mut waiting: BTreeSet<String> = workspaces.iter().cloned().collect();
    loop {
        let mut statuses = BTreeMap::new();
        for ws in waiting.clone() {
            let view = app.get(&link(&ws), &admin).await;
            let status = view.body["status"].as_str().unwrap_or_default().to_owned();
            if status == "Failed" {
                panic!(
                    "{ws} failed: {}{}",
                    view.text,
                    evidence(&app, &workers, std::slice::from_ref(&ws)).await
                );
            }
            if status == "Ready" {
                waiting.remove(&ws);
            } else {
                statuses.insert(ws, format!("{status} {}", view.body["progress"]));
            }
        }
        if waiting.is_empty() {
            break;
        }
        let exited = workers.exited();
        if !exited.is_empty() || first_request.elapsed() > ALL_READY {
            let stuck: Vec<String> = waiting.iter().cloned().collect();
            panic!(
                "{} of {WORKSPACES} workspaces not Ready after {:.0} s {exited:?}: {statuses:#?}{}",
                waiting.len(),
                first_request.elapsed().as_secs_f64(),
                evidence(&app, &workers, &stuck).await
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let all_ready = first_request.elapsed();
    eprintln!(
        "crash: {WORKSPACES} workspaces Ready {:.1} s after the first request, through {} kill \
         moments ({processes_killed} worker processes killed, {kills_mid_provisioning} of the \
         moments mid-provisioning): {plan:?}",
        all_ready.as_secs_f64(),
        plan.len(),
    );

    // No saga stuck: whatever still runs (a confirmation, a maintenance pass) ends, and none
    // failed.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sagas WHERE state IN ('running', 'unwinding')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "{open} sagas still running or unwinding 90 s after every workspace was Ready{}",
                evidence(&app, &workers, &[]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM sagas WHERE state = 'failed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        failed,
        0,
        "sagas failed{}",
        evidence(&app, &workers, &[]).await
    );

    // Each workspace created once: one provisioning saga, done; each lifecycle event once, no
    // failure recorded.
    let provisions: Vec<(String, String)> = sqlx::query_as(
        "SELECT aggregate_id, state FROM sagas WHERE kind = 'workspace.provision' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut expected: Vec<(String, String)> = workspaces
        .iter()
        .map(|ws| (ws.clone(), "done".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(provisions, expected, "one provisioning saga per workspace");
    let once = [
        "WorkspaceRequested",
        "WorkspaceProvisioningStarted",
        "EndpointAssigned",
        "WorkspaceProvisioned",
    ];
    let never = ["WorkspaceStepFailed", "WorkspaceProvisioningFailed"];
    let all_types: Vec<&str> = once.iter().chain(never.iter()).copied().collect();
    let counts = event_counts(&app, &workspaces, &all_types).await;
    for ws in &workspaces {
        for (event, want) in once
            .iter()
            .map(|e| (e, 1))
            .chain(never.iter().map(|e| (e, 0)))
        {
            let got = counts
                .get(&(ws.clone(), (*event).to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(got, want, "{event} events of {ws}");
        }
    }

    // No duplicate objects: one API server per workspace, one etcd; each answers and holds its
    // managed objects once. (The observer only reads: `wait_ready` would start what nobody
    // runs, and the test must not become a third owner.)
    let observer = LocalDriver::new(app.settings.provisioning.local.clone()).unwrap();
    let etcd_data = format!("--data-dir={}", workers.state_dir.join("etcd").display());
    let etcds = pids_with_argument(|arg| arg == etcd_data);
    assert_eq!(etcds.len(), 1, "etcd processes: {etcds:?}");
    let wanted: BTreeSet<String> = [ADMINS_BINDING, MEMBERS_BINDING].map(str::to_owned).into();
    for ws in &workspaces {
        let id = WorkspaceId::parse(ws).unwrap();
        let arg = format!("--etcd-prefix={}", etcd_prefix(&id));
        let apiservers = pids_with_argument(|a| a == arg);
        assert_eq!(apiservers.len(), 1, "API servers of {ws}: {apiservers:?}");
        let client = observer.admin_client(&id).await.unwrap();
        let ready = client
            .request_text(http::Request::get("/readyz").body(Vec::new()).unwrap())
            .await;
        assert_eq!(ready.ok().as_deref(), Some("ok"), "/readyz of {ws}");
        let managed = ListParams::default().labels(&selector(ws));
        let bindings: BTreeSet<String> = Api::<ClusterRoleBinding>::all(client.clone())
            .list(&managed)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|b| b.metadata.name)
            .collect();
        assert_eq!(bindings, wanted, "managed ClusterRoleBindings of {ws}");
        let namespaces = Api::<Namespace>::all(client).list(&managed).await.unwrap();
        assert!(
            namespaces.items.is_empty(),
            "{ws} has no projects, so no managed namespaces"
        );
    }
    // The workers go, and their children with them.
    workers.kill_all();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = workers.children_alive();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children of the killed workers still run: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
