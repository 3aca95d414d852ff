//! A workspace's directory under the state directory, and the API server started from it.
//!
//! The directory appears whole or not at all: `create` fills a staging directory and renames it
//! into place, its `spec.json` written last, so a worker that crashes half way leaves no
//! workspace that looks created, and of two racing creates exactly one wins. `delete` renames it
//! to `.deleting-<ws>` first: its spec vanishing from `<ws>/spec.json` is what tells every
//! supervisor to stop (or not start) its API server.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hexabase_command::WorkspaceId;
use serde::{Deserialize, Serialize};

use super::pki::WorkspacePki;
use super::process::{free_port, write_replace};
use crate::driver::{ClusterSpec, DriverError};

/// What a created workspace's API server runs with, beyond the files beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub workspace: WorkspaceId,
    pub port: u16,
    pub etcd_prefix: String,
}

/// `--etcd-prefix`: the API server's keys are `<prefix>/<resource>/…`.
pub fn etcd_prefix(workspace: &WorkspaceId) -> String {
    format!("/hexabase/{workspace}")
}

/// Every key of the workspace (the slash keeps `ws-…1` from matching `ws-…10`).
pub fn key_prefix(workspace: &WorkspaceId) -> String {
    format!("{}/", etcd_prefix(workspace))
}

#[derive(Debug, Clone)]
pub struct WorkspaceDir {
    root: PathBuf,
}

impl WorkspaceDir {
    pub fn new(state_dir: &Path, workspace: &WorkspaceId) -> Self {
        Self {
            root: state_dir.join(workspace.as_str()),
        }
    }

