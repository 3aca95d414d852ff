//! The `local` driver: a real kube-apiserver per workspace on this machine, all of them on one
//! shared etcd under a per-workspace `--etcd-prefix`, each on its own loopback port with its
//! own CA and serving certificate, trusting its workspace's issuer through
//! `--authentication-config`. What `hexabase dev`, the integration tests and a single-machine
//! demo run on.
//!
//! Everything lives under the settings' `state_dir` (see `workspace` for a workspace's
//! directory), so a restarted worker brings every created workspace back on its recorded port
//! with its data. Processes are children of the worker and die with it; workers sharing a
//! state directory split the children between them through file locks (see `children`).
//!
//! Limits: no kube-controller-manager runs, so namespaces are finalized by the control plane
//! (`runs_controllers` is false), service accounts get no tokens, and quotas are recorded but
//! not enforced (the `ResourceQuota` admission plugin is off, as nothing computes usage).

mod access;
mod children;
mod etcd;
mod pki;
mod process;
mod settings;
mod workspace;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hexabase_command::WorkspaceId;
use tokio_util::sync::CancellationToken;

use self::access::ReadyProbe;
use self::children::Children;
use self::etcd::{EtcdPorts, Gateway};
use self::process::{log_tail, Lock};
use self::settings::Binaries;
use self::workspace::{key_prefix, WorkspaceDir};
use super::{ClusterDriver, ClusterSpec, DriverError, Endpoint};

pub use self::settings::LocalDriverSettings;
pub use self::workspace::etcd_prefix;

/// How often supervision looks at every child.
const TICK: Duration = Duration::from_secs(1);
/// How often `wait_ready` asks.
const POLL: Duration = Duration::from_millis(250);
/// Early exits in a row after which `wait_ready` gives up: the API server refuses its flags or
/// files (an invalid authentication configuration, say), which no retry fixes.
const CRASH_LOOP: u32 = 3;
/// How long `delete` waits for another worker to stop the API server it runs.
const HANDOVER: Duration = Duration::from_secs(20);
/// Log lines quoted in errors.
const TAIL: usize = 25;

pub struct LocalDriver {
    state_dir: PathBuf,
    etcd_url: String,
    gateway: Gateway,
    children: Children,
}

impl LocalDriver {
    /// Check the programs and the state directory; starts nothing yet (`create`, `wait_ready`
    /// and `supervise` do).
    pub fn new(settings: LocalDriverSettings) -> Result<Self, DriverError> {
        let binaries = Binaries::resolve(&settings)?;
        let state_dir = settings.state_dir;
        std::fs::create_dir_all(&state_dir).map_err(|e| {
            DriverError::Permanent(format!(
                "local driver: cannot create the state directory {}: {e}",
                state_dir.display()
            ))
        })?;
        // Absolute, because the children run with these paths from wherever they are started.
        let state_dir = state_dir.canonicalize().map_err(|e| {
            DriverError::Permanent(format!("local driver: {}: {e}", state_dir.display()))
        })?;
        // Proves the directory writable before any saga relies on it.
        Lock::try_acquire(&state_dir.join("etcd.lock")).map_err(|e| {
            DriverError::Permanent(format!(
                "local driver: the state directory {} is not writable: {e}",
                state_dir.display()
            ))
        })?;
        let ports = EtcdPorts::load_or_create(&state_dir, settings.etcd_port)?;
        Ok(Self {
            etcd_url: ports.url(),
            gateway: Gateway::new(ports.url())?,
            children: Children::new(binaries, state_dir.clone(), ports),
            state_dir,
        })
    }

    /// The shared etcd's client URL.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// How many etcd keys start with `prefix` (a workspace's: `etcd_prefix(ws) + "/"`).
    pub async fn keys_under(&self, prefix: &str) -> Result<u64, DriverError> {
        self.gateway.count(prefix).await
    }

    /// The pid of the workspace's API server, if this driver runs it.
    pub fn apiserver_pid(&self, workspace: &WorkspaceId) -> Option<u32> {
        self.children.apiserver_pid(workspace)
    }

    /// The pid of the shared etcd, if this driver runs it.
    pub fn etcd_pid(&self) -> Option<u32> {
        self.children.etcd_pid()
    }

