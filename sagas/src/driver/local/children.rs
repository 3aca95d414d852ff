//! Who runs etcd and each API server, and keeping them running.
//!
//! Several workers may share one state directory. Whoever holds a child's lock
//! (`state_dir/etcd.lock`, `state_dir/<ws>/lock`) runs that child and nobody else does; the
//! "ensure" functions below are called on every supervision tick (and by `create`,
//! `wait_ready` and `delete`, so those work without a supervisor too): restart an owned child
//! that exited, take over a child nobody owns, stop an owned API server whose workspace is
//! being deleted. A worker that dies loses its children (death signal) and its locks (kernel)
//! together, and the next tick of another worker picks them up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hexabase_command::WorkspaceId;

use super::etcd::{self, EtcdPorts};
use super::process::{self, kill, log_tail, Lock};
use super::settings::Binaries;
use super::workspace::{apiserver_command, Exits, WorkspaceDir};
use crate::driver::DriverError;

/// An API server that exits with a status sooner than this after starting counts towards a
/// crash loop.
const EARLY_EXIT: Duration = Duration::from_secs(10);
/// Longest wait between restarts of a crash-looping API server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A child this process runs, and the lock that makes it the only one.
struct Owned {
    /// `None` while waiting out a crash loop's backoff (the lock is kept meanwhile).
    child: Option<Child>,
    started: Instant,
    _lock: Lock,
}

#[derive(Default)]
struct State {
    etcd: Option<Owned>,
    apiservers: HashMap<WorkspaceId, Owned>,
}

pub struct Children {
    binaries: Binaries,
    state_dir: PathBuf,
    etcd_ports: EtcdPorts,
    state: Mutex<State>,
    /// Set once supervision ends: from then on nothing is started, so a shut-down worker does
    /// not take clusters back from the workers still running.
    stopped: AtomicBool,
}

fn spawn_error(name: &str, e: std::io::Error) -> DriverError {
    let message = format!("local driver: cannot start {name}: {e}");
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            DriverError::Permanent(message)
        }
        _ => DriverError::Transient(message),
    }
}

/// How long to wait before restarting after `early` early exits in a row: 0, 1, 2, 4… s.
fn backoff(exits: &Exits) -> Option<Instant> {
    if exits.early == 0 {
        return None;
    }
    let delay = Duration::from_secs(1u64 << (exits.early - 1).min(5)).min(MAX_BACKOFF);
    let since = chrono::Utc::now().timestamp_millis() - exits.last_unix_ms;
    let remaining = delay.saturating_sub(Duration::from_millis(since.max(0).unsigned_abs()));
    (!remaining.is_zero()).then(|| Instant::now() + remaining)
}

