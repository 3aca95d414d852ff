//! The `hexabase` binary as the tests run it: where it is, and the URL it prints for a browser.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The `hexabase` binary: `HEXABASE_BIN`, or the one built next to this test (`scripts/test`
/// builds it).
pub fn hexabase_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HEXABASE_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("hexabase"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p hexabase --bin hexabase` (scripts/test does)",
        path.display()
    );
    path
}

/// The first `http(s)://…` URL `child` prints on stderr; the rest of stderr is collected.
pub async fn url_on_stderr(child: &mut Child) -> (String, tokio::task::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(at) = line.find("http") {
                return line[at..].split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("no URL on stderr:\n{seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("no URL on stderr within a minute:\n{seen}"));
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    (url, rest)
}
