//! Child processes that die with this one, and the file locks that say who runs which child.
//!
//! Children are started with `PR_SET_PDEATHSIG = SIGKILL`, so a worker killed with -9 takes its
//! etcd and API servers with it and their ports and locks come free for another worker. The
//! kernel fires that signal when the *thread* that forked the child ends, not the process, so
//! every child is forked by one dedicated thread that lives as long as the process: never by a
//! tokio worker or blocking-pool thread, which the runtime may retire at any time.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;

/// Past this size a log is moved aside to `<log>.1` before the next start.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> io::Result<&'static mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    if let Some(spawner) = SPAWNER.get() {
        return Ok(spawner);
    }
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    std::thread::Builder::new()
        .name("local-driver-spawner".into())
        .spawn(move || {
            // The sender lives in a static, so this loop (and the thread the children's death
            // signal is tied to) only ends with the process.
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
        })?;
    // A racing caller may have installed its own spawner first; ours then ends at once, as no
    // sender for it remains.
    Ok(SPAWNER.get_or_init(|| tx))
}

/// Start `command` from the spawner thread, its stdout and stderr appended to `log` after a
/// line saying what starts.
pub fn spawn(name: &str, mut command: Command, log: &Path) -> io::Result<Child> {
    let out = open_log(log)?;
    let err = out.try_clone()?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    let gone = || io::Error::other(format!("the spawner thread is gone; cannot start {name}"));
    spawner()?.send((command, reply_tx)).map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())?
}

fn open_log(log: &Path) -> io::Result<File> {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut aside = log.as_os_str().to_owned();
        aside.push(".1");
        std::fs::rename(log, PathBuf::from(aside))?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(
        file,
        "--- {} starting (supervisor pid {})",
        chrono::Utc::now().to_rfc3339(),
        std::process::id()
    )?;
    Ok(file)
}

/// Kill a child and reap it.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// An exclusive `flock` held for as long as the value lives; the kernel drops it when this
/// process dies, however it dies. Rust opens files close-on-exec, so the children forked while
/// it is held never inherit it (and so never keep it after their parent is gone).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// The lock, or `None` when another holder has it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(Lock { _file: file }));
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(error)
        }
    }
}

/// The last `lines` lines of a log, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loopback port for a child to listen on, free right now (bound and released; the child
/// binds it moments later, and again after every restart).
///
/// It is picked below the kernel's ephemeral range (`ip_local_port_range`), where the kernel
/// never puts the local end of an outgoing connection: a port from that range, left unbound
/// while a child restarts, can be taken for long by any process's connection (a client's to
/// etcd), and the child then cannot listen on it again. Falls back to an ephemeral port when
/// the range below is too small or full.
pub fn free_port() -> io::Result<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const LOW: u16 = 10_000;
    if ephemeral_low > LOW + 1_000 {
        let span = u128::from(ephemeral_low - LOW);
        for _ in 0..64 {
            let offset = uuid::Uuid::new_v4().as_u128() % span;
            let port = LOW + u16::try_from(offset).unwrap_or(0);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Write `contents` to `path` only if nothing is there yet, atomically: readers see the whole
/// file or none, and of two racing writers exactly one wins (`link` refuses an existing name,
/// where `rename` would replace it). `Ok(false)` when another writer won.
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, contents)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replace `path` with `contents` atomically (temporary file, then rename).
pub fn write_replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, contents)?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_come_from_below_the_ephemeral_range_and_are_free() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            assert!((10_000..low).contains(port), "{port} is not below {low}");
            std::net::TcpListener::bind(("127.0.0.1", *port)).expect("a free port");
        }
    }
}