impl Children {
    pub fn new(binaries: Binaries, state_dir: PathBuf, etcd_ports: EtcdPorts) -> Self {
        Self {
            binaries,
            state_dir,
            etcd_ports,
            state: Mutex::new(State::default()),
            stopped: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map as consistent as any tick does.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn resume(&self) {
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// Run etcd if this process owns it or nobody does.
    pub fn ensure_etcd(&self) -> Result<(), DriverError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut state = self.state();
        let log = self.state_dir.join("etcd.log");
        if let Some(owned) = state.etcd.as_mut() {
            if let Some(child) = owned.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => return Ok(()),
                    Ok(Some(status)) => tracing::warn!(
                        %status,
                        log = %log_tail(&log, 10),
                        "local driver: etcd exited; restarting it"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "local driver: etcd status unknown");
                        return Ok(());
                    }
                }
            }
            owned.child = None;
            let child = self.spawn_etcd(&log)?;
            owned.child = Some(child);
            owned.started = Instant::now();
            return Ok(());
        }
        let lock = match Lock::try_acquire(&self.state_dir.join("etcd.lock")) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(DriverError::Permanent(format!(
                    "local driver: cannot lock {}/etcd.lock: {e}",
                    self.state_dir.display()
                )))
            }
        };
        let child = self.spawn_etcd(&log)?;
        tracing::info!(pid = child.id(), url = %self.etcd_ports.url(), "local driver: etcd started");
        state.etcd = Some(Owned {
            child: Some(child),
            started: Instant::now(),
            _lock: lock,
        });
        Ok(())
    }

    fn spawn_etcd(&self, log: &Path) -> Result<Child, DriverError> {
        let command = etcd::command(&self.binaries.etcd, &self.state_dir, self.etcd_ports);
        process::spawn("etcd", command, log).map_err(|e| spawn_error("etcd", e))
    }

    /// Run the workspace's API server if this process owns it or nobody does; stop it if its
    /// workspace is no longer created here (deleted, or being deleted).
    pub fn ensure_apiserver(&self, workspace: &WorkspaceId) -> Result<(), DriverError> {
        let dir = WorkspaceDir::new(&self.state_dir, workspace);
        let spec = dir.read_spec()?;
        let mut state = self.state();
        let spec = match spec {
            Some(spec) if !dir.is_suspended() => spec,
            gone_or_suspended => {
                if let Some(mut owned) = state.apiservers.remove(workspace) {
                    if let Some(child) = owned.child.as_mut() {
                        let why = if gone_or_suspended.is_some() {
                            "suspended"
                        } else {
                            "deleted"
                        };
                        tracing::info!(%workspace, pid = child.id(), "local driver: API server stopped (workspace {why})");
                        kill(child);
                    }
                }
                return Ok(());
            }
        };
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(owned) = state.apiservers.get_mut(workspace) {
            if let Some(child) = owned.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => {
                        if owned.started.elapsed() > EARLY_EXIT && dir.exits().early > 0 {
                            dir.record_exits(&Exits::default());
                        }
                        return Ok(());
                    }
                    Ok(Some(status)) => {
                        let mut exits = dir.exits();
                        // Refusing its flags or files, the API server exits with a status; a
                        // signal (a kill, the OOM killer) says nothing about its configuration.
                        let refused = status.code().is_some();
                        exits.early = if refused && owned.started.elapsed() < EARLY_EXIT {
                            exits.early + 1
                        } else {
                            0
                        };
                        exits.last_unix_ms = chrono::Utc::now().timestamp_millis();
                        dir.record_exits(&exits);
                        tracing::warn!(
                            %workspace, %status, early_exits = exits.early,
                            log = %log_tail(&dir.log_path(), 10),
                            "local driver: API server exited; restarting it"
                        );
                    }
                    // Not known to have exited: leave it rather than start a second one.
                    Err(e) => {
                        tracing::warn!(%workspace, error = %e, "local driver: API server status unknown");
                        return Ok(());
                    }
                }
                owned.child = None;
            }
            if backoff(&dir.exits()).is_some() {
                return Ok(());
            }
            let child = self.spawn_apiserver(&dir, &spec)?;
            owned.child = Some(child);
            owned.started = Instant::now();
            return Ok(());
        }
        let lock = match Lock::try_acquire(&dir.lock_path()) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Ok(()),
            // The directory went away meanwhile (deleted): nothing to run.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(DriverError::Transient(format!(
                    "local driver: cannot lock {}: {e}",
                    dir.lock_path().display()
                )))
            }
        };
        // Deleted between reading the spec and locking: the deleter may have moved it.
        if dir.read_spec()?.is_none() {
            return Ok(());
        }
        let child = if backoff(&dir.exits()).is_some() {
            None
        } else {
            Some(self.spawn_apiserver(&dir, &spec)?)
        };
        state.apiservers.insert(
            workspace.clone(),
            Owned {
                child,
                started: Instant::now(),
                _lock: lock,
            },
        );
        Ok(())
    }

    fn spawn_apiserver(
        &self,
        dir: &WorkspaceDir,
        spec: &super::workspace::Spec,
    ) -> Result<Child, DriverError> {
        let command = apiserver_command(
            &self.binaries.kube_apiserver,
            dir,
            spec,
            &self.etcd_ports.url(),
        );
        let child = process::spawn("kube-apiserver", command, &dir.log_path())
            .map_err(|e| spawn_error("kube-apiserver", e))?;
        let _ = process::write_replace(&dir.pid_path(), child.id().to_string().as_bytes());
        tracing::info!(workspace = %spec.workspace, pid = child.id(), port = spec.port, "local driver: API server started");
        Ok(child)
    }

    /// The workspaces whose API server this process owns.
    pub fn owned(&self) -> Vec<WorkspaceId> {
        self.state().apiservers.keys().cloned().collect()
    }

    pub fn apiserver_pid(&self, workspace: &WorkspaceId) -> Option<u32> {
        let state = self.state();
        state
            .apiservers
            .get(workspace)?
            .child
            .as_ref()
            .map(Child::id)
    }

    pub fn etcd_pid(&self) -> Option<u32> {
        self.state().etcd.as_ref()?.child.as_ref().map(Child::id)
    }

    /// Kill every owned child and give up its lock; start nothing any more.
    pub fn stop_all(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut state = self.state();
        // API servers first: they would only log etcd's absence.
        for (_, mut owned) in state.apiservers.drain() {
            if let Some(child) = owned.child.as_mut() {
                kill(child);
            }
        }
        if let Some(mut owned) = state.etcd.take() {
            if let Some(child) = owned.child.as_mut() {
                kill(child);
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_last_early_exit() {
        let now = chrono::Utc::now().timestamp_millis();
        assert!(backoff(&Exits::default()).is_none());
        let fresh = |early| Exits {
            early,
            last_unix_ms: now,
        };
        let wait = |early| backoff(&fresh(early)).map(|at| at - Instant::now());
        assert!(wait(1).is_some_and(|d| d <= Duration::from_secs(1)));
        assert!(wait(3).is_some_and(|d| d > Duration::from_secs(3)));
        assert!(wait(30).is_some_and(|d| d <= MAX_BACKOFF));
        let old = Exits {
            early: 2,
            last_unix_ms: now - 5_000,
        };
        assert!(backoff(&old).is_none());
    }
}