    /// Kill the children this driver runs and start none any more (what `supervise` does when
    /// cancelled, also for callers without a supervisor).
    pub fn shut_down(&self) {
        self.children.stop_all();
    }

    fn dir(&self, workspace: &WorkspaceId) -> WorkspaceDir {
        WorkspaceDir::new(&self.state_dir, workspace)
    }

    fn spec(&self, workspace: &WorkspaceId) -> Result<workspace::Spec, DriverError> {
        self.dir(workspace)
            .read_spec()?
            .ok_or_else(|| DriverError::NotFound(workspace.to_string()))
    }

    /// One supervision pass: etcd, then every created workspace and every owned one (so the
    /// API server of a workspace deleted by another worker is stopped).
    fn tick(&self) {
        let mut workspaces: Vec<WorkspaceId> = std::fs::read_dir(&self.state_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| WorkspaceId::parse(entry.file_name().to_str()?).ok())
            .collect();
        workspaces.extend(self.children.owned());
        workspaces.sort();
        workspaces.dedup();
        // etcd runs once there is a cluster to hold (or while this process runs it): a
        // worker of a control plane without workspaces starts nothing.
        if !workspaces.is_empty() || self.children.etcd_pid().is_some() {
            if let Err(e) = self.children.ensure_etcd() {
                tracing::warn!(error = %e, "local driver: etcd");
            }
        }
        for workspace in workspaces {
            if let Err(e) = self.children.ensure_apiserver(&workspace) {
                tracing::warn!(%workspace, error = %e, "local driver: API server");
            }
        }
    }

    /// Finish deleting the workspace whose directory is at `.deleting-<ws>`: wait until nobody
    /// runs its API server, delete its keys, remove the directory.
    async fn finish_delete(
        &self,
        workspace: &WorkspaceId,
        dir: &WorkspaceDir,
    ) -> Result<(), DriverError> {
        let deadline = Instant::now() + HANDOVER;
        let _lock = loop {
            // Stops our own API server of it (its spec is gone from `<ws>/`).
            self.children.ensure_apiserver(workspace)?;
            match Lock::try_acquire(&dir.lock_path()) {
                Ok(Some(lock)) => break lock,
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(None) => {
                    return Err(DriverError::Transient(format!(
                        "local driver: another worker still runs the API server of {workspace}"
                    )))
                }
                // A concurrent delete finished it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(DriverError::Transient(format!(
                        "local driver: cannot lock {}: {e}",
                        dir.lock_path().display()
                    )))
                }
            }
        };
        self.children.ensure_etcd()?;
        let deadline = Instant::now() + HANDOVER;
        let deleted = loop {
            match self.gateway.delete(&key_prefix(workspace)).await {
                Ok(deleted) => break deleted,
                // etcd may be starting (this call may have just started it).
                Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Err(e) => return Err(e),
            }
        };
        match std::fs::remove_dir_all(dir.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DriverError::Transient(format!(
                    "local driver: cannot remove {}: {e}",
                    dir.path().display()
                )))
            }
        }
        tracing::info!(%workspace, keys = deleted, "local driver: cluster deleted");
        Ok(())
    }
}

