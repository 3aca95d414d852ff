//! What a `LocalDriver` is configured with, and where its programs come from when the
//! configuration does not say: the builds `scripts/peers` made and listed in its manifest.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::driver::DriverError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalDriverSettings {
    /// The kube-apiserver program; default: the one `scripts/peers` built.
    #[serde(default)]
    pub kube_apiserver: Option<PathBuf>,
    /// The etcd program; default: the one `scripts/peers` built.
    #[serde(default)]
    pub etcd: Option<PathBuf>,
    /// Everything the driver keeps: etcd's data, and a directory per workspace (certificates,
    /// keys, authentication configuration, its spec, logs). Workers sharing it share clusters.
    pub state_dir: PathBuf,
    /// etcd's client port; 0: one picked once and kept in `state_dir/etcd.json`.
    #[serde(default)]
    pub etcd_port: u16,
}

impl LocalDriverSettings {
    /// Default programs, etcd on a port of its choosing, everything under `state_dir`.
    pub fn in_dir(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            kube_apiserver: None,
            etcd: None,
            state_dir: state_dir.into(),
            etcd_port: 0,
        }
    }
}

/// The programs a driver runs, resolved and checked once at start.
#[derive(Debug, Clone)]
pub(super) struct Binaries {
    pub kube_apiserver: PathBuf,
    pub etcd: PathBuf,
}

impl Binaries {
    pub fn resolve(settings: &LocalDriverSettings) -> Result<Self, DriverError> {
        let pick = |configured: &Option<PathBuf>, name: &str| match configured {
            Some(path) => exists(path.clone(), name, "configured"),
            None => from_manifest(name),
        };
        Ok(Self {
            kube_apiserver: pick(&settings.kube_apiserver, "kube-apiserver")?,
            etcd: pick(&settings.etcd, "etcd")?,
        })
    }
}

const HOW: &str = "build it with `scripts/peers`, or set its path in the local driver's settings";

/// The path `scripts/peers`' manifest gives for `name`.
fn from_manifest(name: &str) -> Result<PathBuf, DriverError> {
    let path = crate::driver::peer_binary(name)
        .map_err(|e| DriverError::Permanent(format!("local driver: {e}; {HOW}")))?;
    exists(path, name, "listed in the peers manifest")
}

fn exists(path: PathBuf, name: &str, source: &str) -> Result<PathBuf, DriverError> {
    if is_file(&path) {
        Ok(path)
    } else {
        Err(DriverError::Permanent(format!(
            "local driver: {name} {source} at {} does not exist; {HOW}",
            path.display()
        )))
    }
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}
