//! What the CLI tests share: the `hexabase` binary run with a HOME of its own, a session file
//! written from a test user's token, a signed-in browser, users with a profile.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hexabase_command::UserId;
use hexabase_it::TestApp;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

pub use hexabase_it::binary::{hexabase_binary, url_on_stderr};

/// What a run of the CLI did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The run succeeded; its stdout as JSON.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The run failed with `code`, its last word on stderr `error: …` saying `words`.
    pub fn refused(&self, code: i32, words: &str) {
        assert_eq!(self.code, code, "{self:?}");
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(words),
            "expected `{words}`: {self:?}"
        );
    }
}

/// The CLI of one user, on a machine of its own (HOME).
pub struct Cli {
    pub home: PathBuf,
    pub server: String,
}

impl Cli {
    /// Not signed in.
    pub fn new(app: &TestApp) -> Self {
        let home = std::env::temp_dir().join(format!("hxb-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        Self {
            home,
            server: app.base.clone(),
        }
    }

    /// Signed in with `token` (the session file as the CLI writes it, without a refresh
    /// token).
    pub fn with_token(app: &TestApp, token: &str) -> Self {
        let cli = Self::new(app);
        cli.write_session(&json!({
            "server": app.base,
            "access_token": token,
            "expires_at": chrono::Utc::now() + chrono::Duration::minutes(15),
        }));
        cli
    }

    pub fn session_file(&self) -> PathBuf {
        self.home.join(".hexabase/session.json")
    }

    pub fn session(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.session_file()).unwrap()).unwrap()
    }

    pub fn write_session(&self, session: &Value) {
        std::fs::create_dir_all(self.home.join(".hexabase")).unwrap();
        std::fs::write(self.session_file(), session.to_string()).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(hexabase_binary());
        command
            .args(args)
            .env("HOME", &self.home)
            .env_remove("HEXABASE_TOKEN")
            .env_remove("HEXABASE_CA_FILE")
            .env_remove("HEXABASE_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Ran {
        let output = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("hexabase {args:?} ran for a minute"))
            .unwrap();
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `args` with `-o json`: it succeeds, and prints JSON.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        self.run(&args).await.json()
    }

    /// `hexabase auth login` in `mode` (`--no-browser` or `--device`), stderr piped.
    pub fn login(&self, mode: &str) -> Child {
        let mut command = self.command(&[
            "auth",
            "login",
            "--server",
            &self.server,
            mode,
            "--timeout",
            "60",
        ]);
        command.stderr(Stdio::piped());
        command.spawn().unwrap()
    }
}

pub use hexabase_it::browser::SignedInBrowser as Browser;

/// Wait for `child` to end; its exit code and what it said on stderr after the URL.
pub async fn finished(child: &mut Child, rest: tokio::task::JoinHandle<String>) -> (i32, String) {
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the CLI ends within a minute")
        .unwrap();
    (status.code().unwrap_or(-1), rest.await.unwrap())
}

/// Record `user` as signed in once through a provider, with `email` (so `/auth/me` knows
/// them).
pub async fn register(app: &TestApp, user: &UserId, email: &str) {
    app.register(user, email, "Alice Example").await;
}

/// The claims of a JWT (unverified: the test reads what it was given).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let body = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap(),
    )
    .unwrap()
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