    /// Where the directory goes while it is being deleted.
    pub fn deleting(state_dir: &Path, workspace: &WorkspaceId) -> Self {
        Self {
            root: state_dir.join(format!(".deleting-{workspace}")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.file("lock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.file("apiserver.log")
    }

    pub fn pid_path(&self) -> PathBuf {
        self.file("apiserver.pid")
    }

    /// Present while the workspace is suspended: nobody runs its API server.
    fn suspended_path(&self) -> PathBuf {
        self.file("suspended")
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended_path().exists()
    }

    /// Mark the workspace suspended (`true`) or running (`false`).
    pub fn set_suspended(&self, suspended: bool) -> Result<(), DriverError> {
        let path = self.suspended_path();
        let result = if suspended {
            write_replace(&path, b"suspended\n")
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        result.map_err(|e| DriverError::Transient(format!("local driver: {}: {e}", path.display())))
    }

    fn exits_path(&self) -> PathBuf {
        self.file("exits.json")
    }

    /// The spec, or `None` when the workspace is not (or no longer) created here.
    pub fn read_spec(&self) -> Result<Option<Spec>, DriverError> {
        let path = self.file("spec.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                DriverError::Permanent(format!("local driver: {}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DriverError::Transient(format!(
                "local driver: {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn ca_pem(&self) -> Result<String, DriverError> {
        self.read("ca.crt")
    }

    pub fn read(&self, name: &str) -> Result<String, DriverError> {
        let path = self.file(name);
        std::fs::read_to_string(&path)
            .map_err(|e| DriverError::Transient(format!("local driver: {}: {e}", path.display())))
    }

    /// How often the API server exited soon after starting, one after the other.
    pub fn exits(&self) -> Exits {
        std::fs::read(self.exits_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn record_exits(&self, exits: &Exits) {
        if let Ok(bytes) = serde_json::to_vec(exits) {
            let _ = write_replace(&self.exits_path(), &bytes);
        }
    }
}

/// Consecutive early exits of a workspace's API server, kept on disk: whichever worker runs it
/// counts, and whichever worker waits for it reads (a crash loop is a configuration problem
/// that waiting cannot fix).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exits {
    pub early: u32,
    pub last_unix_ms: i64,
}

/// Make the workspace's directory: keys, certificates, the authentication configuration and
/// the spec, staged and renamed into place. `Ok(false)` when it already existed (another
/// `create` won; what is there stays).
pub fn create_dir(state_dir: &Path, spec: &ClusterSpec) -> Result<bool, DriverError> {
    let workspace = &spec.workspace;
    let target = WorkspaceDir::new(state_dir, workspace);
    let staging = WorkspaceDir {
        root: state_dir.join(format!(
            ".staging-{workspace}-{}",
            uuid::Uuid::new_v4().simple()
        )),
    };
    let result = fill(&staging, state_dir, spec).and_then(|()| {
        match std::fs::rename(staging.path(), target.path()) {
            Ok(()) => Ok(true),
            // A non-empty directory already there: another create finished first.
            Err(e) if target.file("spec.json").exists() => {
                tracing::debug!(%workspace, error = %e, "workspace directory created meanwhile");
                Ok(false)
            }
            Err(e) => Err(unwritable(target.path(), &e)),
        }
    });
    let _ = std::fs::remove_dir_all(staging.path());
    result
}

fn unwritable(path: &Path, e: &std::io::Error) -> DriverError {
    DriverError::Permanent(format!(
        "local driver: cannot write {}: {e}",
        path.display()
    ))
}

fn fill(dir: &WorkspaceDir, state_dir: &Path, spec: &ClusterSpec) -> Result<(), DriverError> {
    std::fs::create_dir_all(dir.file("certs")).map_err(|e| unwritable(dir.path(), &e))?;
    let pki = WorkspacePki::generate(spec.workspace.as_str())?;
    let authentication = serde_json::to_string_pretty(&spec.authentication).map_err(|e| {
        DriverError::Permanent(format!("local driver: authentication configuration: {e}"))
    })?;
    let record = Spec {
        workspace: spec.workspace.clone(),
        port: allocate_port(state_dir)?,
        etcd_prefix: etcd_prefix(&spec.workspace),
    };
    let record = serde_json::to_vec_pretty(&record)
        .map_err(|e| DriverError::Permanent(format!("local driver: spec: {e}")))?;
    for (name, contents, private) in [
        ("ca.crt", pki.ca_cert.as_bytes(), false),
        ("apiserver.crt", pki.serving_cert.as_bytes(), false),
        ("apiserver.key", pki.serving_key.as_bytes(), true),
        ("admin.crt", pki.admin_cert.as_bytes(), false),
        ("admin.key", pki.admin_key.as_bytes(), true),
        ("sa.key", pki.sa_key.as_bytes(), true),
        ("sa.pub", pki.sa_pub.as_bytes(), false),
        // JSON is YAML, which is what the API server reads.
        (
            "authentication-config.yaml",
            authentication.as_bytes(),
            false,
        ),
        ("lock", b"", false),
        ("spec.json", &record, false),
    ] {
        write_file(&dir.file(name), contents, private)?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), DriverError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(|e| unwritable(path, &e))
}

/// A free loopback port that no other workspace here has recorded (the kernel may hand a
/// port just released to the next caller, and a stopped API server's port is not bound).
fn allocate_port(state_dir: &Path) -> Result<u16, DriverError> {
    let taken: Vec<u16> = std::fs::read_dir(state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let bytes = std::fs::read(entry.path().join("spec.json")).ok()?;
            serde_json::from_slice::<Spec>(&bytes).ok().map(|s| s.port)
        })
        .collect();
    for _ in 0..64 {
        let port = free_port().map_err(|e| {
            DriverError::Transient(format!("local driver: no free loopback port: {e}"))
        })?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(DriverError::Transient(
        "local driver: no free loopback port outside the recorded ones".into(),
    ))
}

/// kube-apiserver for one workspace: its own port, certificates and key prefix in the shared
/// etcd, trusting its workspace's issuer through `--authentication-config`.
///
/// No kube-controller-manager runs beside it, so two admission plugins that need one are off:
/// `ServiceAccount` (no token controller) and `ResourceQuota` (without the quota controller no
/// usage is ever computed). Quotas are therefore recorded but not enforced on the local
/// driver; that is a stated limit of it, not of the control plane.
pub fn apiserver_command(binary: &Path, dir: &WorkspaceDir, spec: &Spec, etcd: &str) -> Command {
    let p = |name: &str| dir.file(name).display().to_string();
    let mut command = Command::new(binary);
    command.args([
        format!("--etcd-servers={etcd}"),
        format!("--etcd-prefix={}", spec.etcd_prefix),
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={}", spec.port),
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!("--client-ca-file={}", p("ca.crt")),
        "--authorization-mode=RBAC".to_owned(),
        format!(
            "--authentication-config={}",
            p("authentication-config.yaml")
        ),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        "--endpoint-reconciler-type=none".to_owned(),
        "--allow-privileged=true".to_owned(),
        "--disable-admission-plugins=ServiceAccount,ResourceQuota".to_owned(),
        format!("--cert-dir={}", p("certs")),
    ]);
    command
}
