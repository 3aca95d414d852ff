//! The files the client keeps under `~/.hexabase/`: read as JSON, written readable by the user
//! only and replaced in one step, and lock files that make concurrent runs take turns.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// `~/.hexabase` (`$HOME/.hexabase`; `./.hexabase` without a home).
pub fn dot_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".hexabase")
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Write `value` readable by the user only, replacing the file in one step.
pub fn write_private(path: &Path, value: &impl Serialize) -> Result<(), ClientError> {
    let failed = |e: &dyn std::fmt::Display| file_error(path, e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    }
    let bytes = serde_json::to_vec(value).map_err(|e| failed(&e))?;
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(|e| failed(&e))?;
    std::io::Write::write_all(&mut file, &bytes).map_err(|e| failed(&e))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| failed(&e))
}

/// Remove `path`; a file already gone is no error.
pub fn remove(path: &Path) -> Result<(), ClientError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_error(path, e)),
        _ => Ok(()),
    }
}

/// Hold the lock file beside `path` (`<path>.lock`), waiting for whoever holds it; released
/// when the returned file is dropped.
pub async fn lock_beside(path: &Path) -> Result<File, ClientError> {
    let lock_path = path.with_extension("lock");
    let failed = |reason: String| file_error(&lock_path, reason);
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let lock = File::create(&lock_path).map_err(|e| failed(e.to_string()))?;
    tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))
}
