//! The README's quick start, as a newcomer runs it: `scripts/dev` (dex with its demo user, the
//! CA, HTTPS, the `local` driver), then every command of the quick start's second block in its
//! order, through `bash`, with the binaries `scripts/dev` put on the PATH. The browser's part of
//! `hexabase auth login` is played by a client that signs in at dex with the demo password
//! `scripts/dev` made and allows the request, as a person would.
//!
//! What the test changes in the README's lines: the port and the `.hexabase` directory (its own,
//! so it runs beside a developer's `scripts/dev` and the other tests). A line ending in
//! `# → WORD` must print WORD; since the cluster follows the API a moment later, such a line is
//! run again until it does (up to a minute). Every other line must succeed the first time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const README_SERVER: &str = "https://127.0.0.1:8443";
const README_DIR: &str = "$PWD/.hexabase";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The shell blocks of the README's `## Quick start` section, each a list of lines.
fn quick_start() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("a Quick start section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// A line of the quick start: the command, and the word it must print, if it says.
fn command_of(line: &str) -> (String, Option<String>) {
    match line.split_once("  # → ") {
        Some((command, word)) => (command.trim().to_owned(), Some(word.trim().to_owned())),
        None => (line.trim().to_owned(), None),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `scripts/dev`, its process group killed when the test ends.
struct Dev {
    child: Child,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The whole group: scripts/dev, dex, hexabase dev and its API servers.
            let group = format!("-{pid}");
            let signal = |signal: &str| {
                std::process::Command::new("kill")
                    .args([signal, "--", &group])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            signal("-TERM");
            // Stopped gracefully (hexabase dev stops its API servers), or killed after 10 s.
            for _ in 0..50 {
                if !signal("-0") {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            signal("-KILL");
        }
    }
}

/// The browser of the person following the quick start: signs in at the control plane's
/// provider `local` (dex) with the demo user, and allows what `url` asks for.
struct Person {
    client: reqwest::Client,
    server: String,
    email: String,
    password: String,
    cookies: HashMap<String, String>,
}

impl Person {
    fn new(server: &str, ca: &Path, email: &str, password: &str) -> Self {
        let ca = std::fs::read(ca).unwrap();
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .build()
                .unwrap(),
            server: server.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            cookies: HashMap::new(),
        }
    }

    /// Open `url` and do what each page asks until the browser is sent back to the CLI.
    async fn open(&mut self, url: &str) {
        let mut next = (
            reqwest::Url::parse(url).unwrap(),
            None::<[(&str, String); 2]>,
        );
        for _ in 0..20 {
            let (at, form) = next.clone();
            let mut request = match &form {
                Some(form) => self.client.post(at.clone()).form(form),
                None => self.client.get(at.clone()),
            };
            let ours = at.as_str().starts_with(&self.server);
            if ours && !self.cookies.is_empty() {
                let cookies: Vec<String> = self
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                request = request.header("cookie", cookies.join("; "));
            }
            let response = request.send().await.expect("the browser's request");
            if ours {
                for value in response.headers().get_all("set-cookie") {
                    let pair = value.to_str().unwrap().split(';').next().unwrap();
                    if let Some((name, value)) = pair.split_once('=') {
                        self.cookies.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"].to_str().unwrap();
                let to = at.join(location).unwrap();
                if to.scheme() == "http" && to.host_str() == Some("127.0.0.1") {
                    // Back to the CLI's loopback listener: the sign-in is done.
                    let page = reqwest::get(to).await.unwrap().text().await.unwrap();
                    assert!(page.contains("Signed in"), "{page}");
                    return;
                }
                next = (to, None);
                continue;
            }
            let page = response.text().await.unwrap();
            let link = |path: String| reqwest::Url::parse(&self.server).unwrap().join(&path);
            if let Some(rest) = attribute_after(&page, "href=\"/auth/login/local/browser") {
                // The control plane's sign-in page: provider `local`.
                next = (
                    link(format!("/auth/login/local/browser{rest}")).unwrap(),
                    None,
                );
            } else if let Some(allow) = hexabase_it::spine::approval_link(&page, "allow") {
                assert!(page.contains("hexabase CLI"), "{page}");
                next = (link(allow).unwrap(), None);
            } else if let Some(action) = attribute_after(&page, "action=\"") {
                // dex's login form.
                let form = [
                    ("login", self.email.clone()),
                    ("password", self.password.clone()),
                ];
                next = (at.join(&action).unwrap(), Some(form));
            } else {
                panic!("{status} at {at}, and nothing to do:\n{page}");
            }
        }
        panic!("the sign-in never came back to the CLI");
    }
}

/// The rest of an attribute's value that starts with `marker` (HTML entities of `&` undone).
fn attribute_after(page: &str, marker: &str) -> Option<String> {
    let rest = &page[page.find(marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// `bash -c` with the exports seen so far, in the person's directory and HOME.
fn shell(exports: &[String], line: &str, work: &Path) -> Command {
    let mut script = String::from("set -euo pipefail\n");
    for export in exports {
        script.push_str(export);
        script.push('\n');
    }
    script.push_str(line);
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(work)
        .env("HOME", work.join("home"))
        .env_remove("KUBECONFIG")
        .env_remove("HEXABASE_TOKEN")
        .env_remove("HEXABASE_BIN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_readme_quick_start_works_as_written() {
    let blocks = quick_start();
    assert_eq!(
        blocks.first().map(Vec::as_slice),
        Some(&["scripts/dev".to_owned()][..]),
        "the quick start begins with `scripts/dev`"
    );
    let commands = &blocks[1];
    let id = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let work = std::env::temp_dir().join(format!("hxb-quickstart-{id}"));
    let dir = work.join(".hexabase");
    std::fs::create_dir_all(work.join("home")).unwrap();
    let port = free_port();
    let server = format!("https://127.0.0.1:{port}");

    // Terminal one: scripts/dev.
    let mut dev = Command::new(repository().join("scripts/dev"));
    // As from a terminal: without what `cargo test` sets for its tests, which would make the
    // `cargo build` in scripts/dev build everything again instead of finding it built.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let cargo_set = (name.starts_with("CARGO")
            && !matches!(
                &*name,
                "CARGO_TARGET_DIR" | "CARGO_HOME" | "CARGO_TERM_COLOR"
            ))
            || matches!(&*name, "LD_LIBRARY_PATH" | "OUT_DIR" | "RUST_BACKTRACE");
        if cargo_set {
            dev.env_remove(&*name);
        }
    }
    dev.current_dir(repository())
        .env("HEXABASE_DEV_DIR", &dir)
        .env("HEXABASE_DEV_PORT", port.to_string())
        .env("HEXABASE_DEV_DEX_PORT", free_port().to_string())
        .env("HEXABASE_DEV_DATABASE", format!("hxb_test_quickstart_{id}"))
        .env("HEXABASE_DEV_STREAM", format!("HXBT_QUICKSTART_{id}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut dev = Dev {
        child: dev.spawn().expect("scripts/dev"),
    };
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut lines = BufReader::new(dev.child.stderr.take().unwrap()).lines();
    let heard = said.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut said = heard.lock().unwrap();
            said.push_str(&line);
            said.push('\n');
        }
    });
    let ca = dir.join("pki/ca.crt");
    let started = Instant::now();
    loop {
        let banner = said.lock().unwrap().clone();
        if banner.contains("Next, in another terminal") {
            assert!(banner.contains(&format!("{server}/docs")), "{banner}");
            assert!(banner.contains("demo@hexabase.local"), "{banner}");
            break;
        }
        if let Ok(Some(status)) = dev.child.try_wait() {
            panic!("scripts/dev ended ({status}):\n{banner}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "scripts/dev did not get ready:\n{banner}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let password = std::fs::read_to_string(dir.join("demo-password")).unwrap();
    assert!(
        said.lock().unwrap().contains(password.trim()),
        "scripts/dev prints the demo password"
    );
    let mut person = Person::new(&server, &ca, "demo@hexabase.local", password.trim());
    let probe = person.client.clone();
    let ready = Instant::now();
    while !probe
        .get(format!("{server}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if let Ok(Some(status)) = dev.child.try_wait() {
            panic!("hexabase dev ended ({status}):\n{}", said.lock().unwrap());
        }
        assert!(
            ready.elapsed() < Duration::from_secs(120),
            "{}",
            said.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Terminal two: the README's lines, one after the other.
    let dir_text = dir.to_str().unwrap();
    let mut exports = Vec::new();
    for line in commands {
        let line = line
            .replace(README_SERVER, &server)
            .replace(README_DIR, dir_text);
        let (command, word) = command_of(&line);
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        if command.starts_with("export ") {
            exports.push(command);
            continue;
        }
        if command.starts_with("hexabase auth login") {
            let mut login = shell(&exports, &command, &work).spawn().unwrap();
            let mut stderr = BufReader::new(login.stderr.take().unwrap()).lines();
            let url = loop {
                let line = tokio::time::timeout(Duration::from_secs(60), stderr.next_line())
                    .await
                    .expect("auth login prints the URL to open")
                    .unwrap()
                    .expect("auth login prints the URL to open");
                if let Some(at) = line.find(&format!("{server}/oauth/authorize?")) {
                    break line[at..].trim().to_owned();
                }
            };
            person.open(&url).await;
            let status = tokio::time::timeout(Duration::from_secs(60), login.wait())
                .await
                .expect("auth login ends once allowed")
                .unwrap();
            let mut rest = String::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                rest.push_str(&line);
                rest.push('\n');
            }
            assert!(status.success(), "{command}: {status}\n{rest}");
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ran = shell(&exports, &command, &work).output().await.unwrap();
            let stdout = String::from_utf8_lossy(&ran.stdout);
            let stderr = String::from_utf8_lossy(&ran.stderr);
            let done = match &word {
                Some(word) => stdout.split_whitespace().any(|w| w == word),
                None => ran.status.success(),
            };
            if done {
                break;
            }
            assert!(
                word.is_some() && Instant::now() < deadline,
                "`{command}` ({}):\n{stdout}\n{stderr}\nscripts/dev:\n{}",
                ran.status,
                said.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    drop(dev);
    let _ = std::fs::remove_dir_all(&work);
    if let Ok(nats) = async_nats::connect(hexabase_it::services::nats_url()).await {
        let js = async_nats::jetstream::new(nats);
        for stream in ["EVENTS", "TASKS"] {
            let _ = js
                .delete_stream(format!("HXBT_QUICKSTART_{id}_{stream}"))
                .await;
        }
    }
}