#[async_trait]
impl ClusterDriver for LocalDriver {
    fn name(&self) -> &'static str {
        "local"
    }

    fn runs_controllers(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(workspace = %spec.workspace))]
    async fn create(&self, spec: &ClusterSpec) -> Result<(), DriverError> {
        let workspace = &spec.workspace;
        // Started now, so the first API server does not wait for the next supervision tick.
        self.children.ensure_etcd()?;
        let dir = self.dir(workspace);
        if dir.read_spec()?.is_none() {
            if WorkspaceDir::deleting(&self.state_dir, workspace)
                .path()
                .exists()
            {
                // Its keys are about to be deleted: a cluster made now would lose them.
                return Err(DriverError::Transient(format!(
                    "local driver: the previous cluster of {workspace} is still being deleted"
                )));
            }
            if dir.path().exists() {
                return Err(DriverError::Permanent(format!(
                    "local driver: {} exists without spec.json; remove it by hand",
                    dir.path().display()
                )));
            }
            if workspace::create_dir(&self.state_dir, spec)? {
                tracing::info!("local driver: cluster created");
            }
        }
        self.children.ensure_apiserver(workspace)
    }

    #[tracing::instrument(skip(self))]
    async fn wait_ready(
        &self,
        workspace: &WorkspaceId,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let dir = self.dir(workspace);
        let spec = self.spec(workspace)?;
        let probe = ReadyProbe::new(&dir, &spec)?;
        let deadline = Instant::now() + timeout;
        loop {
            if dir.read_spec()?.is_none() {
                return Err(DriverError::NotFound(workspace.to_string()));
            }
            if dir.is_suspended() {
                return Err(DriverError::Transient(format!(
                    "local driver: {workspace} is suspended"
                )));
            }
            self.children.ensure_etcd()?;
            self.children.ensure_apiserver(workspace)?;
            if probe.ready().await {
                return Ok(());
            }
            let exits = dir.exits();
            if exits.early >= CRASH_LOOP {
                return Err(DriverError::Permanent(format!(
                    "local driver: the API server of {workspace} exited {} times right after \
                     starting; last lines of {}:\n{}",
                    exits.early,
                    dir.log_path().display(),
                    log_tail(&dir.log_path(), TAIL)
                )));
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Transient(format!(
                    "local driver: the API server of {workspace} is not ready after {timeout:?}; \
                     last lines of {}:\n{}",
                    dir.log_path().display(),
                    log_tail(&dir.log_path(), TAIL)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn endpoint(&self, workspace: &WorkspaceId) -> Result<Endpoint, DriverError> {
        let spec = self.spec(workspace)?;
        Ok(Endpoint {
            server: access::server_url(&spec),
            ca_pem: self.dir(workspace).ca_pem()?,
        })
    }

    async fn admin_client(&self, workspace: &WorkspaceId) -> Result<kube::Client, DriverError> {
        let spec = self.spec(workspace)?;
        access::admin_client(&self.dir(workspace), &spec).await
    }

    /// Safe to repeat and to resume after a crash: the directory moves to `.deleting-<ws>`
    /// first (which stops every supervisor from running it), and is removed last, after the
    /// keys, so whatever step a crash interrupted is done again.
    #[tracing::instrument(skip(self))]
    async fn delete(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let live = self.dir(workspace);
        let deleting = WorkspaceDir::deleting(&self.state_dir, workspace);
        loop {
            if deleting.path().exists() {
                self.finish_delete(workspace, &deleting).await?;
            }
            if !live.path().exists() {
                return Ok(());
            }
            match std::fs::rename(live.path(), deleting.path()) {
                Ok(()) => {}
                // A concurrent delete moved it first; the loop finishes its work, or sees it done.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DriverError::Transient(format!(
                        "local driver: cannot move {} aside: {e}",
                        live.path().display()
                    )))
                }
            }
        }
    }

    /// Marks the workspace suspended, which stops its API server wherever it runs (every
    /// supervisor looks at the mark), and waits until nobody runs it; etcd keeps its data.
    #[tracing::instrument(skip(self))]
    async fn suspend(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let dir = self.dir(workspace);
        self.spec(workspace)?;
        dir.set_suspended(true)?;
        let deadline = Instant::now() + HANDOVER;
        loop {
            self.children.ensure_apiserver(workspace)?;
            match Lock::try_acquire(&dir.lock_path()) {
                Ok(Some(_free)) => break,
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(None) => {
                    return Err(DriverError::Transient(format!(
                        "local driver: another worker still runs the API server of {workspace}"
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(DriverError::NotFound(workspace.to_string()))
                }
                Err(e) => {
                    return Err(DriverError::Transient(format!(
                        "local driver: cannot lock {}: {e}",
                        dir.lock_path().display()
                    )))
                }
            }
        }
        tracing::info!(%workspace, "local driver: cluster suspended");
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn resume(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        self.spec(workspace)?;
        self.dir(workspace).set_suspended(false)?;
        self.children.ensure_etcd()?;
        self.children.ensure_apiserver(workspace)
    }

    async fn supervise(&self, shutdown: CancellationToken) {
        self.children.resume();
        loop {
            self.tick();
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        self.children.stop_all();
        tracing::info!("local driver: supervision ended, children stopped");
    }
}
