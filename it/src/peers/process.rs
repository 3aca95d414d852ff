//! Child processes that never outlive the tests.
//!
//! A `Peer` is killed when dropped (also while a panicking test unwinds). Processes of peers kept
//! in statics are never dropped, so every child is also started with `PR_SET_PDEATHSIG`: the
//! kernel kills it when the thread that forked it ends. Children are therefore forked by one
//! dedicated thread that lives as long as the test process.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("peer-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The channel lives in a static, so this thread runs until the process exits.
            })
            .expect("start the peer spawner thread");
        Mutex::new(tx)
    })
}

pub struct Peer {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Peer {
    /// Start `command` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Peer {
        let out = std::fs::File::create(log).expect("create peer log");
        let err = out.try_clone().expect("clone log handle");
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        spawner()
            .lock()
            .expect("spawner lock")
            .send((command, reply_tx))
            .expect("spawner thread alive");
        let child = reply_rx
            .recv()
            .expect("spawner answered")
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Peer {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        }
    }

    /// Still running? (`false` once it exited, with its log tail for the error message.)
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 30)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `probe` until it answers true; fails the test with the peer's log if the peer exits or
/// `timeout` passes first.
pub async fn wait_ready<F, Fut>(peer: &mut Peer, timeout: std::time::Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Err(e) = peer.check_alive() {
            panic!("{e}");
        }
        if probe().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} not ready after {timeout:?}; last lines of {}:\n{}",
            peer.name,
            peer.log.display(),
            log_tail(&peer.log, 30)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether `url` answers with a success status.
pub async fn answers(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A free port on 127.0.0.1 (the listener is closed again, the peer binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
